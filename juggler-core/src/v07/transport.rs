//! The 0.7 transport layer (SPEC-0.7.md §4): every WebSocket text frame is
//! a one-character header and a payload. `0` ends a user message, `1` is a
//! segment with more to follow, `2` is a ping, `3` the pong that echoes
//! its payload. 0.6 has no transport layer: each frame is a whole message.

use crate::ProtocolError;

/// The segment size of the references: 65,536 (here in bytes).
pub const DEFAULT_MAX_SEGMENT_SIZE: usize = 65_536;

/// The smallest segment size used: one character of UTF-8 always fits.
const MIN_SEGMENT_SIZE: usize = 4;

/// The frames that carry `text` as one user message: segments of at most
/// `max_segment_size` bytes (at least 4), cut on UTF-8 character
/// boundaries, each `1` but the last, which is `0`. An empty text is the
/// one frame `0`; a text of exactly n segments ends with a full `0`
/// segment, never an empty one.
///
/// ```
/// use juggler_core::v07::segments;
///
/// // `é` is two bytes: the first segment is 4 bytes, not 5.
/// let frames: Vec<String> = segments("{\"é\":10}", 4).collect();
/// assert_eq!(frames, ["1{\"é", "1\":10", "0}"]);
/// ```
pub fn segments(text: &str, max_segment_size: usize) -> Segments<'_> {
    Segments {
        text,
        position: 0,
        max: max_segment_size.max(MIN_SEGMENT_SIZE),
        done: false,
    }
}

/// The iterator of [`segments`].
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    text: &'a str,
    position: usize,
    max: usize,
    done: bool,
}

impl Iterator for Segments<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.done {
            return None;
        }
        let rest = &self.text[self.position..];
        let mut end = rest.len().min(self.max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let segment = &rest[..end];
        self.position += end;
        let more = self.position < self.text.len();
        self.done = !more;
        let mut frame = String::with_capacity(1 + segment.len());
        frame.push(if more { '1' } else { '0' });
        frame.push_str(segment);
        Some(frame)
    }
}

/// The ping frame with `payload` (the references send it empty: `2`).
pub fn ping_frame(payload: &str) -> String {
    format!("2{payload}")
}

/// What one received frame was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Package {
    /// The last segment arrived: the whole message's text.
    Message(String),
    /// A segment with more to follow; nothing to do yet.
    Segment,
    /// A ping: answer at once with this pong frame (`3` and the ping's
    /// payload), even between the segments of a message.
    Ping {
        /// The frame to send back.
        pong: String,
    },
    /// A pong; only its arrival matters (any frame counts as traffic).
    Pong,
}

/// Joins a peer's segments into messages, with a limit on a message's
/// size so that a segment flood cannot take unbounded memory. Pings and
/// pongs between segments leave the message being joined alone.
#[derive(Debug, Clone)]
pub struct Reassembler {
    buffer: String,
    max_message_size: usize,
}

impl Reassembler {
    /// A reassembler that refuses messages over `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Reassembler {
            buffer: String::new(),
            max_message_size,
        }
    }

    /// Bytes of a message that waits for its last segment.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes one received text frame. An empty frame, an unknown header
    /// or a message past the size limit is a protocol error; the message
    /// being joined is dropped then.
    pub fn handle_frame(&mut self, frame: &str) -> Result<Package, ProtocolError> {
        let mut chars = frame.chars();
        let header = chars.next().ok_or(ProtocolError::EmptyPackage)?;
        let payload = chars.as_str();
        match header {
            '0' | '1' => {
                let size = self.buffer.len() + payload.len();
                if size > self.max_message_size {
                    self.buffer = String::new();
                    return Err(ProtocolError::MessageTooLarge {
                        size,
                        limit: self.max_message_size,
                    });
                }
                if header == '1' {
                    self.buffer.push_str(payload);
                    return Ok(Package::Segment);
                }
                let message = if self.buffer.is_empty() {
                    payload.to_owned()
                } else {
                    let mut joined = std::mem::take(&mut self.buffer);
                    joined.push_str(payload);
                    joined
                };
                Ok(Package::Message(message))
            }
            '2' => Ok(Package::Ping {
                pong: format!("3{payload}"),
            }),
            '3' => Ok(Package::Pong),
            other => {
                self.buffer = String::new();
                Err(ProtocolError::UnknownPackageHeader(other))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_text_of_whole_segments_ends_with_a_full_last_one() {
        let frames: Vec<String> = segments("abcdefgh", 4).collect();
        assert_eq!(frames, ["1abcd", "0efgh"]);
        assert_eq!(segments("", 4).collect::<Vec<_>>(), ["0"]);
    }

    #[test]
    fn multi_byte_characters_are_never_split() {
        let frames: Vec<String> = segments("a😀😀", 4).collect();
        assert_eq!(frames, ["1a", "1😀", "0😀"]);
    }

    #[test]
    fn a_ping_between_segments_is_answered_and_leaves_the_message_alone() {
        let mut reassembler = Reassembler::new(1 << 20);
        assert_eq!(
            reassembler.handle_frame("1{\"type\":\"requ").unwrap(),
            Package::Segment
        );
        assert_eq!(
            reassembler.handle_frame("2hello-ping").unwrap(),
            Package::Ping {
                pong: "3hello-ping".into()
            }
        );
        assert_eq!(reassembler.handle_frame("3").unwrap(), Package::Pong);
        assert_eq!(
            reassembler.handle_frame("0est\"}").unwrap(),
            Package::Message("{\"type\":\"request\"}".into())
        );
    }

    #[test]
    fn bad_headers_and_floods_are_protocol_errors() {
        let mut reassembler = Reassembler::new(8);
        assert_eq!(
            reassembler.handle_frame(""),
            Err(ProtocolError::EmptyPackage)
        );
        assert_eq!(
            reassembler.handle_frame("{}"),
            Err(ProtocolError::UnknownPackageHeader('{'))
        );
        assert_eq!(
            reassembler.handle_frame("112345").unwrap(),
            Package::Segment
        );
        assert_eq!(
            reassembler.handle_frame("1abcd"),
            Err(ProtocolError::MessageTooLarge { size: 9, limit: 8 })
        );
        assert_eq!(reassembler.buffered(), 0, "the flood is dropped");
    }

    proptest! {
        #[test]
        fn segments_join_back_to_the_text(text in ".{0,300}", max in 0usize..40) {
            let mut reassembler = Reassembler::new(usize::MAX);
            let frames: Vec<String> = segments(&text, max).collect();
            let (last, init) = frames.split_last().unwrap();
            for frame in init {
                prop_assert!(frame.starts_with('1'));
                prop_assert!(frame.len() - 1 <= max.max(MIN_SEGMENT_SIZE));
                prop_assert!(frame.len() > 1, "no empty middle segment");
                prop_assert_eq!(reassembler.handle_frame(frame).unwrap(), Package::Segment);
            }
            prop_assert!(last.starts_with('0'));
            prop_assert!(last.len() - 1 <= max.max(MIN_SEGMENT_SIZE));
            prop_assert_eq!(reassembler.handle_frame(last).unwrap(), Package::Message(text));
        }
    }
}
