//! The frame transform, sans I/O: WebSocket bytes with compressed
//! messages on one side, the same messages as plain frames on the other.
//!
//! [`Inbound`] turns the peer's bytes into plain frames for a WebSocket
//! implementation that knows no extension: a compressed message (RSV1 on
//! its first frame) is inflated and handed on as a run of plain frames of
//! at most [`CHUNK`] bytes each, so neither side holds more than a chunk
//! of it at once. [`Outbound`] does the reverse for what that
//! implementation writes: whole data messages of at least the threshold
//! are compressed (RSV1 set). Control frames are never compressed.

use crate::codec::{compress_message, ContextCompressor, Inflater, TRAILER};
use crate::{Negotiated, Violation};

/// Most inflated bytes handed on in one plain frame.
pub const CHUNK: usize = 16 << 10;
/// Output [`Inbound::feed`] lets accumulate before it stops consuming.
const HIGH_WATER: usize = 64 << 10;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;

/// A frame header (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    rsv1: bool,
    /// RSV2 and RSV3, kept as they came.
    rsv23: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
}

impl Header {
    /// Parses a header from the start of `bytes`: the header and its size,
    /// or `None` when more bytes are needed.
    fn parse(bytes: &[u8]) -> Option<(Header, usize)> {
        let first = *bytes.first()?;
        let second = *bytes.get(1)?;
        let mut size = 2;
        let len = match second & 0x7f {
            126 => {
                let b = bytes.get(2..4)?;
                size += 2;
                u64::from(u16::from_be_bytes([b[0], b[1]]))
            }
            127 => {
                let b = bytes.get(2..10)?;
                size += 8;
                u64::from_be_bytes(b.try_into().ok()?)
            }
            small => u64::from(small),
        };
        let mask = if second & 0x80 != 0 {
            let b = bytes.get(size..size + 4)?;
            size += 4;
            Some([b[0], b[1], b[2], b[3]])
        } else {
            None
        };
        Some((
            Header {
                fin: first & 0x80 != 0,
                rsv1: first & 0x40 != 0,
                rsv23: first & 0x30,
                opcode: first & 0x0f,
                mask,
                len,
            },
            size,
        ))
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(u8::from(self.fin) << 7 | u8::from(self.rsv1) << 6 | self.rsv23 | self.opcode);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        if self.len < 126 {
            out.push(mask_bit | self.len as u8);
        } else if let Ok(len) = u16::try_from(self.len) {
            out.push(mask_bit | 126);
            out.extend_from_slice(&len.to_be_bytes());
        } else {
            out.push(mask_bit | 127);
            out.extend_from_slice(&self.len.to_be_bytes());
        }
        if let Some(mask) = self.mask {
            out.extend_from_slice(&mask);
        }
    }

    fn is_control(&self) -> bool {
        self.opcode & 0x08 != 0
    }
}

fn apply_mask(bytes: &mut [u8], mask: [u8; 4], offset: u64) {
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte ^= mask[((offset + index as u64) % 4) as usize];
    }
}

/// Collects a header's bytes across calls.
#[derive(Debug, Default)]
struct HeaderBuffer {
    bytes: [u8; 14],
    len: usize,
}

impl HeaderBuffer {
    /// Takes bytes from `input` until a header is complete: it, and the
    /// bytes taken; or `None` and all of `input` taken.
    fn take(&mut self, input: &[u8]) -> (Option<Header>, usize) {
        let mut taken = 0;
        while taken < input.len() {
            self.bytes[self.len] = input[taken];
            self.len += 1;
            taken += 1;
            if let Some((header, size)) = Header::parse(&self.bytes[..self.len]) {
                debug_assert_eq!(size, self.len);
                self.len = 0;
                return (Some(header), taken);
            }
        }
        (None, taken)
    }
}

#[derive(Debug)]
enum InState {
    Header,
    /// Copying a frame's payload unchanged.
    Pass {
        remaining: u64,
    },
    /// Inflating a compressed frame's payload.
    Inflate {
        remaining: u64,
        mask: Option<[u8; 4]>,
        offset: u64,
        fin: bool,
        trailer_fed: usize,
    },
    /// A violation was found; nothing more is read.
    Failed(Violation),
}

/// The message whose frames are arriving.
#[derive(Debug)]
struct InMessage {
    compressed: bool,
    opcode: u8,
    /// Whether a plain frame of it was handed on (the rest are
    /// continuations).
    started: bool,
    masked: bool,
}

/// The peer's bytes in, plain frames out (see the module docs).
#[derive(Debug)]
pub struct Inbound {
    header: HeaderBuffer,
    state: InState,
    message: Option<InMessage>,
    inflater: Inflater,
    /// Inflated bytes not yet handed on, fewer than [`CHUNK`].
    pending: Vec<u8>,
}

impl Inbound {
    /// A transform for what was negotiated, with messages of at most
    /// `max_message_size` inflated bytes.
    pub fn new(negotiated: Negotiated, max_message_size: usize) -> Self {
        Inbound {
            header: HeaderBuffer::default(),
            state: InState::Header,
            message: None,
            inflater: Inflater::new(negotiated.peer_context_takeover, max_message_size),
            pending: Vec::new(),
        }
    }

    /// Whether zlib state is held right now.
    pub fn holds_state(&self) -> bool {
        self.inflater.holds_state()
    }

    /// Consumes peer bytes from `input`, appending plain frames to `out`:
    /// the bytes consumed. It stops early once `out` holds 64 KiB, and may
    /// have more to hand on with no input at all: call it with an empty
    /// `input` until it adds nothing before waiting for more bytes.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<usize, Violation> {
        let total = input.len();
        loop {
            if out.len() >= HIGH_WATER {
                break;
            }
            match &mut self.state {
                InState::Failed(violation) => return Err(violation.clone()),
                InState::Header => {
                    if input.is_empty() {
                        break;
                    }
                    let (header, taken) = self.header.take(input);
                    input = &input[taken..];
                    if let Some(header) = header {
                        if let Err(violation) = self.start_frame(header, out) {
                            self.state = InState::Failed(violation.clone());
                            return Err(violation);
                        }
                    }
                }
                InState::Pass { remaining } => {
                    if *remaining == 0 {
                        self.state = InState::Header;
                        continue;
                    }
                    if input.is_empty() {
                        break;
                    }
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    *remaining -= n as u64;
                    input = &input[n..];
                }
                InState::Inflate { .. } => match self.inflate_step(&mut input, out) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(violation) => {
                        self.state = InState::Failed(violation.clone());
                        self.pending = Vec::new();
                        self.inflater.release();
                        return Err(violation);
                    }
                },
            }
        }
        Ok(total - input.len())
    }

    fn start_frame(&mut self, header: Header, out: &mut Vec<u8>) -> Result<(), Violation> {
        let is_data_start = header.opcode == OP_TEXT || header.opcode == OP_BINARY;
        if header.rsv1 {
            if header.is_control() {
                return Err(Violation::Protocol("RSV1 set on a control frame"));
            }
            if !is_data_start {
                return Err(Violation::Protocol(
                    "RSV1 set on a frame that does not start a message",
                ));
            }
            if self.message.is_some() {
                return Err(Violation::Protocol("a new message inside a fragmented one"));
            }
            self.message = Some(InMessage {
                compressed: true,
                opcode: header.opcode,
                started: false,
                masked: header.mask.is_some(),
            });
            self.state = InState::Inflate {
                remaining: header.len,
                mask: header.mask,
                offset: 0,
                fin: header.fin,
                trailer_fed: 0,
            };
            return Ok(());
        }
        if header.opcode == OP_CONTINUATION {
            if let Some(message) = &self.message {
                if message.compressed {
                    self.state = InState::Inflate {
                        remaining: header.len,
                        mask: header.mask,
                        offset: 0,
                        fin: header.fin,
                        trailer_fed: 0,
                    };
                    return Ok(());
                }
                if header.fin {
                    self.message = None;
                }
            }
        } else if is_data_start && !header.fin {
            self.message = Some(InMessage {
                compressed: false,
                opcode: header.opcode,
                started: true,
                masked: header.mask.is_some(),
            });
        }
        // Anything else goes on unchanged; the WebSocket implementation
        // judges it (RSV2/3, reserved opcodes, sizes, masking).
        header.write(out);
        self.state = InState::Pass {
            remaining: header.len,
        };
        Ok(())
    }

    /// One step of a compressed frame: `Ok(false)` when it needs more
    /// input (or the output is full).
    fn inflate_step(&mut self, input: &mut &[u8], out: &mut Vec<u8>) -> Result<bool, Violation> {
        let InState::Inflate {
            remaining,
            mask,
            offset,
            fin,
            trailer_fed,
        } = &mut self.state
        else {
            unreachable!("inflate_step outside InState::Inflate")
        };
        let mut scratch = [0u8; 4096];
        let mut inflated = [0u8; 8192];
        // The frame's payload first, then (on its last frame) the trailer.
        let (source, from_frame): (&[u8], bool) = if *remaining > 0 {
            let n = (*remaining)
                .min(input.len() as u64)
                .min(scratch.len() as u64) as usize;
            scratch[..n].copy_from_slice(&input[..n]);
            if let Some(mask) = mask {
                apply_mask(&mut scratch[..n], *mask, *offset);
            }
            (&scratch[..n], true)
        } else if *fin {
            (&TRAILER[*trailer_fed..], false)
        } else {
            (&[][..], false)
        };
        let (consumed, written) = self.inflater.inflate(source, &mut inflated)?;
        if from_frame {
            *remaining -= consumed as u64;
            *offset += consumed as u64;
            *input = &input[consumed..];
        } else if *fin {
            *trailer_fed += consumed;
        }
        let payload_done = *remaining == 0 && (!*fin || *trailer_fed == TRAILER.len());
        let fin = *fin;
        self.push_plain(&inflated[..written], out);
        if consumed > 0 || written > 0 {
            return Ok(true);
        }
        if !payload_done {
            // Nothing moved: more of the frame is needed.
            return Ok(false);
        }
        // The frame is consumed and the inflater drained.
        if fin {
            let message = self.message.take().expect("a compressed message");
            let data = std::mem::take(&mut self.pending);
            write_plain(&message, true, &data, out);
            self.inflater.end_message();
        }
        self.state = InState::Header;
        Ok(true)
    }

    fn push_plain(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            let n = (CHUNK - self.pending.len()).min(bytes.len());
            if self.pending.capacity() == 0 {
                self.pending.reserve_exact(CHUNK);
            }
            self.pending.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.pending.len() == CHUNK {
                let message = self.message.as_mut().expect("a compressed message");
                write_plain(message, false, &self.pending, out);
                message.started = true;
                self.pending.clear();
            }
        }
    }
}

/// Appends one plain frame of a message to `out`.
fn write_plain(message: &InMessage, fin: bool, payload: &[u8], out: &mut Vec<u8>) {
    Header {
        fin,
        rsv1: false,
        rsv23: 0,
        opcode: if message.started {
            OP_CONTINUATION
        } else {
            message.opcode
        },
        // A client's frames stay masked, with the all-zero key (masking
        // with it changes nothing).
        mask: message.masked.then_some([0; 4]),
        len: payload.len() as u64,
    }
    .write(out);
    out.extend_from_slice(payload);
}

#[derive(Debug)]
enum OutState {
    Header,
    Pass { remaining: u64 },
    Collect { header: Header, payload: Vec<u8> },
}

/// Plain frames in, frames with compressed messages out (see the module
/// docs).
#[derive(Debug)]
pub struct Outbound {
    negotiated: Negotiated,
    header: HeaderBuffer,
    state: OutState,
    /// With our context takeover: the compressor, from the first
    /// compressed message on.
    context: Option<ContextCompressor>,
}

impl Outbound {
    /// A transform for what was negotiated.
    pub fn new(negotiated: Negotiated) -> Self {
        Outbound {
            negotiated,
            header: HeaderBuffer::default(),
            state: OutState::Header,
            context: None,
        }
    }

    /// Consumes all of `input`, appending the frames to send to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                OutState::Header => {
                    let (header, taken) = self.header.take(input);
                    input = &input[taken..];
                    if let Some(header) = header {
                        self.start_frame(header, out);
                    }
                }
                OutState::Pass { remaining } => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    *remaining -= n as u64;
                    input = &input[n..];
                    if *remaining == 0 {
                        self.state = OutState::Header;
                    }
                }
                OutState::Collect { header, payload } => {
                    let n = (header.len - payload.len() as u64).min(input.len() as u64) as usize;
                    payload.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if payload.len() as u64 == header.len {
                        let header = *header;
                        let payload = std::mem::take(payload);
                        self.state = OutState::Header;
                        self.compress_frame(header, payload, out);
                    }
                }
            }
        }
    }

    fn start_frame(&mut self, header: Header, out: &mut Vec<u8>) {
        // Only whole data messages (one frame) are compressed; what we
        // send is never fragmented.
        let compress = (header.opcode == OP_TEXT || header.opcode == OP_BINARY)
            && header.fin
            && !header.rsv1
            && header.len >= self.negotiated.threshold as u64
            && header.len > 0;
        if compress {
            if let Ok(len) = usize::try_from(header.len) {
                self.state = OutState::Collect {
                    header,
                    payload: Vec::with_capacity(len),
                };
                return;
            }
        }
        header.write(out);
        self.state = if header.len == 0 {
            OutState::Header
        } else {
            OutState::Pass {
                remaining: header.len,
            }
        };
    }

    fn compress_frame(&mut self, header: Header, mut payload: Vec<u8>, out: &mut Vec<u8>) {
        if let Some(mask) = header.mask {
            apply_mask(&mut payload, mask, 0);
        }
        let (window_bits, level) = (self.negotiated.own_window_bits, self.negotiated.level);
        let mut compressed = if self.negotiated.own_context_takeover {
            // What was compressed is in the context the peer follows: it
            // must go compressed, whatever its size.
            self.context
                .get_or_insert_with(|| ContextCompressor::new(window_bits, level))
                .compress(&payload)
        } else {
            compress_message(&payload, window_bits, level)
        };
        if !self.negotiated.own_context_takeover && compressed.len() >= payload.len() {
            // It does not shrink (short or random): sent as it was, which
            // RFC 7692 allows message by message.
            if let Some(mask) = header.mask {
                apply_mask(&mut payload, mask, 0);
            }
            header.write(out);
            out.extend_from_slice(&payload);
            return;
        }
        if let Some(mask) = header.mask {
            apply_mask(&mut compressed, mask, 0);
        }
        Header {
            rsv1: true,
            len: compressed.len() as u64,
            ..header
        }
        .write(out);
        out.extend_from_slice(&compressed);
    }
}

/// Builds one frame (for tests and the fuzz target): `opcode`, FIN, RSV1,
/// optionally masked, with `payload` (masked here when a key is given).
pub fn frame(opcode: u8, fin: bool, rsv1: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Header {
        fin,
        rsv1,
        rsv23: 0,
        opcode,
        mask,
        len: payload.len() as u64,
    }
    .write(&mut out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut out[start..], mask, 0);
    }
    out
}

/// One frame read back (for tests and the fuzz target): FIN, RSV1,
/// opcode, payload unmasked, and the bytes it took; `None` when
/// incomplete.
pub fn parse_frame(bytes: &[u8]) -> Option<(bool, bool, u8, Vec<u8>, usize)> {
    let (header, size) = Header::parse(bytes)?;
    let end = size.checked_add(usize::try_from(header.len).ok()?)?;
    let mut payload = bytes.get(size..end)?.to_vec();
    if let Some(mask) = header.mask {
        apply_mask(&mut payload, mask, 0);
    }
    Some((header.fin, header.rsv1, header.opcode, payload, end))
}
