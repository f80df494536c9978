//! The frames a 0.6/0.7 engine has for its driver, in order, with the
//! transport's pings and pongs ahead of them.

use super::transport::segments;
use crate::transmit_queue::TransmitQueue;
use crate::{FlushTicket, FrameKind, FrameText, Transmit};

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

/// One frame for the driver to write: the [`Transmit`] every engine
/// hands out (its `seq` is 0 for a transport ping or pong).
pub type OutFrame = Transmit;

/// A 0.6/0.7 engine's output: its messages as frames by the framing, on
/// the one [`TransmitQueue`] of every engine, transport pings and pongs
/// in its control lane.
#[derive(Debug, Default)]
pub(crate) struct Output {
    queue: TransmitQueue,
}

impl Output {
    /// Queues a transport ping; 0.6 has none (nothing is queued).
    pub(crate) fn push_ping(&mut self, framing: Framing, payload: &str) {
        if let Framing::Segmented { .. } = framing {
            self.queue
                .push_control(FrameKind::Ping, super::ping_frame(payload).into());
        }
    }

    /// Queues a pong; one still unsent is replaced by it instead, so that a
    /// ping flood from a peer that does not read cannot pile pongs up.
    pub(crate) fn push_pong(&mut self, pong: String) {
        self.queue.replace_control(FrameKind::Pong, pong.into());
    }

    /// Queues a user message's frames; the ticket of its last one. Whole,
    /// a shared text goes out shared, with no copy.
    pub(crate) fn push_message(
        &mut self,
        framing: Framing,
        text: impl Into<FrameText>,
    ) -> FlushTicket {
        let text = text.into();
        match framing {
            Framing::Whole => self.queue.push(FrameKind::Message, text),
            Framing::Segmented { max_segment_size } => {
                for frame in segments(text.as_str(), max_segment_size) {
                    self.queue.push(FrameKind::Message, frame.into());
                }
                self.queue.ticket()
            }
        }
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop()
    }

    /// The ticket of everything queued so far.
    pub(crate) fn ticket(&self) -> FlushTicket {
        self.queue.ticket()
    }

    pub(crate) fn frames(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.queue.bytes()
    }

    pub(crate) fn clear(&mut self) {
        self.queue.clear();
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
