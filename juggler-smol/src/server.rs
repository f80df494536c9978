//! `listen`: the server side, on hyper over smol's I/O.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{Either, Full};
use hyper::body::Body as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
use juggler_driver::{
    index_redirect, load_server_files, unauthorized, AcceptControl, Connection, Endpoint, Error,
    FileBody, Htpasswd, HttpTimeouts, Io, PeerCertificates, Server, ServerFiles, ServerOptions,
    StaticDir,
};
use smol::net::{TcpListener, TcpStream};
use smol::Task;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::runtime::SmolRuntime;

/// The I/O hyper serves, plain or TLS: one type, so an upgraded request
/// can be turned back into the stream it came on.
type HttpIo = FuturesIo<Box<dyn Io>>;
/// What our own server answers: small bodies whole, files streamed.
type Body = Either<Full<Bytes>, FileBody>;

/// What every request of one server shares.
struct App {
    endpoint: JugglerEndpoint,
    ws_path: String,
    index_path: Option<String>,
    static_dir: Option<StaticDir>,
    no_cache: bool,
    htpasswd: Option<Htpasswd>,
}

impl App {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let no_cache = self.no_cache;
        let authorized = match &self.htpasswd {
            None => true,
            Some(htpasswd) => htpasswd.check(request.headers(), &SmolRuntime).await,
        };
        let mut response = match authorized {
            true => self.route(request, peer).await,
            false => unauthorized().map(|body| Body::Left(body.into())),
        };
        if no_cache {
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        // hyper sends no length on an answer to HEAD; a HEAD's answer says
        // what the GET's would (as axum makes tokio's say).
        let exact = response.body().size_hint().exact();
        if let (Some(length), false) = (exact, response.headers().contains_key(CONTENT_LENGTH)) {
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
        }
        response
    }

    async fn route(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = request.uri().path();
        if path == self.ws_path {
            return self.websocket(request, peer).await;
        }
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        if readable && path == "/" {
            if let Some(index_path) = &self.index_path {
                return index_redirect(index_path).map(|body| Body::Left(body.into()));
            }
        }
        match &self.static_dir {
            Some(dir) => {
                let (request, _) = request.into_parts();
                dir.serve(&request, SmolRuntime::shared())
                    .await
                    .map(Body::Right)
            }
            None => status(StatusCode::NOT_FOUND),
        }
    }

    async fn websocket(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        self.endpoint
            .handle(request, Some(peer))
            .await
            .map(Body::Left)
    }
}

/// A Juggler endpoint to mount in your own hyper server on smol: call
/// [`handle`](Self::handle) from your service for the WebSocket path, after
/// whatever checks of your own.
///
/// The options that concern connections and admission apply
/// (`connection`, `shutdown_timeout`, `origin_policy`, `max_connections`,
/// `admission`, `trust_forwarded_headers`); the HTTP side (`ws_path`,
/// static files, TLS, timeouts) is your server's.
///
/// ```no_run
/// use std::convert::Infallible;
/// use juggler_smol::{JugglerEndpoint, ServerOptions};
///
/// # fn main() -> std::io::Result<()> { smol::block_on(async {
/// let endpoint = JugglerEndpoint::new(|connection| drop(connection), &ServerOptions::default());
/// let listener = smol::net::TcpListener::bind("127.0.0.1:8080").await?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     let endpoint = endpoint.clone();
///     let service = hyper::service::service_fn(move |request| {
///         let endpoint = endpoint.clone();
///         async move { Ok::<_, Infallible>(endpoint.handle(request, Some(peer)).await) }
///     });
///     smol::spawn(async move {
///         let io = smol_hyper::rt::FuturesIo::new(stream);
///         let _ = hyper::server::conn::http1::Builder::new()
///             .serve_connection(io, service)
///             .with_upgrades()
///             .await;
///     })
///     .detach();
/// }
/// # }) }
/// ```
#[derive(Clone, Debug)]
pub struct JugglerEndpoint(Endpoint);

impl std::ops::Deref for JugglerEndpoint {
    type Target = Endpoint;

    fn deref(&self) -> &Endpoint {
        &self.0
    }
}

impl JugglerEndpoint {
    /// An endpoint that calls `on_connection` with every new connection.
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
    ) -> Self {
        JugglerEndpoint(Endpoint::new(on_connection, options, SmolRuntime::shared()))
    }

    /// Answers one request for the WebSocket path: the `101` and a new
    /// connection, or the refusal (400, 403, 503, the admission hook's).
    /// `peer_addr` is the HTTP connection's peer.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        peer_addr: Option<SocketAddr>,
    ) -> Response<Full<Bytes>> {
        let checked = match self.acceptor().check(&request, peer_addr) {
            Ok(checked) => checked,
            Err(refusal) => return refusal.response().map(Full::from),
        };
        let on_upgrade = hyper::upgrade::on(request);
        let (response, admitted) = match self.acceptor().decide(checked).await {
            Ok(decided) => decided,
            Err(refusal) => return refusal.response().map(Full::from),
        };
        let acceptor = self.acceptor().clone();
        smol::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => return tracing::debug!(?peer_addr, %err, "WebSocket upgrade failed"),
            };
            let config = acceptor.websocket_config();
            match upgraded.downcast::<HttpIo>() {
                // Our own server's stream: taken back whole, with no
                // adapter between tungstenite and the socket.
                Ok(parts) => {
                    let io: Box<dyn Io> = parts.io.into_inner();
                    // tungstenite sizes the read buffers it allocates later
                    // after the allocation of the first one, and
                    // `read_buf.to_vec()` of nothing has none: every later
                    // socket read would then be of a few bytes, a syscall
                    // per frame header (1.5 per 100-byte message). Bytes
                    // the client sent before our 101 are rare.
                    let read = if parts.read_buf.is_empty() {
                        Vec::new()
                    } else {
                        let mut read =
                            Vec::with_capacity(config.read_buffer_size.max(parts.read_buf.len()));
                        read.extend_from_slice(&parts.read_buf);
                        read
                    };
                    acceptor.start(io, read, admitted).await;
                }
                // A server of the application's, with its own stream type.
                Err(upgraded) => {
                    let io: Box<dyn Io> = Box::new(UpgradedIo(upgraded));
                    acceptor.start(io, Vec::new(), admitted).await;
                }
            }
        })
        .detach();
        response.map(|()| Full::default())
    }
}

/// An upgraded connection of another server's stream type, as futures-io.
struct UpgradedIo(hyper::upgrade::Upgraded);

impl futures_io::AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut read = hyper::rt::ReadBuf::new(buf);
        match hyper::rt::Read::poll_read(Pin::new(&mut self.0), cx, read.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Left(Full::default()));
    *response.status_mut() = code;
    response
}

/// Starts a Juggler server on `host:port` (port `0` picks a free one) and
/// calls `on_connection` with every new connection.
///
/// `on_connection` runs before the connection reads its first frame and
/// must not block; spawn async work from it. The connection closes when the
/// last handle to it is dropped.
///
/// ```no_run
/// use juggler_smol::{listen, ServerOptions};
///
/// # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
/// let server = listen("127.0.0.1", 0, |connection| {
///     smol::spawn(async move {
///         while let Ok(message) = connection.receive().await {
///             let _ = connection.send(&message).await; // echo
///         }
///     }).detach();
/// }, ServerOptions::default()).await?;
/// println!("listening on {}", server.url());
/// server.close().await;
/// # Ok(()) }) }
/// ```
#[doc(alias("serve", "bind"))]
pub async fn listen(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
) -> Result<Server, Error> {
    let ServerFiles {
        tls,
        static_dir,
        htpasswd,
        ..
    } = load_server_files(&options)?;
    let listener = TcpListener::bind((host, port)).await?;
    let local_addr = listener.local_addr()?;
    let endpoint = JugglerEndpoint::new(on_connection, &options);
    let registry = endpoint.registry().clone();
    let app = Arc::new(App {
        endpoint,
        ws_path: options.ws_path.clone(),
        index_path: options.index_path.clone(),
        static_dir,
        no_cache: options.no_cache,
        htpasswd,
    });
    let acceptor = tls.map(futures_rustls::TlsAcceptor::from);
    let scheme = if acceptor.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{local_addr}{}", options.ws_path);
    tracing::info!(%url, "juggler server listening");
    let (server, control) = Server::new(local_addr, url, registry, SmolRuntime::shared());
    smol::spawn(accept_loop(
        listener,
        app,
        acceptor,
        options.http_timeouts(),
        control,
    ))
    .detach();
    Ok(server)
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<futures_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
    mut control: AcceptControl,
) {
    // HTTP connections are tasks owned here, so ending the loop cancels
    // them; upgraded WebSocket connections run in tasks of their own.
    let mut http: Vec<Task<()>> = Vec::new();
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            control.stopped().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { return };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                http.retain(|task| !task.is_finished());
                http.push(smol::spawn(serve_http(
                    stream,
                    peer,
                    app.clone(),
                    tls.clone(),
                    timeouts,
                )));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(%err, "accept failed");
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_http(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    tls: Option<futures_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
) {
    let (io, certificates): (Box<dyn Io>, _) = match tls {
        None => (Box::new(stream), None),
        Some(acceptor) => {
            let handshake = async { Some(acceptor.accept(stream).await) };
            let timeout = async {
                smol::Timer::after(timeouts.tls_handshake).await;
                None
            };
            match smol::future::or(handshake, timeout).await {
                Some(Ok(stream)) => {
                    let certificates = PeerCertificates::of(stream.get_ref().1);
                    (Box::new(stream), certificates)
                }
                Some(Err(err)) => return tracing::debug!(%peer, %err, "TLS handshake failed"),
                None => return tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    };
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        if let Some(certificates) = &certificates {
            request.extensions_mut().insert(certificates.clone());
        }
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request, peer).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(SmolTimer::new())
        .header_read_timeout(timeouts.header_read)
        .serve_connection(FuturesIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "HTTP connection ended with an error");
    }
}
