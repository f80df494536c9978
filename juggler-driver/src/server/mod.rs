//! Server plumbing shared by the runtimes: options, the Origin policy,
//! the WebSocket upgrade, TLS, the acceptor (with generation detection)
//! and the set of live connections a server closes on shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::budget::MemoryBudget;
use crate::Runtime;

mod acceptor;
mod applies;
mod options;
mod origin;
mod registry;
mod router;
mod serve;
mod tls;
mod upgrade;

pub use acceptor::{Acceptor, Checked};
pub use options::{load_server_files, Generations, HttpTimeouts, ServerFiles, ServerOptions};
pub use origin::OriginPolicy;
pub(crate) use registry::Registered;
pub use registry::{Registry, ShutdownSummary};
pub use router::{RouterBody, Routes};
pub use serve::listen;
pub use tls::server_tls_config;
pub use upgrade::{index_redirect, upgrade_response, Refusal, UpgradeRejection};

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
