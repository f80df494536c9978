//! The frames a 0.6/0.7 engine has for its driver, in order, with the
//! transport's pings and pongs ahead of them.

use std::collections::VecDeque;

use super::transport::segments;
use crate::FlushTicket;

/// How user messages go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// 0.6: each message is one bare JSON text frame.
    Whole,
    /// 0.7: each message is `1`-segments and a last `0`-segment of at most
    /// this many bytes each (see [`segments`]).
    Segmented {
        /// Bytes of JSON text per frame. Default 65,536.
        max_segment_size: usize,
    },
}

/// One frame for the driver to write, as a WebSocket text frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFrame {
    /// The frame's number among the message frames, from 1, for
    /// [`FlushTicket`]s; 0 for a ping or pong, which no ticket waits for.
    pub seq: u64,
    /// The text to write.
    pub text: String,
}

#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Pings and pongs: they go first, even between a message's segments.
    control: VecDeque<String>,
    frames: VecDeque<OutFrame>,
    bytes: usize,
    last_seq: u64,
}

impl Output {
    pub(crate) fn push_control(&mut self, frame: String) {
        self.bytes += frame.len();
        self.control.push_back(frame);
    }

    /// Queues a transport ping; 0.6 has none (nothing is queued).
    pub(crate) fn push_ping(&mut self, framing: Framing, payload: &str) {
        if let Framing::Segmented { .. } = framing {
            self.push_control(super::ping_frame(payload));
        }
    }

    /// Queues a pong; one still unsent is replaced by it instead, so that a
    /// ping flood from a peer that does not read cannot pile pongs up.
    pub(crate) fn push_pong(&mut self, pong: String) {
        if let Some(queued) = self.control.iter_mut().find(|frame| frame.starts_with('3')) {
            self.bytes = self.bytes - queued.len() + pong.len();
            *queued = pong;
        } else {
            self.push_control(pong);
        }
    }

    /// Queues a user message's frames; the ticket of its last one.
    pub(crate) fn push_message(&mut self, framing: Framing, text: String) -> FlushTicket {
        match framing {
            Framing::Whole => self.push_frame(text),
            Framing::Segmented { max_segment_size } => {
                for frame in segments(&text, max_segment_size) {
                    self.push_frame(frame);
                }
            }
        }
        FlushTicket::at(self.last_seq)
    }

    fn push_frame(&mut self, text: String) {
        self.last_seq += 1;
        self.bytes += text.len();
        self.frames.push_back(OutFrame {
            seq: self.last_seq,
            text,
        });
    }

    pub(crate) fn pop(&mut self) -> Option<OutFrame> {
        let frame = match self.control.pop_front() {
            Some(text) => OutFrame { seq: 0, text },
            None => self.frames.pop_front()?,
        };
        self.bytes -= frame.text.len();
        Some(frame)
    }

    /// The ticket of everything queued so far.
    pub(crate) fn ticket(&self) -> FlushTicket {
        FlushTicket::at(self.last_seq)
    }

    pub(crate) fn frames(&self) -> usize {
        self.control.len() + self.frames.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn clear(&mut self) {
        self.control.clear();
        self.frames.clear();
        self.bytes = 0;
    }
}

/// The receiving half of the framing: whole frames, or segments joined
/// (pings answered into the output).
#[derive(Debug, Clone)]
pub(crate) struct Input {
    framing: Framing,
    reassembler: super::transport::Reassembler,
}

impl Input {
    pub(crate) fn new(framing: Framing, max_message_size: usize) -> Self {
        Input {
            framing,
            reassembler: super::transport::Reassembler::new(max_message_size),
        }
    }

    /// The message a frame completes, if any.
    pub(crate) fn take(
        &mut self,
        frame: &str,
        output: &mut Output,
    ) -> Result<Option<String>, crate::ProtocolError> {
        use super::transport::Package;
        if self.framing == Framing::Whole {
            return Ok(Some(frame.to_owned()));
        }
        Ok(match self.reassembler.handle_frame(frame)? {
            Package::Message(text) => Some(text),
            Package::Ping { pong } => {
                output.push_pong(pong);
                None
            }
            Package::Segment | Package::Pong => None,
        })
    }

    pub(crate) fn buffered(&self) -> usize {
        self.reassembler.buffered()
    }
}
