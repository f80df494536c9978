//! What a server does with an upgrade request on every runtime: the
//! built-in checks and the admission hook, then the connection of the
//! generation the client speaks (detected from its first frame if asked).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{header, Request, Response};

use crate::admission::{Admission, AdmissionHook, Admitted, UpgradeRequest};
use crate::budget::MemoryBudget;
use crate::{Compression, Connection, ConnectionOptions, Error, Generation, Runtime};

use super::{
    upgrade_response, Generations, OriginPolicy, Refusal, Registry, ServerOptions, ShutdownSummary,
};

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
    no_cache: bool,
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
            generations: options.generations.resolved(&options.v07_handlers),
            v07: {
                let mut v07 = options.v07.clone();
                v07.close_timeout = options.shutdown_timeout;
                v07
            },
            v07_handlers: options.v07_handlers.clone(),
            compression: options.compression.clone(),
            no_cache: options.no_cache,
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
            Generations::Only(Generation::V0_5) | Generations::Auto => v05,
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
            // `Auto` is resolved when the acceptor is made.
            Generations::Only(generation) => self.accept_as(socket, admitted, generation, None),
            Generations::Auto => self.accept_as(socket, admitted, Generation::V0_5, None),
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
        let (connection, driver) = crate::connection::prepare_admitted(
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

/// The options set away from their defaults that only juggler-rs's own
/// HTTP server applies (see [`Acceptor::embedded`]).
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

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("connections", &self.registry.live())
            .finish()
    }
}

/// What a Juggler endpoint is on every runtime: a server's acceptor, or
/// one embedded in the application's own HTTP server. The runtime crates'
/// `JugglerEndpoint` adds only how to mount it (an axum handler, a call
/// from a hyper service) and derefs to this.
impl Acceptor {
    /// An acceptor to embed in the application's own HTTP server, calling
    /// `on_connection` with every new connection, which runs on `runtime`.
    ///
    /// Fails with [`Error::Config`] when `options` set what only a server
    /// of juggler-rs's own can apply, the HTTP side: `ws_path` (mount the
    /// handler at your path), `static_dir`, `index_path`, `pem_file`,
    /// `tls_config`, `tls_handshake_timeout`, `header_read_timeout` and
    /// `htpasswd_file` (the runtime crates offer basic auth for your
    /// server). `no_cache` applies to the endpoint's own answers.
    pub fn embedded(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Arc<Self>, Error> {
        super::applies::check_options_apply(options)?;
        let unapplied = http_side_options(options);
        if !unapplied.is_empty() {
            return Err(Error::Config(format!(
                "an embedded endpoint can't apply {}: they are the HTTP server's",
                unapplied.join(", ")
            )));
        }
        Ok(Self::serving(on_connection, options, runtime))
    }

    /// The acceptor of a server of juggler-rs's own, which applies the
    /// HTTP side of `options` itself.
    pub fn serving(
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: &ServerOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Arc<Self> {
        let registry = Arc::new(Registry::new(MemoryBudget::new(options.max_buffered_bytes)));
        Arc::new(Acceptor::new(on_connection, registry, options, runtime))
    }

    /// Answers one request for the WebSocket path: the `101` to send
    /// (`Ok`), after which the upgraded socket becomes a connection on
    /// the runtime, or the refusal to send (400, 403, 503, the admission
    /// hook's). `peer_addr` is the HTTP connection's peer.
    pub async fn answer<B>(
        self: &Arc<Self>,
        request: Request<B>,
        peer_addr: Option<SocketAddr>,
    ) -> Result<Response<()>, Response<String>> {
        let checked = self.check(&request, peer_addr).map_err(Refusal::response)?;
        let on_upgrade = hyper::upgrade::on(request);
        let (response, admitted) = self.decide(checked).await.map_err(Refusal::response)?;
        let acceptor = self.clone();
        self.runtime.spawn(Box::pin(async move {
            match on_upgrade.await {
                Ok(upgraded) => super::serve::take_over(&acceptor, upgraded, admitted).await,
                Err(err) => tracing::debug!(?peer_addr, %err, "WebSocket upgrade failed"),
            }
        }));
        Ok(response)
    }

    /// Whether its answers carry `Cache-Control: no-cache`
    /// ([`ServerOptions::no_cache`]).
    pub fn no_cache(&self) -> bool {
        self.no_cache
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
