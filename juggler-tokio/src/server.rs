//! `listen`: the server side, on axum.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use axum::routing::{any, MethodRouter};
use axum::Router;
use juggler_driver::{Acceptor, Connection, Error, Routes, Server, ServerOptions};
use tower::ServiceExt;

use crate::runtime::TokioRuntime;

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
pub struct JugglerEndpoint(Arc<Acceptor>);

impl std::ops::Deref for JugglerEndpoint {
    type Target = Acceptor;

    fn deref(&self) -> &Acceptor {
        &self.0
    }
}

impl JugglerEndpoint {
    /// An endpoint that calls `on_connection` with every new connection.
    /// Connections run on the tokio runtime this is called from (it panics
    /// outside one, like `tokio::spawn`).
    ///
    /// Fails with [`Error::Config`] when `options` set the HTTP side,
    /// which is your server's (see [`Acceptor::embedded`]); for basic auth and
    /// `Cache-Control` on your routes, add [`BasicAuthLayer`](crate::BasicAuthLayer)
    /// and [`no_cache_layer`](crate::no_cache_layer).
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
    ) -> Result<Self, Error> {
        Acceptor::embedded(on_connection, options, TokioRuntime::current()).map(JugglerEndpoint)
    }

    /// The handler of the upgrade requests, for `Router::route`. Its
    /// answers carry `Cache-Control: no-cache` unless the options turned
    /// `no_cache` off.
    pub fn handler<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let handler = any(websocket).with_state(self.0.clone());
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
/// and the static files: a health check, `/metrics`, a small API. They
/// answer every request but the WebSocket path's and the `/` redirect's;
/// a `404` from them (no route matched) falls through to the static
/// folder. The server's basic auth and `Cache-Control` apply to them as
/// well.
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
    let routes: Routes<Body> = Box::new(move |request| {
        let answer = routes.clone().oneshot(request);
        Box::pin(async move { answer.await.unwrap_or_else(|never| match never {}) })
    });
    let runtime = TokioRuntime::current();
    juggler_driver::listen(host, port, on_connection, &options, runtime, Some(routes)).await
}

async fn websocket(State(acceptor): State<Arc<Acceptor>>, request: Request) -> Response {
    let peer_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    match acceptor.answer(request, peer_addr).await {
        Ok(switching) => switching.map(|()| Body::empty()),
        Err(refusal) => refusal.map(Body::from),
    }
}
