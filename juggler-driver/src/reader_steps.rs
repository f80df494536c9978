//! What every generation's reader does alike with an item of the
//! WebSocket stream: what it is to the engine, and everything but a text
//! frame handed to the engine.

use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use juggler_core::{CloseReason, Driven, ProtocolError};

use crate::driver::StreamState;
use crate::error::close_reason_of;

/// One item of the WebSocket stream: a message, a read error, or the end.
pub(crate) type StreamItem = Option<Result<Message, WsError>>;

/// An item of the stream, classified for the engine.
pub(crate) enum Received {
    /// A text frame: the engine's input.
    Text(Utf8Bytes),
    /// Anything else.
    NotText(NotText),
}

/// An item of the stream that is not a text frame.
pub(crate) enum NotText {
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
    /// [`of`](Self::of), with a data frame over `limit` bytes the violation
    /// tungstenite makes of one past its own limit: a socket that detected
    /// its generation reads up to the larger limit of the generations.
    pub(crate) fn within(item: StreamItem, limit: usize) -> Self {
        let size = frame_len(&item);
        if size > limit {
            let violation = ProtocolError::FrameTooLarge { size, limit };
            return Received::NotText(NotText::Failed(CloseReason::Protocol(violation)));
        }
        Received::of(item)
    }

    pub(crate) fn of(item: StreamItem) -> Self {
        let not_text = match item {
            Some(Ok(Message::Text(text))) => return Received::Text(text),
            Some(Ok(Message::Binary(_))) => NotText::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => NotText::Control,
            Some(Ok(Message::Close(frame))) => NotText::Closed(
                frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
            ),
            None => NotText::Closed(None),
            Some(Err(err)) => NotText::Failed(close_reason_of(&err)),
        };
        Received::NotText(not_text)
    }
}

impl NotText {
    /// Whether it is a data frame (for the metrics).
    pub(crate) fn is_frame(&self) -> bool {
        matches!(self, NotText::Binary)
    }

    /// Whether nothing is read after it.
    pub(crate) fn ends_stream(&self) -> bool {
        matches!(self, NotText::Closed(_) | NotText::Failed(_))
    }

    /// Hands it to the engine. A binary frame is a violation, which closes
    /// the engine; reading goes on until the peer's close ends the stream.
    /// The end reaches the engine as the peer's close, or as why reading
    /// failed.
    pub(crate) fn hand_to(self, engine: &mut impl Driven) -> StreamState {
        let state = match self.ends_stream() {
            true => StreamState::Ended,
            false => StreamState::Open,
        };
        match self {
            NotText::Binary => engine.handle_protocol_error(ProtocolError::BinaryFrame),
            NotText::Control => {}
            NotText::Closed(_) => engine.handle_transport_closed(CloseReason::Remote),
            NotText::Failed(CloseReason::Protocol(violation)) => {
                engine.handle_protocol_error(violation)
            }
            NotText::Failed(reason) => engine.handle_transport_closed(reason),
        }
        state
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
