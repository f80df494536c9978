//! The deflate side: compressing one message, inflating a stream of
//! them, with the zlib state pooled per thread and held only while a
//! message is being worked on.

use std::cell::RefCell;

use miniz_oxide::deflate::core::{
    compress_to_output, CompressionStrategy, CompressorOxide, TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::Violation;

/// The empty stored block a sync flush ends with, which RFC 7692 §7.2.1
/// removes from the wire and §7.2.2 appends again before inflating.
pub const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Compressors kept per thread (271 KiB of resident memory each), by
/// (window bits, level).
const POOLED_COMPRESSORS: usize = 2;
/// Inflaters kept per thread (42 KiB each).
const POOLED_INFLATERS: usize = 4;
/// Recently compressed payloads kept per thread, so that one payload sent
/// to many connections is compressed once.
const CACHED_PAYLOADS: usize = 4;
/// Payloads larger than this are not cached.
const MAX_CACHED_PAYLOAD: usize = 256 << 10;

/// (window bits, level): what a compressor and a cached result are for.
type Params = (u8, u8);
/// A cached compression: its parameters, the payload, the result.
type CacheEntry = (Params, Vec<u8>, Vec<u8>);
/// A pooled compressor and its parameters.
type Pooled = (Params, Box<CompressorOxide>);

thread_local! {
    static COMPRESSORS: RefCell<Vec<Pooled>> = const { RefCell::new(Vec::new()) };
    static INFLATERS: RefCell<Vec<Box<InflateState>>> = const { RefCell::new(Vec::new()) };
    static CACHE: RefCell<Vec<CacheEntry>> = const { RefCell::new(Vec::new()) };
}

/// Compresses one whole message without context takeover (RFC 7692
/// §7.2.1): raw deflate, sync-flushed, the final `00 00 ff ff` removed.
///
/// The result depends only on the payload and the parameters, so the
/// last few payloads of up to 256 KiB are cached per thread: a change
/// fanned out to many connections is compressed once per thread.
pub fn compress_message(payload: &[u8], window_bits: u8, level: u8) -> Vec<u8> {
    let key = (window_bits.clamp(9, 15), level.clamp(1, 9));
    let cacheable = payload.len() <= MAX_CACHED_PAYLOAD;
    if cacheable {
        let hit = CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            let index = cache
                .iter()
                .position(|(k, input, _)| *k == key && input.as_slice() == payload)?;
            let entry = cache.remove(index);
            let output = entry.2.clone();
            cache.push(entry);
            Some(output)
        });
        if let Some(output) = hit {
            return output;
        }
    }
    let output = compress_uncached(payload, key);
    if cacheable {
        CACHE.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= CACHED_PAYLOADS {
                cache.remove(0);
            }
            cache.push((key, payload.to_vec(), output.clone()));
        });
    }
    output
}

fn compress_uncached(payload: &[u8], key: Params) -> Vec<u8> {
    let taken = COMPRESSORS.with(|pool| {
        let mut pool = pool.borrow_mut();
        let index = pool.iter().position(|(k, _)| *k == key)?;
        Some(pool.swap_remove(index).1)
    });
    let mut compressor = taken.unwrap_or_else(|| {
        Box::new(CompressorOxide::with_params(
            DataFormat::Raw,
            key.1,
            CompressionStrategy::Default,
            key.0,
        ))
    });
    let mut output = Vec::with_capacity(payload.len() / 4 + 16);
    let (status, consumed) =
        compress_to_output(&mut compressor, payload, TDEFLFlush::Sync, |chunk| {
            output.extend_from_slice(chunk);
            true
        });
    debug_assert_eq!(status, TDEFLStatus::Okay);
    debug_assert_eq!(consumed, payload.len());
    debug_assert!(output.ends_with(&TRAILER));
    if output.ends_with(&TRAILER) {
        output.truncate(output.len() - TRAILER.len());
    }
    compressor.reset();
    COMPRESSORS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_COMPRESSORS {
            pool.push((key, compressor));
        }
    });
    output
}

/// A compressor that keeps its context between messages (context
/// takeover): held by one connection from its first message on.
pub struct ContextCompressor {
    compressor: Box<CompressorOxide>,
}

impl std::fmt::Debug for ContextCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextCompressor").finish_non_exhaustive()
    }
}

impl ContextCompressor {
    /// A compressor with a window of 2^`window_bits` bytes at `level`.
    pub fn new(window_bits: u8, level: u8) -> Self {
        ContextCompressor {
            compressor: Box::new(CompressorOxide::with_params(
                DataFormat::Raw,
                level.clamp(1, 9),
                CompressionStrategy::Default,
                window_bits.clamp(9, 15),
            )),
        }
    }

    /// Compresses the next message, which may refer to earlier ones:
    /// sync-flushed, the trailer removed.
    pub fn compress(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut output = Vec::with_capacity(payload.len() / 4 + 16);
        let (status, consumed) =
            compress_to_output(&mut self.compressor, payload, TDEFLFlush::Sync, |chunk| {
                output.extend_from_slice(chunk);
                true
            });
        debug_assert_eq!(status, TDEFLStatus::Okay);
        debug_assert_eq!(consumed, payload.len());
        if output.ends_with(&TRAILER) {
            output.truncate(output.len() - TRAILER.len());
        }
        output
    }
}

/// Inflates the compressed messages of one connection, counting each
/// message's inflated size against a limit and stopping at it.
///
/// Without the peer's context takeover it holds zlib state only while a
/// message is being inflated (taken from, and given back to, a per-thread
/// pool); with it, from the first compressed message on.
pub struct Inflater {
    state: Option<Box<InflateState>>,
    keep_context: bool,
    message_size: usize,
    limit: usize,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("holds_state", &self.state.is_some())
            .field("keep_context", &self.keep_context)
            .field("message_size", &self.message_size)
            .field("limit", &self.limit)
            .finish()
    }
}

impl Inflater {
    /// An inflater for messages of at most `limit` inflated bytes.
    pub fn new(keep_context: bool, limit: usize) -> Self {
        Inflater {
            state: None,
            keep_context,
            message_size: 0,
            limit,
        }
    }

    /// Bytes inflated so far of the current message.
    pub fn message_size(&self) -> usize {
        self.message_size
    }

    /// Whether zlib state is held right now.
    pub fn holds_state(&self) -> bool {
        self.state.is_some()
    }

    /// Inflates from `input` into `output`: the bytes consumed and
    /// written; `(0, 0)` once it needs more input. Past the limit:
    /// [`Violation::TooLarge`]; a corrupt stream: [`Violation::Corrupt`].
    pub fn inflate(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(usize, usize), Violation> {
        let room = self
            .limit
            .saturating_sub(self.message_size)
            .saturating_add(1);
        let output_len = output.len().min(room);
        let state = self.state.get_or_insert_with(|| {
            INFLATERS
                .with(|pool| pool.borrow_mut().pop())
                .unwrap_or_else(|| InflateState::new_boxed(DataFormat::Raw))
        });
        let result = inflate(state, input, &mut output[..output_len], MZFlush::None);
        self.message_size += result.bytes_written;
        if self.message_size > self.limit {
            return Err(Violation::TooLarge {
                size: self.message_size,
                limit: self.limit,
            });
        }
        match result.status {
            Ok(MZStatus::StreamEnd) => {
                // A final block (BFINAL): whatever follows starts afresh.
                state.reset(DataFormat::Raw);
            }
            Ok(_) | Err(MZError::Buf) => {}
            Err(_) => return Err(Violation::Corrupt),
        }
        Ok((result.bytes_consumed, result.bytes_written))
    }

    /// The current message is complete: the size count restarts and,
    /// without context takeover, the zlib state goes back to the pool.
    pub fn end_message(&mut self) {
        self.message_size = 0;
        if !self.keep_context {
            self.release();
        }
    }

    /// Gives the zlib state back to the pool now (after a violation, say).
    pub fn release(&mut self) {
        if let Some(mut state) = self.state.take() {
            state.reset(DataFormat::Raw);
            INFLATERS.with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() < POOLED_INFLATERS {
                    pool.push(state);
                }
            });
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        self.release();
    }
}

/// Inflates one whole message (the trailer is appended here) with a fresh
/// state, at most `limit` bytes: for tests and simple callers.
pub fn decompress_message(compressed: &[u8], limit: usize) -> Result<Vec<u8>, Violation> {
    let mut inflater = Inflater::new(false, limit);
    let mut output = Vec::new();
    let mut buffer = [0u8; 8192];
    for mut input in [compressed, &TRAILER[..]] {
        loop {
            let (consumed, written) = inflater.inflate(input, &mut buffer)?;
            output.extend_from_slice(&buffer[..written]);
            input = &input[consumed..];
            if consumed == 0 && written == 0 {
                break;
            }
        }
    }
    inflater.end_message();
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_loses_its_trailer() {
        let text = b"{\"type\": \"DATA\", \"payload\": [1, 2, 3, 1, 2, 3, 1, 2, 3]}".repeat(20);
        let compressed = compress_message(&text, 15, 6);
        assert!(!compressed.ends_with(&TRAILER));
        assert!(compressed.len() < text.len() / 5);
        assert_eq!(decompress_message(&compressed, usize::MAX).unwrap(), text);
    }

    #[test]
    fn rfc_7692_example_inflates() {
        // RFC 7692 §7.2.3.1: "Hello" compressed.
        let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(decompress_message(&compressed, 100).unwrap(), b"Hello");
        // §7.2.3.3: stored (uncompressed) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(decompress_message(&stored, 100).unwrap(), b"Hello");
        // §7.2.3.4: BFINAL set, then our trailer starts a new stream.
        let last = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        assert_eq!(decompress_message(&last, 100).unwrap(), b"Hello");
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let bomb = compress_message(&vec![b'a'; 1 << 20], 15, 9);
        assert!(bomb.len() < 4096);
        let err = decompress_message(&bomb, 100_000).unwrap_err();
        assert_eq!(
            err,
            Violation::TooLarge {
                size: 100_001,
                limit: 100_000
            }
        );
        assert_eq!(decompress_message(&bomb, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn corrupt_data_is_refused() {
        // BTYPE 11 is reserved.
        assert_eq!(
            decompress_message(&[0xff, 0xff], 100),
            Err(Violation::Corrupt)
        );
    }

    #[test]
    fn inflater_state_is_held_only_during_a_message() {
        let compressed = compress_message(b"hello hello hello", 15, 6);
        let mut inflater = Inflater::new(false, 1000);
        let mut buffer = [0u8; 64];
        inflater.inflate(&compressed, &mut buffer).unwrap();
        assert!(inflater.holds_state());
        inflater.end_message();
        assert!(!inflater.holds_state());
        let mut keeping = Inflater::new(true, 1000);
        keeping.inflate(&compressed, &mut buffer).unwrap();
        keeping.end_message();
        assert!(keeping.holds_state());
    }
}
