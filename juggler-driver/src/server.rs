//! Server plumbing shared by the runtimes: options, the WebSocket upgrade
//! check, static file paths, TLS from a PEM file and the set of live
//! connections a server closes on shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use tokio::sync::watch;

use crate::admission::{Admission, AdmissionFuture, AdmissionHook, Admitted, UpgradeRequest};
#[cfg(feature = "basic-auth")]
use crate::basic_auth::Htpasswd;
use crate::budget::MemoryBudget;
use crate::connection::Shared;
#[cfg(feature = "static-files")]
use crate::static_files::StaticDir;
use crate::{Compression, Connection, ConnectionOptions, Error, Generation, Runtime};

/// Settings of `listen`, with the reference's defaults.
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::ServerOptions;
///
/// let options = ServerOptions::default()
///     .static_dir("ui/dist")
///     .autoflush_delay(Some(Duration::ZERO));
/// assert_eq!(options.ws_path, "/ws");
/// assert_eq!(options.index_path.as_deref(), Some("/index.html"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerOptions {
    /// Path of the WebSocket endpoint. Default `/ws`.
    pub ws_path: String,
    /// Files under this folder are served over HTTP(S) GET; nothing outside
    /// it ever is. Default: none.
    pub static_dir: Option<PathBuf>,
    /// `GET /` answers `302 Found` to this path; `None` turns that off.
    /// Default `/index.html`.
    pub index_path: Option<String>,
    /// One PEM file holding the certificate chain and the private key; the
    /// server then speaks HTTPS/WSS only. Default: none.
    pub pem_file: Option<PathBuf>,
    /// A TLS configuration of the application's, used instead of
    /// `pem_file`: client certificates (mutual TLS, the chain then readable
    /// with [`Connection::peer_certificates`](crate::Connection::peer_certificates)),
    /// a certificate resolver that reloads, another crypto provider. Give
    /// it `alpn_protocols = [b"http/1.1"]`. Default: none.
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
    /// Settings of every accepted connection (autoflush, keep-alive,
    /// limits).
    pub connection: ConnectionOptions,
    /// How long closing the server waits for each connection's clean close
    /// before dropping it. Default 0.1 s.
    pub shutdown_timeout: Duration,
    /// How long a TLS handshake may take before the socket is dropped.
    /// Default 10 s.
    pub tls_handshake_timeout: Duration,
    /// Which web pages may open the WebSocket. Default
    /// [`OriginPolicy::SameHost`].
    pub origin_policy: OriginPolicy,
    /// Most connections open at once; over it, new upgrades get `503
    /// Service Unavailable` and existing connections are untouched. Upgrades
    /// checked at the same moment may each pass, so the count can exceed it
    /// by the handshakes in flight. `None` lifts the cap. Default 16,384.
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers, and how long
    /// an HTTP connection may wait idle for its next request, before the
    /// socket is closed (slowloris). `None` turns it off. Default 10 s.
    pub header_read_timeout: Option<Duration>,
    /// Whether the client's address ([`Connection::remote`]) is read from
    /// `Forwarded` / `X-Forwarded-For`: only behind a reverse proxy that
    /// sets them, since any client can send them. Default off: the socket
    /// peer's address.
    ///
    /// [`Connection::remote`]: crate::Connection::remote
    pub trust_forwarded_headers: bool,
    /// The application's admission hook, if any: see
    /// [`admission`](Self::admission).
    pub admission: Option<AdmissionHook>,
    /// An htpasswd file (`user:hash` lines, `$apr1$` or bcrypt hashes):
    /// every request, on every route, must then carry the basic auth of
    /// one of its users, or gets `401` with `WWW-Authenticate: Basic
    /// realm=""` (hat-juggler 0.7's `htpasswd_file`). Read once, at
    /// `listen`. Default: none.
    pub htpasswd_file: Option<PathBuf>,
    /// Whether every response (the `101` too) carries `Cache-Control:
    /// no-cache`, as hat-juggler 0.7's do by default: a GUI's assets change
    /// with its back end, and a browser must revalidate them. Default on.
    pub no_cache: bool,
    /// Most bytes all connections together hold of received messages the
    /// application has not taken (decoded size): see [`MemoryBudget`].
    /// Each connection is also bounded by its own
    /// [`max_receive_bytes`](ConnectionOptions::max_receive_bytes).
    /// `None` lifts the server-wide bound. Default 128 MiB.
    pub max_buffered_bytes: Option<usize>,
    /// Which generations the WebSocket path speaks: one
    /// ([`Generations::Only`], default 0.5), or each client's, told by its
    /// first frame ([`Generations::Detect`]).
    pub generations: Generations,
    /// Settings of the 0.6/0.7 connections.
    pub v07: crate::v07::Options,
    /// What the server does with its 0.6/0.7 connections.
    pub v07_handlers: crate::v07::Handlers,
    /// permessage-deflate (RFC 7692), for every generation: by default
    /// answered when a client offers it, as hat-juggler's aiohttp server
    /// does; [`Compression::disabled`] turns it off. See [`Compression`]
    /// for the threshold, window and context takeover.
    pub compression: Compression,
}

/// Which generations a server's WebSocket path speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Generations {
    /// This one only.
    Only(Generation),
    /// Each client's, told by its first text frame (SPEC-0.7.md §13): `{`
    /// with a 0.5 type is 0.5, `{` with type `request` 0.6, a header `0`
    /// to `3` 0.7; any other frame closes the connection as a protocol
    /// error. The server sends nothing until then. A client that sends
    /// nothing for `timeout` (a 0.5 client that only listens) is taken to
    /// speak `default`.
    Detect {
        /// The generation of a client that stays silent.
        default: Generation,
        /// How long to wait for the first frame.
        timeout: Duration,
    },
}

impl Generations {
    /// Detection with a default of `default` after 1 s of silence.
    pub fn detect(default: Generation) -> Self {
        Generations::Detect {
            default,
            timeout: Duration::from_secs(1),
        }
    }
}

impl Default for Generations {
    fn default() -> Self {
        Generations::Only(Generation::V0_5)
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            ws_path: "/ws".into(),
            static_dir: None,
            index_path: Some("/index.html".into()),
            pem_file: None,
            tls_config: None,
            connection: ConnectionOptions::default(),
            shutdown_timeout: Duration::from_millis(100),
            tls_handshake_timeout: Duration::from_secs(10),
            origin_policy: OriginPolicy::SameHost,
            max_connections: Some(16_384),
            header_read_timeout: Some(Duration::from_secs(10)),
            trust_forwarded_headers: false,
            admission: None,
            no_cache: true,
            htpasswd_file: None,
            max_buffered_bytes: Some(128 << 20),
            generations: Generations::default(),
            v07: crate::v07::Options::default(),
            v07_handlers: crate::v07::Handlers::default(),
            compression: Compression::default(),
        }
    }
}

impl ServerOptions {
    /// Sets the permessage-deflate options ([`Compression::disabled`]
    /// turns it off).
    #[must_use]
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the WebSocket endpoint path.
    #[must_use]
    pub fn ws_path(mut self, path: impl Into<String>) -> Self {
        self.ws_path = path.into();
        self
    }

    /// Serves the files under `dir`.
    #[must_use]
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }

    /// Sets (or with `None` turns off) the `GET /` redirect target.
    #[must_use]
    pub fn index_path(mut self, path: Option<&str>) -> Self {
        self.index_path = path.map(str::to_owned);
        self
    }

    /// Serves HTTPS/WSS with this TLS configuration (see
    /// [`tls_config`](Self::tls_config)).
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Serves HTTPS/WSS with the chain and key in this PEM file.
    #[must_use]
    pub fn pem_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pem_file = Some(path.into());
        self
    }

    /// Sets the autoflush delay of accepted connections the reference way.
    #[must_use]
    pub fn autoflush_delay(mut self, delay: Option<Duration>) -> Self {
        self.connection = self.connection.autoflush_delay(delay);
        self
    }

    /// Sets the options of accepted connections.
    #[must_use]
    pub fn connection(mut self, options: ConnectionOptions) -> Self {
        self.connection = options;
        self
    }

    /// Sets the shutdown timeout.
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets which web pages may open the WebSocket.
    #[must_use]
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.origin_policy = policy;
        self
    }

    /// Sets the most connections open at once (`None`: no cap).
    #[must_use]
    pub fn max_connections(mut self, max: Option<usize>) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets the header read and idle timeout of HTTP connections (`None`:
    /// none).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Requires basic auth of a user in this htpasswd file.
    #[must_use]
    pub fn htpasswd_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.htpasswd_file = Some(path.into());
        self
    }

    /// Sets the server-wide bound of buffered received bytes (`None`: no
    /// bound).
    #[must_use]
    pub fn max_buffered_bytes(mut self, bytes: Option<usize>) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// Sets whether every response says `Cache-Control: no-cache`.
    #[must_use]
    pub fn no_cache(mut self, no_cache: bool) -> Self {
        self.no_cache = no_cache;
        self
    }

    /// Reads the client's address from forwarding headers (see
    /// [`trust_forwarded_headers`](Self::trust_forwarded_headers)).
    #[must_use]
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.trust_forwarded_headers = trust;
        self
    }

    /// Decides on every upgrade request, after the built-in checks and
    /// before the `101`: admit it, optionally with a typed context the
    /// application reads from the connection later (the authenticated
    /// user), or refuse it with the HTTP answer of its choice. A refused
    /// request creates no connection.
    ///
    /// ```
    /// use juggler_driver::{Admission, ServerOptions};
    ///
    /// struct User(String);
    ///
    /// let options = ServerOptions::default().admission(|request| {
    ///     let token = request.cookie("session");
    ///     Box::pin(async move {
    ///         match token.as_deref() {
    ///             Some("s3cret") => Admission::admit_with(User("alice".into())),
    ///             _ => Admission::refuse(http::StatusCode::UNAUTHORIZED, "log in first\n"),
    ///         }
    ///     })
    /// });
    /// ```
    #[must_use]
    pub fn admission(
        mut self,
        hook: impl Fn(&UpgradeRequest) -> AdmissionFuture + Send + Sync + 'static,
    ) -> Self {
        self.admission = Some(AdmissionHook(Arc::new(hook)));
        self
    }

    /// The limits on a client's steps before its upgrade, for the runtime
    /// crates' HTTP side.
    pub fn http_timeouts(&self) -> HttpTimeouts {
        HttpTimeouts {
            tls_handshake: self.tls_handshake_timeout,
            header_read: self.header_read_timeout,
        }
    }

    /// Sets the generations the WebSocket path speaks.
    ///
    /// ```
    /// use juggler_driver::{Generation, Generations, ServerOptions};
    ///
    /// // 0.5, 0.6 and 0.7 clients on one path; a silent client is 0.5.
    /// let options = ServerOptions::default().generations(Generations::detect(Generation::V0_5));
    /// ```
    #[must_use]
    pub fn generations(mut self, generations: Generations) -> Self {
        self.generations = generations;
        self
    }

    /// These options for a server of one 0.6/0.7 generation, the one
    /// `v07.generation` names (0.7 if it names 0.5), whose connections go
    /// to `handlers`: what the runtime crates' `v07::listen` serves.
    #[must_use]
    pub fn v07_only(self, handlers: crate::v07::Handlers) -> Self {
        let generation = match self.v07.generation {
            Generation::V0_5 => Generation::V0_7,
            other => other,
        };
        self.generations(Generations::Only(generation))
            .v07_handlers(handlers)
    }

    /// Sets the settings of 0.6/0.7 connections.
    #[must_use]
    pub fn v07(mut self, options: crate::v07::Options) -> Self {
        self.v07 = options;
        self
    }

    /// Sets what the server does with 0.6/0.7 connections.
    #[must_use]
    pub fn v07_handlers(mut self, handlers: crate::v07::Handlers) -> Self {
        self.v07_handlers = handlers;
        self
    }

    /// The options of one accepted connection: its close waits at most the
    /// server's shutdown timeout.
    pub fn accepted_connection_options(&self) -> ConnectionOptions {
        self.connection.clone().close_timeout(self.shutdown_timeout)
    }
}

/// Which web pages may open the WebSocket: the check of a browser's
/// `Origin` header against cross-site WebSocket hijacking.
///
/// A browser lets any page open a WebSocket to any server, with the
/// user's cookies, and tells the server only the page's origin. Without a
/// check, any page an operator has open could read the state or call the
/// actions of a back end on their network. So the default admits only
/// pages of the server's own host and port, as Phoenix and Django Channels
/// do by default. Requests without `Origin` (the Python and Rust clients,
/// other non-browser programs) are always admitted: `Origin` protects a
/// browser's user, and a program that is not a browser can send any
/// `Origin` it likes anyway.
///
/// ```
/// use juggler_driver::{OriginPolicy, ServerOptions};
///
/// let options = ServerOptions::default().origin_policy(OriginPolicy::AllowList(vec![
///     "https://gui.example.com".into(),
/// ]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Only pages whose origin's host and port are the request's `Host`.
    /// Others get `403 Forbidden`. The default.
    #[default]
    SameHost,
    /// The server's own host, and pages of these origins
    /// (`scheme://host[:port]`; host case and default ports do not matter).
    AllowList(Vec<String>),
    /// Any page. Only for servers with nothing a third-party page must not
    /// read or do.
    Any,
}

/// A host and port, the part of an origin the policy compares.
#[derive(Debug, PartialEq, Eq)]
struct Site {
    host: String,
    port: u16,
}

impl Site {
    /// The site of an origin (`scheme://host[:port]`); `None` for `null`
    /// and anything else that is not a web origin.
    fn of_origin(origin: &str) -> Option<Site> {
        let uri: http::Uri = origin.parse().ok()?;
        let default_port = default_port(uri.scheme_str()?)?;
        Some(Site {
            host: uri.host()?.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(default_port),
        })
    }

    /// The site of a `Host` header, its port defaulting to `default_port`.
    fn of_host(host: &str, default_port: u16) -> Option<Site> {
        let authority: http::uri::Authority = host.parse().ok()?;
        Some(Site {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl OriginPolicy {
    /// Whether a request with these headers may open the WebSocket.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if *self == OriginPolicy::Any {
            return true;
        }
        let Some(site) = origin.to_str().ok().and_then(Site::of_origin) else {
            return false;
        };
        let origin_port = site.port;
        let same_host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| Site::of_host(host, origin_port))
            .is_some_and(|host| host == site);
        same_host
            || match self {
                OriginPolicy::AllowList(allowed) => allowed
                    .iter()
                    .any(|allowed| Site::of_origin(allowed).is_some_and(|a| a == site)),
                _ => false,
            }
    }
}

/// How long a client may take over the steps before its upgrade: see
/// [`ServerOptions::tls_handshake_timeout`] and
/// [`ServerOptions::header_read_timeout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// The TLS handshake.
    pub tls_handshake: Duration,
    /// A request's headers, and the wait for the next request.
    pub header_read: Option<Duration>,
}

/// Why [`Acceptor::check`] or [`Acceptor::decide`] refused an upgrade
/// request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a WebSocket upgrade we accept: 400 or 426.
    Upgrade(UpgradeRejection),
    /// The origin policy does not admit the page: 403.
    Origin,
    /// `max_connections` are open: 503.
    Full,
    /// The application's admission hook refused, with this answer.
    Application(Box<Response<String>>),
}

impl Refusal {
    /// The HTTP answer to the refused request.
    pub fn response(self) -> Response<String> {
        let (status, text) = match self {
            Refusal::Upgrade(rejection) => return rejection.response(),
            Refusal::Application(response) => return *response,
            Refusal::Origin => (StatusCode::FORBIDDEN, "origin not allowed\n"),
            Refusal::Full => (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n"),
        };
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        response
    }
}

/// Why a request to the WebSocket path is not an upgrade we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRejection {
    /// Not a GET with `Connection: upgrade`, `Upgrade: websocket` and a key.
    NotWebSocket,
    /// A WebSocket version other than 13.
    UnsupportedVersion,
}

impl UpgradeRejection {
    /// The HTTP answer to the rejected request.
    pub fn response(self) -> Response<String> {
        let mut response = Response::new(String::new());
        match self {
            UpgradeRejection::NotWebSocket => {
                *response.status_mut() = StatusCode::BAD_REQUEST;
                *response.body_mut() = "expected a WebSocket upgrade request\n".into();
            }
            UpgradeRejection::UnsupportedVersion => {
                *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
        }
        response
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .map(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
            .unwrap_or(false)
    })
}

/// Checks a WebSocket upgrade request (RFC 6455 §4.2.1) and builds the
/// `101 Switching Protocols` answer.
pub fn upgrade_response<B>(request: &Request<B>) -> Result<Response<()>, UpgradeRejection> {
    let headers = request.headers();
    if request.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(UpgradeRejection::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(UpgradeRejection::UnsupportedVersion);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(UpgradeRejection::NotWebSocket)?;
    let accept = derive_accept_key(key.as_bytes());
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(())
        .expect("static header names and an ASCII accept key are valid");
    Ok(response)
}

/// The `302 Found` answer to `GET /`.
pub fn index_redirect(index_path: &str) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(location) = HeaderValue::from_str(index_path) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Loads the certificate chain and private key of one PEM file into a
/// TLS server configuration (HTTP/1.1 over TLS).
pub fn server_tls_config(pem_file: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    let pem = std::fs::read(pem_file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::Tls(format!("{}: bad certificate: {err}", pem_file.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate",
            pem_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|err| {
        Error::Tls(format!(
            "{}: no usable private key: {err}",
            pem_file.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::crypto_provider()?)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Tls(format!("crypto provider: {err}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| Error::Tls(format!("{}: {err}", pem_file.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listening Juggler server, whatever its runtime.
///
/// Closing it ([`close`](Self::close)) stops accepting, closes every
/// connection it accepted (each waiting at most the shutdown timeout for
/// its clean close) and completes when all are gone. Dropping it without
/// `close` stops accepting and starts closing the connections.
///
/// `juggler_tokio::listen` and `juggler_smol::listen` (and their `v07`
/// modules' `listen`) return one.
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::Server;
///
/// /// Given `let server = listen("127.0.0.1", 0, on_connection, options).await?;`
/// async fn report_and_stop(server: Server) {
///     println!("serving {} on port {}", server.url(), server.local_addr().port());
///     println!("{} connections open", server.connection_count());
///     let summary = server.close().await; // every connection closed cleanly, or cut at its deadline
///     println!("closed {}, {} of them at the deadline", summary.closed, summary.timed_out);
/// }
/// ```
#[must_use = "dropping the Server shuts it down: keep it while it serves, then `close().await` it"]
pub struct Server {
    local_addr: SocketAddr,
    url: String,
    registry: Arc<Registry>,
    stop: watch::Sender<bool>,
    accept_done: watch::Receiver<()>,
    runtime: Arc<dyn Runtime>,
}

/// The accept loop's side of a [`Server`]: it tells the loop when to stop,
/// and dropping it tells the server that the loop (and the HTTP connections
/// it owns) is gone.
pub struct AcceptControl {
    stop: watch::Receiver<bool>,
    _done: watch::Sender<()>,
}

impl AcceptControl {
    /// Completes when the server asks the accept loop to stop.
    pub async fn stopped(&mut self) {
        let _ = self.stop.wait_for(|stop| *stop).await;
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server").field("url", &self.url).finish()
    }
}

impl Server {
    /// A server listening on `local_addr`; runtime crates call this from
    /// `listen` and run the accept loop with the [`AcceptControl`].
    pub fn new(
        local_addr: SocketAddr,
        url: String,
        registry: Arc<Registry>,
        runtime: Arc<dyn Runtime>,
    ) -> (Server, AcceptControl) {
        let (stop, stop_rx) = watch::channel(false);
        let (done, accept_done) = watch::channel(());
        let server = Server {
            local_addr,
            url,
            registry,
            stop,
            accept_done,
            runtime,
        };
        (
            server,
            AcceptControl {
                stop: stop_rx,
                _done: done,
            },
        )
    }

    /// The address the server listens on (with the real port when `0` was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL clients connect to: `ws://` or `wss://`, address, `ws_path`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many accepted connections are open or closing.
    pub fn connection_count(&self) -> usize {
        self.registry.live()
    }

    /// The byte budget its connections share
    /// ([`max_buffered_bytes`](ServerOptions::max_buffered_bytes)): what
    /// they hold now, and the limit.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        self.registry.budget()
    }

    /// Stops accepting, closes every connection and waits until all are
    /// gone, then says what it closed.
    ///
    /// All connections close at once, each bounded by its own close
    /// deadline: the moment it was told to close plus `shutdown_timeout`.
    /// A peer that does not answer the close handshake by then is cut off,
    /// so the whole close takes `shutdown_timeout` plus the time the
    /// runtime needs to run the connections' tasks, whatever the peers do
    /// and however many there are.
    pub async fn close(&self) -> ShutdownSummary {
        self.stop.send_replace(true);
        // Closing starts before the accept loop has stopped: that loop is
        // a task too, and on a busy executor it may run late (on smol's
        // one-thread global executor, behind every busy connection). What
        // it accepts meanwhile is closed on arrival and waited for below.
        self.registry.start_closing();
        let mut accept_done = self.accept_done.clone();
        // Ends with an error once the accept loop has dropped its control.
        while accept_done.changed().await.is_ok() {}
        self.registry.wait_all_done().await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stop.send_replace(true) {
            let registry = self.registry.clone();
            self.runtime.spawn(Box::pin(async move {
                registry.close_all().await;
            }));
        }
    }
}

/// What a server does with every upgraded WebSocket, the same on every
/// runtime: build the connection, register it, hand it to the application
/// (before its first frame is read), then start its driver.
pub struct Acceptor {
    on_connection: Box<dyn Fn(Connection) + Send + Sync>,
    registry: Arc<Registry>,
    options: ConnectionOptions,
    origin_policy: OriginPolicy,
    max_connections: Option<usize>,
    trust_forwarded: bool,
    admission: Option<AdmissionHook>,
    runtime: Arc<dyn Runtime>,
    generations: Generations,
    v07: crate::v07::Options,
    v07_handlers: crate::v07::Handlers,
    pub(crate) compression: Compression,
}

/// An upgrade request that passed [`Acceptor::check`], waiting for
/// [`Acceptor::decide`].
#[derive(Debug)]
pub struct Checked {
    response: Response<()>,
    request: UpgradeRequest,
    compression: Option<juggler_deflate::Negotiated>,
}

impl Acceptor {
    /// An acceptor for a server with these options.
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        registry: Arc<Registry>,
        options: &ServerOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        Acceptor {
            on_connection: Box::new(on_connection),
            registry,
            options: options.accepted_connection_options(),
            origin_policy: options.origin_policy.clone(),
            max_connections: options.max_connections,
            trust_forwarded: options.trust_forwarded_headers,
            admission: options.admission.clone(),
            runtime,
            generations: options.generations,
            v07: {
                let mut v07 = options.v07.clone();
                v07.close_timeout = options.shutdown_timeout;
                v07
            },
            v07_handlers: options.v07_handlers.clone(),
            compression: options.compression.clone(),
        }
    }

    /// The built-in checks of a request to the WebSocket path, before
    /// anything is switched: it must be an upgrade we accept, come from a
    /// page the origin policy admits and find the server with room.
    /// Synchronous, so that nothing of the request is held across an
    /// `.await`; [`decide`](Self::decide) runs the application's hook.
    pub fn check<B>(
        &self,
        request: &Request<B>,
        peer_addr: Option<SocketAddr>,
    ) -> Result<Checked, Refusal> {
        let mut response = upgrade_response(request).map_err(|rejection| {
            crate::metrics::upgrade_refused("bad_request");
            Refusal::Upgrade(rejection)
        })?;
        if !self.origin_policy.admits(request.headers()) {
            crate::metrics::upgrade_refused("origin");
            tracing::debug!(origin = ?request.headers().get(header::ORIGIN), "WebSocket upgrade refused: origin");
            return Err(Refusal::Origin);
        }
        if let Some(max) = self.max_connections {
            if !self.registry.has_room(max) {
                crate::metrics::upgrade_refused("max_connections");
                tracing::debug!(max, "WebSocket upgrade refused: max_connections");
                return Err(Refusal::Full);
            }
        }
        let compression = crate::compression::answer(&self.compression, request, &mut response);
        Ok(Checked {
            response,
            request: UpgradeRequest::new(request, peer_addr, self.trust_forwarded),
            compression,
        })
    }

    /// Runs the application's admission hook, if any, on a checked
    /// request. Admitted: the `101` to answer with, and what the
    /// connection keeps; refused: why ([`Refusal::response`] is the
    /// answer), and no connection is made.
    pub async fn decide(&self, checked: Checked) -> Result<(Response<()>, Admitted), Refusal> {
        let Checked {
            response,
            request,
            compression,
        } = checked;
        let context = match &self.admission {
            None => None,
            Some(hook) => match (hook.0)(&request).await {
                Admission::Admit(context) => context,
                Admission::Refuse(answer) => {
                    crate::metrics::upgrade_refused("application");
                    tracing::debug!(peer = ?request.peer_addr, status = %answer.status(), "WebSocket upgrade refused by the application");
                    return Err(Refusal::Application(Box::new(answer)));
                }
            },
        };
        let admitted = Admitted {
            request: Some(Arc::new(request)),
            context,
            compression,
        };
        Ok((response, admitted))
    }

    /// The WebSocket settings for accepted connections: those of the
    /// generation spoken, or with detection the larger limits of both.
    pub fn websocket_config(&self) -> async_tungstenite::tungstenite::protocol::WebSocketConfig {
        let v05 = self.options.websocket_config();
        let v07 = self.v07.websocket_config();
        match self.generations {
            Generations::Only(Generation::V0_5) => v05,
            Generations::Only(_) => v07,
            Generations::Detect { .. } => {
                let larger = self.options.max_message_size.max(self.v07.max_frame_size);
                v05.max_message_size(Some(larger))
                    .max_frame_size(Some(larger))
            }
        }
    }

    /// Takes over one upgraded WebSocket, with what its admission kept.
    pub fn accept<S>(
        self: &Arc<Self>,
        socket: async_tungstenite::WebSocketStream<S>,
        admitted: Admitted,
    ) where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
    {
        match self.generations {
            Generations::Only(generation) => self.accept_as(socket, admitted, generation, None),
            Generations::Detect { default, timeout } => {
                let acceptor = self.clone();
                let span = tracing::debug_span!("juggler_detect", peer = ?admitted.request.as_ref().and_then(|request| request.peer_addr));
                self.runtime.spawn(Box::pin(tracing::Instrument::instrument(
                    async move {
                        let deadline = acceptor.runtime.now() + timeout;
                        let mut socket = socket;
                        match crate::detect::first_frame(&mut socket, &*acceptor.runtime, deadline).await {
                            crate::detect::Detected::Generation(generation, frame) => {
                                tracing::debug!(%generation, "generation detected");
                                acceptor.accept_as(socket, admitted, generation, Some(frame));
                            }
                            crate::detect::Detected::Silent => {
                                tracing::debug!(generation = %default, "no first frame: the default generation");
                                acceptor.accept_as(socket, admitted, default, None);
                            }
                            crate::detect::Detected::Violation(violation) => {
                                crate::metrics::upgrade_refused("generation");
                                tracing::debug!(%violation, "first frame of no generation");
                                crate::detect::refuse(socket, violation).await;
                            }
                            crate::detect::Detected::Gone => {}
                        }
                    },
                    span,
                )));
            }
        }
    }

    /// Starts a connection of `generation`, `first_frame` already read.
    fn accept_as<S>(
        &self,
        socket: async_tungstenite::WebSocketStream<S>,
        admitted: Admitted,
        generation: Generation,
        first_frame: Option<String>,
    ) where
        S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer_addr = admitted
            .request
            .as_ref()
            .and_then(|request| request.peer_addr);
        if generation != Generation::V0_5 {
            let options = self.v07.clone().generation(generation);
            let (connection, driver) = crate::v07::accept(
                socket,
                options,
                &self.v07_handlers,
                admitted,
                self.runtime.clone(),
                self.registry.budget().clone(),
                first_frame,
            );
            tracing::debug!(parent: connection.span(), ?peer_addr, "juggler connection accepted");
            if self.registry.add_registered(connection.registered()) {
                connection.announce(&self.v07_handlers);
            }
            self.runtime.spawn(driver);
            return;
        }
        let (connection, driver) = crate::driver::prepare_admitted(
            socket,
            self.options.clone(),
            admitted,
            self.runtime.clone(),
            self.registry.budget().clone(),
            first_frame,
        );
        tracing::debug!(parent: connection.span(), ?peer_addr, "juggler connection accepted");
        if self.registry.add(&connection) {
            (self.on_connection)(connection);
        }
        self.runtime.spawn(driver);
    }
}

/// What a Juggler endpoint is on every runtime: the acceptor of its
/// upgrades and the connections it made. The runtime crates' `JugglerEndpoint`
/// adds only how to mount it (an axum handler, a call from a hyper service)
/// and derefs to this.
#[derive(Clone)]
pub struct Endpoint {
    acceptor: Arc<Acceptor>,
    registry: Arc<Registry>,
    no_cache: bool,
}

/// The options set away from their defaults that only juggler-rs's own
/// HTTP server applies (see [`Endpoint::new`]).
fn http_side_options(options: &ServerOptions) -> Vec<&'static str> {
    let default = ServerOptions::default();
    [
        ("ws_path", options.ws_path != default.ws_path),
        ("static_dir", options.static_dir.is_some()),
        ("index_path", options.index_path != default.index_path),
        ("pem_file", options.pem_file.is_some()),
        ("tls_config", options.tls_config.is_some()),
        (
            "tls_handshake_timeout",
            options.tls_handshake_timeout != default.tls_handshake_timeout,
        ),
        (
            "header_read_timeout",
            options.header_read_timeout != default.header_read_timeout,
        ),
        ("htpasswd_file", options.htpasswd_file.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.registry.live())
            .finish()
    }
}

impl Endpoint {
    /// An endpoint to embed in the application's own HTTP server, calling
    /// `on_connection` with every new connection, which runs on `runtime`.
    ///
    /// Fails with [`Error::Config`] when `options` set what only a server
    /// of juggler-rs's own can apply, the HTTP side: `ws_path` (mount the
    /// handler at your path), `static_dir`, `index_path`, `pem_file`,
    /// `tls_config`, `tls_handshake_timeout`, `header_read_timeout` and
    /// `htpasswd_file` (the runtime crates offer basic auth for your
    /// server). `no_cache` applies to the endpoint's own answers.
    pub fn new(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Self, Error> {
        let unapplied = http_side_options(options);
        if !unapplied.is_empty() {
            return Err(Error::Config(format!(
                "an embedded endpoint can't apply {}: they are the HTTP server's",
                unapplied.join(", ")
            )));
        }
        Ok(Self::serving(on_connection, options, runtime))
    }

    /// The endpoint of a server of juggler-rs's own, which applies the
    /// HTTP side of `options` itself.
    pub fn serving(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        let registry = Arc::new(Registry::new(MemoryBudget::new(options.max_buffered_bytes)));
        let acceptor = Arc::new(Acceptor::new(
            on_connection,
            registry.clone(),
            options,
            runtime,
        ));
        Endpoint {
            acceptor,
            registry,
            no_cache: options.no_cache,
        }
    }

    /// Whether its answers carry `Cache-Control: no-cache`
    /// ([`ServerOptions::no_cache`]).
    pub fn no_cache(&self) -> bool {
        self.no_cache
    }

    /// What decides on and takes over its upgrades.
    pub fn acceptor(&self) -> &Arc<Acceptor> {
        &self.acceptor
    }

    /// Its connections, for a server that closes them.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// How many of its connections are open or closing.
    pub fn connection_count(&self) -> usize {
        self.registry.live()
    }

    /// The byte budget its connections share.
    pub fn memory_budget(&self) -> &Arc<MemoryBudget> {
        self.registry.budget()
    }

    /// Closes every connection it accepted and waits until all are gone;
    /// later upgrades are closed on arrival. Stop the HTTP server first.
    pub async fn close(&self) -> ShutdownSummary {
        self.registry.close_all().await
    }
}

/// What `listen` loads from its options before it binds: the TLS
/// configuration (`pem_file`), the static folder (`static_dir`) and the
/// users (`htpasswd_file`).
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerFiles {
    /// From `pem_file`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// From `static_dir`.
    #[cfg(feature = "static-files")]
    pub static_dir: Option<StaticDir>,
    /// From `htpasswd_file`.
    #[cfg(feature = "basic-auth")]
    pub htpasswd: Option<Htpasswd>,
}

/// Loads the [`ServerFiles`] of `options`. An option whose feature is
/// off (`static_dir` without `static-files`, `htpasswd_file` without
/// `basic-auth`) is an [`Error::Config`], not ignored.
pub fn load_server_files(options: &ServerOptions) -> Result<ServerFiles, Error> {
    #[cfg(not(feature = "static-files"))]
    if options.static_dir.is_some() {
        return Err(Error::Config(
            "static_dir needs juggler-rs's `static-files` feature".into(),
        ));
    }
    #[cfg(not(feature = "basic-auth"))]
    if options.htpasswd_file.is_some() {
        return Err(Error::Config(
            "htpasswd_file needs juggler-rs's `basic-auth` feature".into(),
        ));
    }
    Ok(ServerFiles {
        tls: match &options.tls_config {
            Some(config) => Some(config.clone()),
            None => options
                .pem_file
                .as_deref()
                .map(server_tls_config)
                .transpose()?,
        },
        #[cfg(feature = "static-files")]
        static_dir: options
            .static_dir
            .as_ref()
            .map(StaticDir::new)
            .transpose()?,
        #[cfg(feature = "basic-auth")]
        htpasswd: options
            .htpasswd_file
            .as_deref()
            .map(Htpasswd::load)
            .transpose()?,
    })
}

/// The connections a server accepted, so that closing the server closes
/// them all, and the byte budget they share. Holds no handle: it never
/// keeps a connection open.
pub struct Registry {
    inner: Mutex<RegistryInner>,
    budget: Arc<MemoryBudget>,
}

#[derive(Default)]
struct RegistryInner {
    /// Every connection added and not yet pruned: the live ones, and those
    /// that ended since the last prune.
    connections: Vec<Weak<dyn Registered>>,
    /// Prune when `connections` grows to this length: twice what the last
    /// prune left, so adding stays O(1) amortized however many are open.
    prune_at: usize,
    closing: bool,
}

/// The least `prune_at`.
const MIN_PRUNE_AT: usize = 64;

impl RegistryInner {
    /// Drops the connections that ended.
    fn prune(&mut self) {
        self.connections.retain(is_live);
        self.prune_at = (self.connections.len() * 2).max(MIN_PRUNE_AT);
    }
}

/// A server connection of any generation, as its server's [`Registry`]
/// sees it.
pub(crate) trait Registered: Send + Sync {
    /// Its socket is gone.
    fn is_done(&self) -> bool;
    /// Closes it.
    fn close(&self);
    /// Waits until its socket is gone.
    fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_>;
    /// Its close was cut off at the close timeout.
    fn close_timed_out(&self) -> bool;
}

impl Registered for Shared {
    fn is_done(&self) -> bool {
        Shared::is_done(self)
    }
    fn close(&self) {
        Shared::close(self)
    }
    fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_> {
        Box::pin(Shared::wait_done(self))
    }
    fn close_timed_out(&self) -> bool {
        Shared::close_timed_out(self)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(MemoryBudget::new(None))
    }
}

fn is_live(weak: &Weak<dyn Registered>) -> bool {
    weak.upgrade()
        .is_some_and(|connection| !connection.is_done())
}

impl Registry {
    /// A registry whose connections share `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Registry {
            inner: Mutex::default(),
            budget,
        }
    }

    /// The byte budget its connections share.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Adds an accepted connection; once the server is closing, closes it
    /// too and returns `false` (it is still waited for).
    pub fn add(&self, connection: &Connection) -> bool {
        let shared: Arc<dyn Registered> = connection.shared_arc().clone();
        self.add_registered(shared)
    }

    /// [`add`](Self::add) for a connection of any generation.
    pub(crate) fn add_registered(&self, connection: Arc<dyn Registered>) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.connections.len() >= inner.prune_at {
            inner.prune();
        }
        inner.connections.push(Arc::downgrade(&connection));
        if inner.closing {
            drop(inner);
            connection.close();
            return false;
        }
        true
    }

    /// How many accepted connections are still open or closing.
    pub fn live(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .connections
            .iter()
            .filter(|weak| is_live(weak))
            .count()
    }

    /// Whether fewer than `max` accepted connections are open or closing.
    /// Looks at each connection only when the ones added since the last
    /// look could make `max`, so a server with many open connections
    /// admits one in O(1) time.
    pub fn has_room(&self, max: usize) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.connections.len() < max {
            return true;
        }
        inner.prune();
        inner.connections.len() < max
    }

    /// Refuses new connections, closes every live one, and waits until all
    /// have released their sockets (each takes at most its close timeout).
    pub async fn close_all(&self) -> ShutdownSummary {
        self.start_closing();
        self.wait_all_done().await
    }

    /// Closes every live connection; from now on, connections added are
    /// closed on arrival (and still waited for by
    /// [`wait_all_done`](Self::wait_all_done)).
    pub fn start_closing(&self) {
        let live: Vec<Arc<dyn Registered>> = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.closing = true;
            inner.connections.iter().filter_map(Weak::upgrade).collect()
        };
        for connection in &live {
            connection.close();
        }
    }

    /// Waits until every connection added so far has released its socket.
    pub async fn wait_all_done(&self) -> ShutdownSummary {
        let live: Vec<Arc<dyn Registered>> = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .connections
                .drain(..)
                .filter_map(|weak| weak.upgrade())
                .collect()
        };
        for connection in &live {
            connection.wait_done().await;
        }
        ShutdownSummary {
            closed: live.len(),
            timed_out: live
                .iter()
                .filter(|connection| connection.close_timed_out())
                .count(),
        }
    }
}

/// What closing a server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Connections that were open or closing when the close began.
    pub closed: usize,
    /// How many of them did not finish their close handshake within the
    /// shutdown timeout and were cut off at their deadline.
    pub timed_out: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered connection whose end the test decides.
    #[derive(Default)]
    struct Fake {
        done: std::sync::atomic::AtomicBool,
    }

    impl Registered for Fake {
        fn is_done(&self) -> bool {
            self.done.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn close(&self) {}
        fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_> {
            Box::pin(std::future::ready(()))
        }
        fn close_timed_out(&self) -> bool {
            false
        }
    }

    fn held(registry: &Registry) -> usize {
        registry.inner.lock().unwrap().connections.len()
    }

    #[test]
    fn the_registry_forgets_ended_connections_as_it_grows() {
        let registry = Registry::default();
        let mut open: Vec<Arc<Fake>> = Vec::new();
        for number in 0..10_000 {
            let connection = Arc::new(Fake::default());
            registry.add_registered(connection.clone());
            // Nine in ten end at once (half of those dropped, half done).
            match number % 10 {
                0 => open.push(connection),
                1..=5 => drop(connection),
                _ => connection
                    .done
                    .store(true, std::sync::atomic::Ordering::SeqCst),
            }
        }
        assert_eq!(registry.live(), 1_000);
        // At most twice the live ones after the last prune, plus the
        // ones added since.
        assert!(held(&registry) < 4_000, "holds {}", held(&registry));
    }

    #[test]
    fn has_room_counts_only_open_connections() {
        let registry = Registry::default();
        let first: Vec<Arc<Fake>> = (0..3).map(|_| Arc::new(Fake::default())).collect();
        for connection in &first {
            registry.add_registered(connection.clone());
        }
        assert!(registry.has_room(4));
        assert!(!registry.has_room(3));
        first[0]
            .done
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(registry.has_room(3));
        drop(first);
        assert!(registry.has_room(1));
        assert!(!registry.has_room(0));
    }

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method("GET").uri("/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn accepts_a_websocket_upgrade_with_the_rfc_accept_key() {
        let response = upgrade_response(&request(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]))
        .unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The example of RFC 6455 §1.3.
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rejects_plain_requests_and_other_versions() {
        assert_eq!(
            upgrade_response(&request(&[])).unwrap_err(),
            UpgradeRejection::NotWebSocket
        );
        let old = request(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "x"),
        ]);
        assert_eq!(
            upgrade_response(&old).unwrap_err(),
            UpgradeRejection::UnsupportedVersion
        );
        assert_eq!(
            UpgradeRejection::NotWebSocket.response().status(),
            StatusCode::BAD_REQUEST
        );
    }

    fn with(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn the_default_origin_policy_admits_the_same_host_and_non_browsers() {
        let policy = OriginPolicy::default();
        for (origin, host, admitted) in [
            (None, "127.0.0.1:8080", true),
            (Some("http://127.0.0.1:8080"), "127.0.0.1:8080", true),
            (Some("HTTP://LOCALHOST:8080"), "localhost:8080", true),
            (Some("http://gui.example"), "gui.example", true),
            (Some("https://gui.example"), "gui.example", true),
            (Some("http://gui.example:80"), "gui.example", true),
            (Some("http://[::1]:9"), "[::1]:9", true),
            (Some("http://evil.example"), "127.0.0.1:8080", false),
            (Some("http://127.0.0.1:8081"), "127.0.0.1:8080", false),
            (Some("http://127.0.0.1"), "127.0.0.1:8080", false),
            (Some("null"), "127.0.0.1:8080", false),
            (Some("file://"), "127.0.0.1:8080", false),
            (Some("not a url"), "127.0.0.1:8080", false),
        ] {
            assert_eq!(
                policy.admits(&with(origin, host)),
                admitted,
                "{origin:?} to {host}"
            );
        }
    }

    #[test]
    fn allow_lists_and_any() {
        let list = OriginPolicy::AllowList(vec!["https://GUI.example".into()]);
        assert!(list.admits(&with(Some("https://gui.example:443"), "api.example")));
        assert!(!list.admits(&with(Some("http://gui.example"), "api.example")));
        assert!(list.admits(&with(Some("http://api.example"), "api.example")));
        assert!(!list.admits(&with(Some("https://evil.example"), "api.example")));
        assert!(OriginPolicy::Any.admits(&with(Some("https://evil.example"), "api.example")));
        assert!(OriginPolicy::Any.admits(&with(Some("null"), "api.example")));
    }

    #[test]
    fn pem_without_key_or_cert_is_a_tls_error() {
        let path = std::env::temp_dir().join(format!("juggler-bad-{}.pem", std::process::id()));
        std::fs::write(&path, "not a pem").unwrap();
        assert!(matches!(server_tls_config(&path), Err(Error::Tls(_))));
        std::fs::remove_file(&path).unwrap();
    }
}
