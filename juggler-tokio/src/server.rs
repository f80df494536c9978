//! `listen`: the server side, on axum.

use std::net::SocketAddr;
use std::sync::Arc;

use async_tungstenite::tokio::TokioAdapter;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::{any, get, MethodRouter};
use axum::Router;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioIo, TokioTimer};
use juggler_driver::{
    index_redirect, load_server_files, AcceptControl, Acceptor, Admitted, Connection, Endpoint,
    Error, HttpTimeouts, PeerCertificates, Server, ServerFiles, ServerOptions,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::runtime::TokioRuntime;

/// Turns an upgraded HTTP connection into an accepted Juggler connection.
async fn start(acceptor: &Arc<Acceptor>, upgraded: Upgraded, admitted: Admitted) {
    let io = TokioAdapter::new(TokioIo::new(upgraded));
    acceptor.start(io, Vec::new(), admitted).await;
}

/// The peer of the HTTP connection a request came on.
#[derive(Debug, Clone, Copy)]
struct PeerAddr(SocketAddr);

/// A Juggler endpoint to mount in your own axum app: one port for your
/// routes and the WebSocket, and your layers (auth, CORS, tracing) apply
/// to the upgrade request too.
///
/// Serve the app with `into_make_service_with_connect_info::<SocketAddr>()`
/// so connections know their peer. The options that concern connections
/// and admission apply (`connection`, `shutdown_timeout`, `origin_policy`,
/// `max_connections`, `admission`, `trust_forwarded_headers`); the HTTP
/// side (`ws_path`, static files, TLS, timeouts) is your server's.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use axum::{routing::get, Router};
/// use juggler_tokio::{JugglerEndpoint, ServerOptions};
///
/// # async fn run() -> std::io::Result<()> {
/// let endpoint = JugglerEndpoint::new(|connection| drop(connection), &ServerOptions::default())
///     .expect("no HTTP-side options set");
/// let app = Router::new()
///     .route("/api/health", get(|| async { "ok" }))
///     .route("/ws", endpoint.handler());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
/// # }
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
    /// Connections run on the tokio runtime this is called from (it panics
    /// outside one, like `tokio::spawn`).
    ///
    /// Fails with [`Error::Config`] when `options` set the HTTP side,
    /// which is your server's (see [`Endpoint::new`]); for basic auth and
    /// `Cache-Control` on your routes, add [`BasicAuthLayer`](crate::BasicAuthLayer)
    /// and [`no_cache_layer`](crate::no_cache_layer).
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        Endpoint::new(on_connection, options, TokioRuntime::current()).map(JugglerEndpoint)
    }

    /// The handler of the upgrade requests, for `Router::route`. Its
    /// answers carry `Cache-Control: no-cache` unless the options turned
    /// `no_cache` off.
    pub fn handler<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let handler = any(websocket).with_state(self.acceptor().clone());
        if self.no_cache() {
            handler.layer(crate::no_cache_layer())
        } else {
            handler
        }
    }
}

/// Starts a Juggler server on `host:port` (port `0` picks a free one) and
/// calls `on_connection` with every new connection.
///
/// `on_connection` runs on the accepting task and must not block; spawn
/// async work from it. The connection closes when the last handle to it is
/// dropped, so keep the one it gets (or a clone) for as long as it should
/// live.
///
/// ```no_run
/// use juggler_tokio::{listen, ServerOptions};
///
/// # async fn run() -> Result<(), juggler_tokio::Error> {
/// let server = listen("127.0.0.1", 0, |connection| {
///     tokio::spawn(async move {
///         while let Ok(message) = connection.receive().await {
///             let _ = connection.send(&message).await; // echo
///         }
///     });
/// }, ServerOptions::default()).await?;
/// println!("listening on {}", server.url());
/// server.close().await;
/// # Ok(()) }
/// ```
#[doc(alias("serve", "bind"))]
pub async fn listen(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
) -> Result<Server, Error> {
    listen_with_routes(host, port, on_connection, options, Router::new()).await
}

/// [`listen`], with routes of yours served beside the WebSocket endpoint
/// and the static files: a health check, `/metrics`, a small API. The
/// server's basic auth and `Cache-Control` apply to them as well. `routes`
/// must not repeat the WebSocket path or `/`, and must not set a fallback
/// when the options name a static folder (axum panics on both).
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use juggler_tokio::{listen_with_routes, ServerOptions};
///
/// # async fn run() -> Result<(), juggler_tokio::Error> {
/// let routes = Router::new().route("/health", get(|| async { "ok" }));
/// let server = listen_with_routes("127.0.0.1", 0, drop, ServerOptions::default(), routes).await?;
/// # server.close().await;
/// # Ok(()) }
/// ```
pub async fn listen_with_routes(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
    routes: Router,
) -> Result<Server, Error> {
    let files = load_server_files(&options)?;
    let listener = TcpListener::bind((host, port)).await?;
    let local_addr = listener.local_addr()?;
    let endpoint = JugglerEndpoint(Endpoint::serving(
        on_connection,
        &options,
        TokioRuntime::current(),
    ));
    let registry = endpoint.registry().clone();
    let acceptor = files.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let router = router(&options, &endpoint, files, routes);
    let scheme = if acceptor.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{local_addr}{}", options.ws_path);
    tracing::info!(%url, "juggler server listening");
    let (server, control) = Server::new(local_addr, url, registry, TokioRuntime::current());
    tokio::spawn(accept_loop(
        listener,
        router,
        acceptor,
        options.http_timeouts(),
        control,
    ));
    Ok(server)
}

#[cfg_attr(
    not(any(feature = "static-files", feature = "basic-auth")),
    allow(unused_variables)
)]
fn router(
    options: &ServerOptions,
    endpoint: &JugglerEndpoint,
    files: ServerFiles,
    routes: Router,
) -> Router {
    let mut router = routes.route(&options.ws_path, endpoint.handler());
    if let Some(index_path) = options.index_path.clone() {
        router = router.route(
            "/",
            get(move || async move { index_redirect(&index_path).map(Body::from) }),
        );
    }
    #[cfg(feature = "static-files")]
    if let Some(dir) = files.static_dir {
        let dir = Arc::new(dir);
        router = router.fallback(move |request: Request| {
            let dir = dir.clone();
            async move {
                let (request, _) = request.into_parts();
                dir.serve(&request, TokioRuntime::current())
                    .await
                    .map(Body::new)
            }
        });
    }
    #[cfg(feature = "basic-auth")]
    if let Some(htpasswd) = files.htpasswd {
        router = router.layer(crate::BasicAuthLayer::new(htpasswd));
    }
    if options.no_cache {
        router = router.layer(crate::no_cache_layer());
    }
    router
}

async fn websocket(State(acceptor): State<Arc<Acceptor>>, request: Request) -> Response {
    let peer_addr = request
        .extensions()
        .get::<PeerAddr>()
        .map(|peer| peer.0)
        .or_else(|| {
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0)
        });
    let checked = match acceptor.check(&request, peer_addr) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.response().map(Body::from),
    };
    let on_upgrade = hyper::upgrade::on(request);
    let (response, admitted) = match acceptor.decide(checked).await {
        Ok(decided) => decided,
        Err(refusal) => return refusal.response().map(Body::from),
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => start(&acceptor, upgraded, admitted).await,
            Err(err) => tracing::debug!(?peer_addr, %err, "WebSocket upgrade failed"),
        }
    });
    response.map(|()| Body::empty())
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
    mut control: AcceptControl,
) {
    // HTTP connections live in this set, so ending the loop ends them;
    // upgraded WebSocket connections run in tasks of their own.
    let mut http = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = control.stopped() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                http.spawn(serve_http(
                    stream,
                    peer,
                    router.clone(),
                    tls.clone(),
                    timeouts,
                ));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        while http.try_join_next().is_some() {}
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
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
) {
    let service = |certificates: Option<PeerCertificates>| {
        hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            if let Some(certificates) = &certificates {
                request.extensions_mut().insert(certificates.clone());
            }
            router.clone().oneshot(request)
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let result = match tls {
        None => {
            http.serve_connection(TokioIo::new(stream), service(None))
                .with_upgrades()
                .await
        }
        Some(acceptor) => {
            match tokio::time::timeout(timeouts.tls_handshake, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let certificates = PeerCertificates::of(stream.get_ref().1);
                    http.serve_connection(TokioIo::new(stream), service(certificates))
                        .with_upgrades()
                        .await
                }
                Ok(Err(err)) => {
                    tracing::debug!(%peer, %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "HTTP connection ended with an error");
    }
}
