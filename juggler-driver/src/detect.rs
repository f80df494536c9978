//! Telling a client's generation by its first frame, before any
//! connection exists (SPEC-0.7.md §13): the server says nothing until
//! then.

use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use juggler_core::{CloseReason, Generation, ProtocolError};

use crate::error::close_reason_of;
use crate::Runtime;

/// What the first frame said.
pub(crate) enum Detected {
    /// The generation, and the frame itself, for its engine.
    Generation(Generation, String),
    /// Nothing came before the deadline.
    Silent,
    /// The frame is of no generation.
    Violation(ProtocolError),
    /// The client closed or the socket failed first.
    Gone,
}

/// Reads until the first data frame or `deadline`; control frames are
/// skipped (tungstenite answers pings itself).
pub(crate) async fn first_frame<S>(
    socket: &mut WebSocketStream<S>,
    runtime: &dyn Runtime,
    deadline: Instant,
) -> Detected
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let item = match select(socket.next(), runtime.sleep_until(deadline)).await {
            Either::Left((item, _)) => item,
            Either::Right(_) => return Detected::Silent,
        };
        return match item {
            Some(Ok(Message::Text(text))) => match Generation::detect(&text) {
                Ok(generation) => Detected::Generation(generation, text.as_str().to_owned()),
                Err(violation) => Detected::Violation(violation),
            },
            Some(Ok(Message::Binary(_))) => Detected::Violation(ProtocolError::BinaryFrame),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(_))) | None => Detected::Gone,
            Some(Err(err)) => match close_reason_of(&err) {
                CloseReason::Protocol(violation) => Detected::Violation(violation),
                _ => Detected::Gone,
            },
        };
    }
}

/// Closes a socket whose first frame was of no generation, with the
/// violation's close code.
pub(crate) async fn refuse<S>(mut socket: WebSocketStream<S>, violation: ProtocolError)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (code, reason) = CloseReason::Protocol(violation).close_frame();
    let frame = CloseFrame {
        code: code.into(),
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
