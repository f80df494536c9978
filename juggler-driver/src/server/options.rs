//! [`ServerOptions`]: what `listen` serves and how, with the reference's
//! defaults, and the files it loads from them before it binds.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::{AdmissionFuture, AdmissionHook, UpgradeRequest};
#[cfg(feature = "basic-auth")]
use crate::basic_auth::Htpasswd;
#[cfg(feature = "static-files")]
use crate::static_files::StaticDir;
use crate::{AutoflushPolicy, Compression, ConnectionOptions, Error, Generation, KeepAlive};

use super::{server_tls_config, OriginPolicy};

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
    /// application has not taken (decoded size): see [`MemoryBudget`](crate::MemoryBudget).
    /// Each connection is also bounded by its own
    /// [`max_receive_bytes`](ConnectionOptions::max_receive_bytes).
    /// `None` lifts the server-wide bound. Default 128 MiB.
    pub max_buffered_bytes: Option<usize>,
    /// Which generations the WebSocket path speaks. By default
    /// ([`Generations::Auto`]) every one the server has something for:
    /// with [`v07_handlers`](Self::v07_handlers) set, each client's, told
    /// by its first frame (a client silent for 1 s is taken for 0.5, so a
    /// 0.5 client that only listens gets its first data a second late);
    /// without them, 0.5 alone. Or one ([`Generations::Only`]), or
    /// detection with a default and timeout of your choice
    /// ([`Generations::Detect`]).
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
    /// Every generation the server has something for (the default): with
    /// [`ServerOptions::v07_handlers`] set, each client's, detected as
    /// [`Generations::detect`]`(Generation::V0_5)` does; without them 0.5
    /// alone, which a 0.6/0.7 client would get nothing from, and no
    /// client waits for detection.
    Auto,
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

    /// What a server with these generations speaks, [`Auto`](Self::Auto)
    /// resolved by whether it has 0.6/0.7 handlers.
    #[must_use]
    pub fn resolved(self, v07_handlers: &crate::v07::Handlers) -> Self {
        match self {
            Generations::Auto if v07_handlers.is_set() => Generations::detect(Generation::V0_5),
            Generations::Auto => Generations::Only(Generation::V0_5),
            other => other,
        }
    }
}

/// [`Generations::Auto`].
impl Default for Generations {
    fn default() -> Self {
        Generations::Auto
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

    /// Sets when state changes go out, on connections of every generation,
    /// the reference way: `None` only on flush, zero at once, else after
    /// the delay (`connection.autoflush` and `v07.autoflush`).
    #[must_use]
    pub fn autoflush_delay(self, delay: Option<Duration>) -> Self {
        self.autoflush(AutoflushPolicy::from_delay(delay))
    }

    /// Sets when state changes go out, on connections of every generation
    /// (`connection.autoflush` and `v07.autoflush`).
    #[must_use]
    pub fn autoflush(mut self, policy: AutoflushPolicy) -> Self {
        self.connection.autoflush = policy;
        self.v07.autoflush = policy;
        self
    }

    /// Sets keep-alive on connections of every generation (`None`: off):
    /// 0.5 sends a WebSocket ping every `interval`, 0.7 its own ping after
    /// `interval` of silence; both close a peer that answers nothing
    /// within `timeout` (`connection.keep_alive`, `v07.ping_delay` and
    /// `v07.ping_timeout`). 0.6 has no pings.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Option<KeepAlive>) -> Self {
        self.connection.keep_alive = keep_alive;
        match keep_alive {
            Some(k) => (self.v07.ping_delay, self.v07.ping_timeout) = (Some(k.interval), k.timeout),
            None => self.v07.ping_delay = None,
        }
        self
    }

    /// Sets the largest WebSocket message a client may send, on
    /// connections of every generation (`connection.max_message_size` and
    /// `v07.max_frame_size`); a larger one closes the connection (1009).
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.connection.max_message_size = bytes;
        self.v07.max_frame_size = bytes;
        self
    }

    /// Sets the most frames waiting for a connection's socket, on
    /// connections of every generation: sending waits while that many
    /// do (`connection.max_send_queue` and `v07.send_queue_size`).
    #[must_use]
    pub fn max_send_queue(mut self, frames: usize) -> Self {
        self.connection = self.connection.max_send_queue(frames);
        self.v07 = self.v07.send_queue_size(frames);
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
    super::applies::check_options_apply(options)?;
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
