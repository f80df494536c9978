//! `listen`: the server side, on hyper over smol's I/O.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http_body_util::{Either, Full};
use hyper::body::Body as _;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH};
use hyper::{Method, Request, Response, StatusCode};
#[cfg(feature = "static-files")]
use juggler_driver::FileBody;
use juggler_driver::{
    index_redirect, Acceptor, Connection, Error, Server, ServerFiles, ServerOptions,
};
#[cfg(feature = "basic-auth")]
use juggler_driver::{unauthorized, Htpasswd};

use crate::runtime::SmolRuntime;

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
    let runtime = SmolRuntime::shared();
    juggler_driver::listen(
        host,
        port,
        on_connection,
        &options,
        runtime,
        |acceptor, files| {
            let app = Arc::new(App {
                endpoint: JugglerEndpoint(acceptor.clone()),
                ws_path: options.ws_path.clone(),
                index_path: options.index_path.clone(),
                files,
                no_cache: options.no_cache,
                routes,
            });
            move |request, peer| app.clone().handle(request, peer)
        },
    )
    .await
}
