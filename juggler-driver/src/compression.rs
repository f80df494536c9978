//! permessage-deflate on our connections: the server's answer in the
//! `101`, and the layer ([`juggler_deflate::DeflateStream`]) put between
//! the upgraded socket and async-tungstenite, the same for both runtimes.

use std::sync::Arc;

use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use http::{header, HeaderValue, Request, Response};
use juggler_deflate::{ClientStream, Compression, DeflateStream, Negotiated, Violation};

use crate::ProtocolError;
#[cfg(feature = "server")]
use crate::{Acceptor, Admitted};

/// Answers a request's permessage-deflate offer, if `compression` takes
/// one: the header goes into `response`, and what was agreed comes back.
pub(crate) fn answer<B>(
    compression: &Compression,
    request: &Request<B>,
    response: &mut Response<()>,
) -> Option<Negotiated> {
    let offers = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let (negotiated, answer) = compression.answer_offers(offers)?;
    let value = HeaderValue::from_str(&answer).ok()?;
    response
        .headers_mut()
        .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    tracing::debug!(%answer, "permessage-deflate negotiated");
    Some(negotiated)
}

/// The protocol error a violation found while inflating closes with.
pub(crate) fn protocol_error(violation: &Violation) -> ProtocolError {
    match violation {
        Violation::Protocol(text) => ProtocolError::WebSocket((*text).to_owned()),
        Violation::Corrupt => ProtocolError::CorruptCompressed,
        Violation::TooLarge { size, limit } => ProtocolError::FrameTooLarge {
            size: *size,
            limit: *limit,
        },
    }
}

/// `from_raw_socket`, or `from_partially_read` when bytes after the
/// handshake were read already.
async fn websocket<S>(
    io: S,
    read: Vec<u8>,
    role: Role,
    config: WebSocketConfig,
) -> WebSocketStream<S>
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    if read.is_empty() {
        WebSocketStream::from_raw_socket(io, role, Some(config)).await
    } else {
        WebSocketStream::from_partially_read(io, read, role, Some(config)).await
    }
}

/// A WebSocket over `io`, through the deflate layer when `negotiated`
/// says so; `read` holds bytes already read after the handshake.
pub(crate) async fn open<S, T>(
    io: S,
    read: Vec<u8>,
    role: Role,
    config: WebSocketConfig,
    negotiated: Option<Negotiated>,
    then: impl AsyncThen<S, T>,
) -> T
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    match negotiated {
        None => then.plain(websocket(io, read, role, config).await),
        Some(negotiated) => {
            let limit = config.max_message_size.unwrap_or(usize::MAX);
            let layer = DeflateStream::with_read(io, negotiated, limit, read);
            // Plain frames from the layer: tungstenite's own read buffer
            // stays empty.
            then.deflate(websocket(layer, Vec::new(), role, config).await)
        }
    }
}

/// What to do with the WebSocket [`open`] made, of either stream type.
pub(crate) trait AsyncThen<S, T> {
    /// Without the layer.
    fn plain(self, socket: WebSocketStream<S>) -> T;
    /// With it.
    fn deflate(self, socket: WebSocketStream<DeflateStream<S>>) -> T;
}

#[cfg(feature = "server")]
struct Accept<'a>(&'a Arc<Acceptor>, Admitted);

#[cfg(feature = "server")]
impl<S> AsyncThen<S, ()> for Accept<'_>
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    fn plain(self, socket: WebSocketStream<S>) {
        self.0.accept(socket, self.1);
    }

    fn deflate(self, socket: WebSocketStream<DeflateStream<S>>) {
        self.0.accept(socket, self.1);
    }
}

#[cfg(feature = "server")]
impl Acceptor {
    /// Takes over one upgraded socket: the WebSocket over it (through
    /// the permessage-deflate layer when the upgrade agreed to it), then
    /// [`accept`](Self::accept). `read` holds bytes the HTTP server read
    /// past the request (usually none).
    pub async fn start<S>(self: &Arc<Self>, io: S, read: Vec<u8>, mut admitted: Admitted)
    where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
    {
        let negotiated = admitted.compression.take();
        let config = self.websocket_config();
        open(
            io,
            read,
            Role::Server,
            config,
            negotiated,
            Accept(self, admitted),
        )
        .await;
    }
}

/// A client's WebSocket handshake over `stream`, offering
/// permessage-deflate when `compression` is on, and the layer put in when
/// the server agreed. A server's answer that breaks RFC 7692 (an extension
/// not offered, a bad parameter) fails the handshake.
pub(crate) async fn client_upgrade<S>(
    mut request: http::Request<()>,
    stream: S,
    config: WebSocketConfig,
    compression: &Compression,
) -> Result<WebSocketStream<ClientStream<S>>, crate::Error>
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
{
    if let Some(offer) = compression.offer() {
        let value = HeaderValue::from_str(&offer).expect("an offer is ASCII");
        request
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    let (mut socket, response) = async_tungstenite::client_async_with_config(
        request,
        ClientStream::new(stream),
        Some(config),
    )
    .await
    .map_err(crate::Error::websocket)?;
    let bad_answer = || {
        crate::Error::websocket(async_tungstenite::tungstenite::Error::Protocol(
            async_tungstenite::tungstenite::error::ProtocolError::InvalidHeader(Box::new(
                header::SEC_WEBSOCKET_EXTENSIONS,
            )),
        ))
    };
    let mut answers = Vec::new();
    for value in response.headers().get_all(header::SEC_WEBSOCKET_EXTENSIONS) {
        answers.push(value.to_str().map_err(|_| bad_answer())?);
    }
    let negotiated = compression.read_answer(answers).map_err(|err| {
        tracing::debug!(%err, "the server's Sec-WebSocket-Extensions answer is refused");
        bad_answer()
    })?;
    if let Some(negotiated) = &negotiated {
        tracing::debug!(?negotiated, "permessage-deflate negotiated");
    }
    let limit = config.max_message_size.unwrap_or(usize::MAX);
    socket.get_mut().negotiated(negotiated, limit);
    Ok(socket)
}
