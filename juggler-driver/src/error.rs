//! The error type of connection operations.

use std::io;

use async_tungstenite::tungstenite;
use thiserror::Error;

pub use juggler_core::{CloseReason, ProtocolError};

/// What can go wrong with a Juggler connection.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection is closed; [`Connection::close_reason`](crate::Connection::close_reason)
    /// says why.
    #[error("connection closed")]
    Closed,
    /// The peer's data does not fit the type a
    /// [`TypedConnection`](crate::TypedConnection) reads it as.
    #[error("the peer's data does not fit the type: {0}")]
    RemoteDataType(serde_json::Error),
    /// A value of the application's type does not serialize to JSON (a map
    /// whose keys are not strings, say).
    #[error("the data does not serialize to JSON: {0}")]
    LocalDataType(serde_json::Error),
    /// A [`ReconnectingClient`](crate::ReconnectingClient) has no open
    /// connection: it is between connections (see
    /// [`WhileDisconnected`](crate::WhileDisconnected)), it gave up, or the
    /// connection a call used was lost before the call completed.
    #[error("not connected")]
    Disconnected,
    /// A 0.6/0.7 server answered the request with `success: false` and
    /// this data (usually the error's text).
    #[error("the server refused the request: {0}")]
    Remote(serde_json::Value),
    /// A 0.6/0.7 request got no answer within its timeout.
    #[error("request timed out")]
    Timeout,
    /// The outgoing queue is full ([`Connection::try_send`](crate::Connection::try_send)).
    #[error("send queue is full")]
    QueueFull,
    /// A patch given to `update_local_data` does not apply; nothing changed.
    #[error("patch does not apply to local data: {0}")]
    Patch(String),
    /// The address is not a `ws://` or `wss://` URL the client can use.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// A socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The WebSocket handshake or stream failed.
    #[error("WebSocket error: {0}")]
    WebSocket(WebSocketError),
    /// TLS could not be set up (bad certificate, key or PEM file).
    #[error("TLS error: {0}")]
    Tls(String),
    /// A server option cannot be used (an htpasswd file it cannot parse).
    #[error("configuration error: {0}")]
    Config(String),
    /// The server answered the upgrade with this HTTP status instead of
    /// `101` (401 or 403 from an admission check, 503 when full, ...).
    #[error("the server refused the connection: HTTP {0}")]
    Refused(u16),
    /// TCP, TLS and the WebSocket handshake took longer than
    /// [`ClientOptions::connect_timeout`](crate::ClientOptions::connect_timeout).
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// A group can't own that part of the connection's state
    /// ([`Group::join_at`](crate::Group::join_at)): another group owns
    /// one overlapping it, or the pointer is not one the state can hold
    /// (not a pointer, `""`, or an index past an array's end).
    #[error(transparent)]
    Mount(juggler_core::MountError),
}

/// A failure of the WebSocket layer: its handshake, framing or stream.
/// Opaque, so that the WebSocket implementation under juggler-rs is not
/// part of its API: its text says what failed, and
/// [`source`](std::error::Error::source) leads to the cause (an I/O
/// error, say).
#[derive(Debug)]
pub struct WebSocketError(Box<tungstenite::Error>);

impl std::fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WebSocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Error {
    /// The error of a WebSocket failure: a refusal by HTTP status, or
    /// else the opaque [`WebSocketError`]. Not a `From` impl, which would
    /// make the WebSocket crate's error type part of the API.
    pub(crate) fn websocket(err: tungstenite::Error) -> Self {
        match err {
            tungstenite::Error::Http(response) => Error::Refused(response.status().as_u16()),
            other => Error::WebSocket(WebSocketError(Box::new(other))),
        }
    }
}

impl From<juggler_core::Closed> for Error {
    fn from(_: juggler_core::Closed) -> Self {
        Error::Closed
    }
}

impl From<juggler_core::PathError> for Error {
    fn from(err: juggler_core::PathError) -> Self {
        Error::Patch(err.to_string())
    }
}

impl From<juggler_core::MountError> for Error {
    fn from(err: juggler_core::MountError) -> Self {
        match err {
            juggler_core::MountError::Closed => Error::Closed,
            other => Error::Mount(other),
        }
    }
}

impl From<juggler_core::UpdateError> for Error {
    fn from(err: juggler_core::UpdateError) -> Self {
        match err {
            juggler_core::UpdateError::Closed => Error::Closed,
            juggler_core::UpdateError::Patch(text) => Error::Patch(text),
            other => Error::Patch(other.to_string()),
        }
    }
}

/// Maps a WebSocket read error to the reason the connection closes with.
pub(crate) fn close_reason_of(err: &tungstenite::Error) -> CloseReason {
    use tungstenite::error::{CapacityError, ProtocolError as WsViolation};
    match err {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            CloseReason::Remote
        }
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            CloseReason::Protocol(ProtocolError::FrameTooLarge {
                size: *size,
                limit: *max_size,
            })
        }
        tungstenite::Error::Utf8(_) => CloseReason::Protocol(ProtocolError::InvalidUtf8),
        // The peer's framing violations (RSV1 without an extension among
        // them): 1002. A reset without a close frame stays a transport end.
        tungstenite::Error::Protocol(
            violation @ (WsViolation::NonZeroReservedBits
            | WsViolation::UnmaskedFrameFromClient
            | WsViolation::MaskedFrameFromServer
            | WsViolation::FragmentedControlFrame
            | WsViolation::ControlFrameTooBig
            | WsViolation::UnknownControlFrameType(_)
            | WsViolation::UnknownDataFrameType(_)
            | WsViolation::UnexpectedContinueFrame
            | WsViolation::ExpectedFragment(_)
            | WsViolation::InvalidOpcode(_)
            | WsViolation::InvalidCloseSequence),
        ) => CloseReason::Protocol(ProtocolError::WebSocket(violation.to_string())),
        tungstenite::Error::Io(io) => match juggler_deflate::Violation::of_io_error(io) {
            Some(violation) => CloseReason::Protocol(crate::compression::protocol_error(violation)),
            None => CloseReason::Transport(err.to_string()),
        },
        other => CloseReason::Transport(other.to_string()),
    }
}
