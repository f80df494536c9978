//! Errors and close reasons of the engine.

use thiserror::Error;

/// A violation of the Juggler protocol by the peer (SPEC §1).
///
/// Every variant closes the connection that produced it; none affects any
/// other connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer sent a binary WebSocket frame; Juggler uses text frames only.
    #[error("binary frame received; juggler frames are text")]
    BinaryFrame,
    /// A text frame did not hold valid UTF-8.
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// A frame was larger than the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the offending frame in bytes (a lower bound when unknown).
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The frame text is not JSON (or nests deeper than the parser allows).
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    /// The frame is JSON but not an object.
    #[error("frame is not a JSON object")]
    NotAnObject,
    /// The frame object has no string `type` member.
    #[error("frame has no string \"type\" member")]
    MissingType,
    /// The frame's `type` is none of DATA, MESSAGE, PING, PONG.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// The frame object has no `payload` member.
    #[error("frame has no \"payload\" member")]
    MissingPayload,
    /// A DATA payload is not a JSON Patch (RFC 6902) array.
    #[error("DATA payload is not a JSON Patch: {0}")]
    InvalidPatch(String),
    /// A DATA payload has more operations than the configured limit.
    #[error("DATA payload has {count} operations, more than the limit of {limit}")]
    TooManyOperations {
        /// Operations in the offending patch.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A MESSAGE payload that the layer above Juggler (such as RPC) found
    /// malformed, for example an rpc object without an id.
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// A DATA patch does not apply to the remote data; nothing of it was applied.
    #[error("DATA patch does not apply to remote data: {0}")]
    PatchFailed(String),
    /// A DATA patch would make the remote data take more memory than the
    /// configured limit; nothing of it was applied.
    #[error("DATA would make remote data take {size} bytes or more, over the limit of {limit}")]
    RemoteDataTooLarge {
        /// What the remote data would take, decoded (a lower bound).
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A 0.7 frame was empty: it has no package header.
    #[error("empty frame: a 0.7 package needs a header")]
    EmptyPackage,
    /// A 0.7 frame began with a header other than `0`, `1`, `2` or `3`.
    #[error("unknown package header {0:?}")]
    UnknownPackageHeader(char),
    /// A segmented 0.7 message grew past the configured limit before its
    /// last segment.
    #[error("segmented message of {size} bytes or more exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// What the message had reached, in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A 0.6/0.7 message of a type this side does not receive: a `state`,
    /// `notify` or `response` sent to a server, a `request` sent to a
    /// client, or a type that does not exist.
    #[error("unexpected message type {0:?}")]
    UnexpectedMessageType(String),
    /// A violation of the WebSocket framing or of a negotiated extension
    /// (RSV1 where it may not be, say).
    #[error("WebSocket protocol violation: {0}")]
    WebSocket(String),
    /// A compressed message (permessage-deflate) that is not valid
    /// deflate data.
    #[error("compressed message is not valid deflate data")]
    CorruptCompressed,
}

impl ProtocolError {
    /// The WebSocket close code (RFC 6455 §7.4.1) that reports this error.
    pub fn close_code(&self) -> u16 {
        match self {
            ProtocolError::BinaryFrame => 1003,
            ProtocolError::InvalidUtf8 | ProtocolError::CorruptCompressed => 1007,
            ProtocolError::FrameTooLarge { .. }
            | ProtocolError::RemoteDataTooLarge { .. }
            | ProtocolError::MessageTooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}

/// Why an engine closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The application closed the connection.
    Local,
    /// The peer closed the connection cleanly (or the socket reached its end).
    Remote,
    /// The peer broke the protocol.
    Protocol(ProtocolError),
    /// The transport failed: an I/O error, a failed TLS session, a keep-alive
    /// timeout. The text says what happened.
    Transport(String),
}

impl CloseReason {
    /// The WebSocket close code and reason text to send to the peer, if the
    /// connection is still able to send one.
    ///
    /// The text is cut to fit the 123 bytes a close frame allows.
    pub fn close_frame(&self) -> (u16, String) {
        match self {
            CloseReason::Local | CloseReason::Remote => (1000, String::new()),
            CloseReason::Protocol(err) => (err.close_code(), truncate_utf8(&err.to_string(), 123)),
            CloseReason::Transport(text) => (1011, truncate_utf8(text, 123)),
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Remote => f.write_str("closed by the peer"),
            CloseReason::Protocol(err) => write!(f, "protocol error: {err}"),
            CloseReason::Transport(text) => write!(f, "transport error: {text}"),
        }
    }
}

/// The engine is closed: application commands no longer apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("connection closed")]
pub struct Closed;

/// Why [`Engine::update_local_data`](crate::Engine::update_local_data) failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The engine is closed.
    #[error("connection closed")]
    Closed,
    /// The patch does not apply to the local data; nothing of it was applied.
    #[error("patch does not apply to local data: {0}")]
    Patch(String),
    /// An op would change a part of the state that a group owns (see
    /// [`Engine::mount`](crate::Engine::mount)); nothing was applied.
    #[error("the op at {path:?} would change {part:?}, which a group owns")]
    Owned {
        /// The op's path.
        path: String,
        /// The group's part.
        part: String,
    },
}

impl From<Closed> for UpdateError {
    fn from(_: Closed) -> Self {
        UpdateError::Closed
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary: how error
/// texts quote what a peer sent without growing with it.
///
/// ```
/// assert_eq!(juggler_core::truncate_utf8("añb", 2), "a");
/// ```
pub fn truncate_utf8(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
