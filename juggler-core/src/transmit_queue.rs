//! The engine's outgoing frames, with their text's bytes counted, so a
//! driver can bound what waits for the socket in bytes as well as frames.

use std::collections::VecDeque;

use crate::engine::Transmit;

/// Frames waiting to be written, in order, and the sum of their lengths.
#[derive(Debug, Default)]
pub(crate) struct TransmitQueue {
    frames: VecDeque<Transmit>,
    bytes: usize,
}

impl TransmitQueue {
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// The text bytes of all queued frames. A frame whose text is shared
    /// with other connections ([`EncodedMessage::shared`](crate::EncodedMessage::shared))
    /// counts whole here too.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn push_back(&mut self, transmit: Transmit) {
        self.bytes += transmit.text.len();
        self.frames.push_back(transmit);
    }

    pub(crate) fn pop_front(&mut self) -> Option<Transmit> {
        let transmit = self.frames.pop_front()?;
        self.bytes -= transmit.text.len();
        Some(transmit)
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        for dropped in self.frames.drain(len.min(self.frames.len())..) {
            self.bytes -= dropped.text.len();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Transmit> {
        self.frames.iter()
    }
}
