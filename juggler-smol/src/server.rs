//! `listen`: the server side, on hyper over smol's I/O.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::{Request, Response};
#[cfg(feature = "basic-auth")]
use juggler_driver::{unauthorized, Htpasswd};
use juggler_driver::{Acceptor, Connection, Error, Routes, Server, ServerOptions};

use crate::runtime::SmolRuntime;

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
pub struct JugglerEndpoint(Arc<Acceptor>);

impl std::ops::Deref for JugglerEndpoint {
    type Target = Acceptor;

    fn deref(&self) -> &Acceptor {
        &self.0
    }
}

impl JugglerEndpoint {
    /// An endpoint that calls `on_connection` with every new connection.
    ///
    /// Fails with [`Error::Config`] when `options` set the HTTP side,
    /// which is your server's (see [`Acceptor::embedded`]); for basic auth on
    /// your routes, see [`require_basic_auth`](crate::require_basic_auth).
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        Acceptor::embedded(on_connection, options, SmolRuntime::shared()).map(JugglerEndpoint)
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
        let mut response = match self.0.answer(request, peer_addr).await {
            Ok(switching) => switching.map(|()| Full::default()),
            Err(refusal) => refusal.map(Full::from),
        };
        if self.no_cache() {
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        response
    }
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
    let routes: Routes<Full<Bytes>> = Box::new(move |request| {
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

/// [`juggler_driver::listen`] on smol.
async fn serve(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
    routes: Option<Routes<Full<Bytes>>>,
) -> Result<Server, Error> {
    let runtime = SmolRuntime::shared();
    juggler_driver::listen(host, port, on_connection, &options, runtime, routes).await
}
