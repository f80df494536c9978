//! What every generation's reader does alike with an item of the
//! WebSocket stream: what it is to the engine, and how the stream's end
//! reaches the engine.

use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use juggler_core::{CloseReason, Driven, ProtocolError};

use crate::error::close_reason_of;

/// One item of the WebSocket stream: a message, a read error, or the end.
pub(crate) type StreamItem = Option<Result<Message, WsError>>;

/// An item of the stream, classified for the engine.
pub(crate) enum Received {
    /// A text frame: the engine's input.
    Text(Utf8Bytes),
    /// A binary frame, which Juggler has none of.
    Binary,
    /// A ping, pong or raw frame: nothing for the engine.
    Control,
    /// The peer's close frame (its code and reason, if any) or the end of
    /// the stream.
    Closed(Option<(u16, String)>),
    /// Reading failed; nothing more is read.
    Failed(CloseReason),
}

impl Received {
    pub(crate) fn of(item: StreamItem) -> Self {
        match item {
            Some(Ok(Message::Text(text))) => Received::Text(text),
            Some(Ok(Message::Binary(_))) => Received::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Received::Control,
            Some(Ok(Message::Close(frame))) => Received::Closed(
                frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
            ),
            None => Received::Closed(None),
            Some(Err(err)) => Received::Failed(close_reason_of(&err)),
        }
    }
}

/// The payload size of a data frame, 0 for others.
pub(crate) fn frame_len(item: &StreamItem) -> usize {
    match item {
        Some(Ok(Message::Text(text))) => text.len(),
        Some(Ok(Message::Binary(data))) => data.len(),
        _ => 0,
    }
}

/// A binary frame, to the engine: a violation, which closes it; reading
/// goes on until the peer's close ends the stream.
pub(crate) fn binary_frame(engine: &mut impl Driven) {
    engine.handle_protocol_error(ProtocolError::BinaryFrame);
}

/// The end of the peer's stream, to the engine: the peer's close (or the
/// stream's end) with `None`, or why reading failed.
pub(crate) fn stream_ended(engine: &mut impl Driven, failure: Option<CloseReason>) {
    match failure {
        None => engine.handle_transport_closed(CloseReason::Remote),
        Some(CloseReason::Protocol(violation)) => engine.handle_protocol_error(violation),
        Some(reason) => engine.handle_transport_closed(reason),
    }
}
