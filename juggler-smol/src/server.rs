//! `listen`: the server side, on hyper over smol's I/O.

use std::convert::Infallible;
use std::future::Future;
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
#[cfg(feature = "static-files")]
use juggler_driver::FileBody;
use juggler_driver::{
    index_redirect, load_server_files, AcceptControl, Connection, Endpoint, Error, HttpTimeouts,
    Io, PeerCertificates, Server, ServerFiles, ServerOptions,
};
#[cfg(feature = "basic-auth")]
use juggler_driver::{unauthorized, Htpasswd};
use smol::net::{TcpListener, TcpStream};
use smol::Task;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::runtime::SmolRuntime;

/// The I/O hyper serves, plain or TLS: one type, so an upgraded request
/// can be turned back into the stream it came on.
type HttpIo = FuturesIo<Box<dyn Io>>;
/// What our own server answers: small bodies whole, files streamed.
type Body = Either<Full<Bytes>, Files>;
/// A static file's body.
#[cfg(feature = "static-files")]
type Files = FileBody;
/// No static files are served without the `static-files` feature.
#[cfg(not(feature = "static-files"))]
type Files = http_body_util::Empty<Bytes>;

/// What every request of one server shares.
struct App {
    endpoint: JugglerEndpoint,
    ws_path: String,
    index_path: Option<String>,
    /// The static folder and the htpasswd users, as their features allow.
    #[cfg_attr(
        not(any(feature = "static-files", feature = "basic-auth")),
        allow(dead_code)
    )]
    files: ServerFiles,
    no_cache: bool,
    /// The application's own routes ([`listen_with_routes`]).
    routes: Option<Routes>,
}

/// The application's routes as [`App`] calls them.
type Routes = Box<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

impl App {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let no_cache = self.no_cache;
        #[cfg(feature = "basic-auth")]
        let refusal = match &self.files.htpasswd {
            None => None,
            Some(htpasswd) => require_basic_auth(htpasswd, request.headers()).await,
        };
        #[cfg(not(feature = "basic-auth"))]
        let refusal: Option<Response<Full<Bytes>>> = None;
        let mut response = match refusal {
            None => self.route(request, peer).await,
            Some(refusal) => refusal.map(Body::Left),
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
        let (parts, body) = request.into_parts();
        if let Some(routes) = &self.routes {
            let copy = request_copy(&parts);
            let response = routes(Request::from_parts(parts, body)).await;
            if response.status() != StatusCode::NOT_FOUND {
                return response.map(Body::Left);
            }
            return self.serve_static(copy).await;
        }
        self.serve_static(parts).await
    }

    /// A file of the static folder, or 404.
    #[cfg_attr(not(feature = "static-files"), allow(clippy::unused_async))]
    async fn serve_static(&self, request: hyper::http::request::Parts) -> Response<Body> {
        #[cfg(feature = "static-files")]
        if let Some(dir) = &self.files.static_dir {
            return dir
                .serve(&request, SmolRuntime::shared())
                .await
                .map(Body::Right);
        }
        let _ = request;
        status(StatusCode::NOT_FOUND)
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

#[cfg(feature = "basic-auth")]
/// Checks a request of your own server for the basic auth of a user of
/// `htpasswd`, as `ServerOptions::htpasswd_file` does for
/// [`listen`](crate::listen): `None` lets it through, `Some` is the `401`
/// to answer. bcrypt checks run on smol's blocking threads, once per user
/// and password.
///
/// ```no_run
/// use juggler_smol::{require_basic_auth, Htpasswd, JugglerEndpoint};
///
/// # async fn answer(endpoint: JugglerEndpoint, htpasswd: Htpasswd, request: hyper::Request<hyper::body::Incoming>) {
/// let response = match require_basic_auth(&htpasswd, request.headers()).await {
///     Some(refusal) => refusal,
///     None => endpoint.handle(request, None).await,
/// };
/// # drop(response) }
/// ```
pub async fn require_basic_auth(
    htpasswd: &Htpasswd,
    headers: &hyper::HeaderMap,
) -> Option<Response<Full<Bytes>>> {
    if htpasswd.check(headers, &SmolRuntime).await {
        None
    } else {
        Some(unauthorized().map(Full::from))
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
/// let endpoint = JugglerEndpoint::new(|connection| drop(connection), &ServerOptions::default())
///     .expect("no HTTP-side options set");
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
    ///
    /// Fails with [`Error::Config`] when `options` set the HTTP side,
    /// which is your server's (see [`Endpoint::new`]); for basic auth on
    /// your routes, see [`require_basic_auth`](crate::require_basic_auth).
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        Endpoint::new(on_connection, options, SmolRuntime::shared()).map(JugglerEndpoint)
    }

    /// Answers one request for the WebSocket path: the `101` and a new
    /// connection, or the refusal (400, 403, 503, the admission hook's).
    /// `peer_addr` is the HTTP connection's peer. The answer carries
    /// `Cache-Control: no-cache` unless the options turned `no_cache` off.
    pub async fn handle<B>(
        &self,
        request: Request<B>,
        peer_addr: Option<SocketAddr>,
    ) -> Response<Full<Bytes>> {
        let mut response = self.answer(request, peer_addr).await;
        if self.no_cache() {
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        response
    }

    async fn answer<B>(
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

/// The method, URI, version and headers of a request, for the static
/// folder once the application's routes have taken the request itself.
fn request_copy(parts: &hyper::http::request::Parts) -> hyper::http::request::Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    copy.into_parts().0
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
    serve(host, port, on_connection, options, None).await
}

/// [`listen`], with routes of yours served beside the WebSocket endpoint
/// and the static files: a health check, `/metrics`, a small API, as a
/// hyper service. It answers every request but the WebSocket path's and
/// the `/` redirect's; a `404` from it falls through to the static folder.
/// The server's basic auth and `Cache-Control` apply to it as well.
///
/// ```no_run
/// use std::convert::Infallible;
/// use http_body_util::Full;
/// use hyper::body::Bytes;
/// use hyper::{Response, StatusCode};
/// use juggler_smol::{listen_with_routes, ServerOptions};
///
/// # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
/// let routes = hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| async move {
///     let mut response = Response::new(Full::new(Bytes::from("ok")));
///     if request.uri().path() != "/health" {
///         *response.status_mut() = StatusCode::NOT_FOUND;
///     }
///     Ok::<_, Infallible>(response)
/// });
/// let server = listen_with_routes("127.0.0.1", 0, drop, ServerOptions::default(), routes).await?;
/// # server.close().await;
/// # Ok(()) }) }
/// ```
pub async fn listen_with_routes<S>(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
    routes: S,
) -> Result<Server, Error>
where
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Full<Bytes>>,
            Error = Infallible,
        > + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let routes: Routes = Box::new(move |request| {
        let answer = routes.call(request);
        Box::pin(async move {
            match answer.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    });
    serve(host, port, on_connection, options, Some(routes)).await
}

async fn serve(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
    routes: Option<Routes>,
) -> Result<Server, Error> {
    let mut files = load_server_files(&options)?;
    let tls = files.tls.take();
    let listener = TcpListener::bind((host, port)).await?;
    let local_addr = listener.local_addr()?;
    let endpoint = JugglerEndpoint(Endpoint::serving(
        on_connection,
        &options,
        SmolRuntime::shared(),
    ));
    let registry = endpoint.registry().clone();
    let app = Arc::new(App {
        endpoint,
        ws_path: options.ws_path.clone(),
        index_path: options.index_path.clone(),
        files,
        no_cache: options.no_cache,
        routes,
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
        let Some(accepted) = accepted else { break };
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
    // Dropping the control tells `Server::close` that the loop is done:
    // the port must be free by then, so that a server restarted on it
    // can bind at once.
    drop(http);
    drop(listener);
    drop(control);
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
