//! What every engine hands its driver to write: [`Transmit`]s, numbered
//! for [`FlushTicket`]s, waiting in one [`TransmitQueue`] whose bytes are
//! counted, so a driver can bound what waits for the socket in bytes as
//! well as frames.

use std::collections::VecDeque;

use crate::frame::{FrameKind, FrameText};

/// One frame for the driver to write to the socket, as a WebSocket text
/// frame: the output of every engine (0.5 [`Engine`](crate::Engine), 0.6/0.7
/// [`ServerEngine`](crate::v07::ServerEngine) and
/// [`ClientEngine`](crate::v07::ClientEngine)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Position of this frame among the engine's numbered frames, counting
    /// from 1. Compare with a [`FlushTicket`] to learn when a flush is
    /// complete. 0 for a 0.7 transport ping or pong, which go ahead of the
    /// numbered frames and which no ticket waits for.
    pub seq: u64,
    /// The frame's type; a 0.6/0.7 message counts as
    /// [`FrameKind::Message`], its transport pings and pongs as
    /// [`FrameKind::Ping`] and [`FrameKind::Pong`].
    pub kind: FrameKind,
    /// The text to write.
    pub text: FrameText,
}

/// Marks a point in the engine's output.
///
/// The operation that returned it is complete once every frame with
/// [`Transmit::seq`] up to [`FlushTicket::seq`] has been written to the
/// socket. A ticket whose `seq` is 0 is complete at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlushTicket(u64);

impl FlushTicket {
    /// The last frame that must be written for the operation to be complete.
    pub fn seq(self) -> u64 {
        self.0
    }

    #[cfg(test)]
    pub(crate) fn default_for_tests() -> Self {
        FlushTicket(0)
    }

    /// Whether the operation is complete once `written` frames are written.
    pub fn is_complete(self, written: u64) -> bool {
        written >= self.0
    }
}

/// Frames waiting to be written, in order, and the sum of their lengths.
///
/// Two lanes: control frames (0.7 transport pings and pongs, unnumbered)
/// go out first, even between the segments of a message; numbered frames
/// follow in the order queued.
#[derive(Debug, Default)]
pub(crate) struct TransmitQueue {
    control: VecDeque<Transmit>,
    frames: VecDeque<Transmit>,
    bytes: usize,
    /// The number of the last numbered frame queued (0 before the first).
    last_seq: u64,
}

impl TransmitQueue {
    /// Frames waiting, of both lanes.
    pub(crate) fn len(&self) -> usize {
        self.control.len() + self.frames.len()
    }

    /// The text bytes of all queued frames. A frame whose text is shared
    /// with other connections ([`EncodedMessage::shared`](crate::EncodedMessage::shared))
    /// counts whole here too.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The ticket of everything numbered so far.
    pub(crate) fn ticket(&self) -> FlushTicket {
        FlushTicket(self.last_seq)
    }

    /// Queues a numbered frame; its ticket.
    pub(crate) fn push(&mut self, kind: FrameKind, text: FrameText) -> FlushTicket {
        self.last_seq += 1;
        self.push_numbered(Transmit {
            seq: self.last_seq,
            kind,
            text,
        });
        self.ticket()
    }

    /// Queues a frame numbered by the caller (a frame that takes the place
    /// of others it replaces).
    pub(crate) fn push_numbered(&mut self, transmit: Transmit) {
        self.bytes += transmit.text.len();
        self.frames.push_back(transmit);
    }

    /// Queues an unnumbered control frame, ahead of the numbered ones.
    pub(crate) fn push_control(&mut self, kind: FrameKind, text: FrameText) {
        self.bytes += text.len();
        self.control.push_back(Transmit { seq: 0, kind, text });
    }

    /// Replaces the queued control frame of `kind` with `text`, or queues
    /// it when there is none.
    pub(crate) fn replace_control(&mut self, kind: FrameKind, text: FrameText) {
        match self.control.iter_mut().find(|queued| queued.kind == kind) {
            Some(queued) => {
                self.bytes = self.bytes - queued.text.len() + text.len();
                queued.text = text;
            }
            None => self.push_control(kind, text),
        }
    }

    /// The next frame to write: control frames first.
    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        let transmit = match self.control.pop_front() {
            Some(transmit) => transmit,
            None => self.frames.pop_front()?,
        };
        self.bytes -= transmit.text.len();
        Some(transmit)
    }

    /// Keeps the first `len` numbered frames.
    pub(crate) fn truncate(&mut self, len: usize) {
        for dropped in self.frames.drain(len.min(self.frames.len())..) {
            self.bytes -= dropped.text.len();
        }
    }

    /// Drops every frame (the numbering goes on).
    pub(crate) fn clear(&mut self) {
        self.control.clear();
        self.frames.clear();
        self.bytes = 0;
    }

    /// The numbered frames, in order.
    pub(crate) fn numbered(&self) -> impl DoubleEndedIterator<Item = &Transmit> {
        self.frames.iter()
    }

    /// How many numbered frames wait.
    pub(crate) fn numbered_len(&self) -> usize {
        self.frames.len()
    }
}
