//! The two runtimes behind one small interface, so that every scenario is
//! written once: run a future to completion, spawn, sleep, time out, and
//! the runtime's own `listen`/`connect` (which return the same
//! [`Connection`] type on both).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{select, Either};
use juggler_tokio::{ClientOptions, Connection, Error, ServerOptions};
use tokio::sync::oneshot;

/// How many executor threads each runtime gets (`--threads`, default 2:
/// one per core here).
static THREADS: OnceLock<usize> = OnceLock::new();

/// Sets the executor thread count; call once, before any runtime starts.
pub fn set_threads(threads: usize) {
    let _ = THREADS.set(threads.max(1));
}

/// The executor thread count.
pub fn threads() -> usize {
    *THREADS.get_or_init(|| 2)
}

/// Which runtime a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// A multi-threaded tokio runtime with [`threads`] workers.
    Tokio,
    /// smol's global executor with [`threads`] threads (see
    /// [`Rt::prepare_smol`]).
    Smol,
}

impl Rt {
    /// The runtime's name as printed and accepted by `--runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Rt::Tokio => "tokio",
            Rt::Smol => "smol",
        }
    }

    /// Parses a `--runtime` value.
    pub fn parse(name: &str) -> Option<Rt> {
        match name {
            "tokio" => Some(Rt::Tokio),
            "smol" => Some(Rt::Smol),
            _ => None,
        }
    }

    /// Gives smol's global executor [`threads`] threads, like the tokio
    /// runtime's workers. Must run before anything touches smol (it reads
    /// `SMOL_THREADS` once).
    pub fn prepare_smol() {
        std::env::set_var("SMOL_THREADS", threads().to_string());
    }

    /// Runs `future` as a task of a fresh runtime (tokio) or of the global
    /// executor (smol) and blocks until it is done, so the scenario's own
    /// code runs on the runtime's worker threads like a server's would.
    pub fn run<T: Send + 'static>(self, future: impl Future<Output = T> + Send + 'static) -> T {
        match self {
            Rt::Tokio => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads())
                    .enable_all()
                    .build()
                    .expect("cannot build the tokio runtime");
                let task = runtime.spawn(future);
                let output = runtime
                    .block_on(task)
                    .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
                runtime.shutdown_timeout(Duration::from_secs(2));
                output
            }
            Rt::Smol => smol::block_on(smol::spawn(future)),
        }
    }

    /// Spawns `future`; the handle resolves to its output, or to an error
    /// if the task panicked or was dropped.
    pub fn spawn<T: Send + 'static>(
        self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Joined<T> {
        let (sender, receiver) = oneshot::channel();
        let task = async move {
            let _ = sender.send(future.await);
        };
        match self {
            Rt::Tokio => drop(tokio::spawn(task)),
            Rt::Smol => smol::spawn(task).detach(),
        }
        Joined(receiver)
    }

    /// Sleeps for `duration`.
    pub async fn sleep(self, duration: Duration) {
        match self {
            Rt::Tokio => tokio::time::sleep(duration).await,
            Rt::Smol => {
                smol::Timer::after(duration).await;
            }
        }
    }

    /// `future`'s output, or `Err` with `what` once `limit` has passed.
    pub async fn timeout<T>(
        self,
        limit: Duration,
        what: &str,
        future: impl Future<Output = T>,
    ) -> Result<T, String> {
        let future = std::pin::pin!(future);
        let sleep = std::pin::pin!(self.sleep(limit));
        match select(future, sleep).await {
            Either::Left((output, _)) => Ok(output),
            Either::Right(((), _)) => Err(format!("timed out after {limit:?}: {what}")),
        }
    }

    /// The runtime's `listen` on 127.0.0.1 with a free port.
    pub async fn listen(
        self,
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
        options: ServerOptions,
    ) -> Result<Server, Error> {
        Ok(match self {
            Rt::Tokio => {
                Server::Tokio(juggler_tokio::listen("127.0.0.1", 0, on_connection, options).await?)
            }
            Rt::Smol => {
                Server::Smol(juggler_smol::listen("127.0.0.1", 0, on_connection, options).await?)
            }
        })
    }

    /// The runtime's `v07::connect`.
    pub async fn connect_v07(
        self,
        url: &str,
        options: juggler_tokio::v07::Options,
    ) -> Result<juggler_tokio::v07::Client, Error> {
        match self {
            Rt::Tokio => juggler_tokio::v07::connect(url, options).await,
            Rt::Smol => juggler_smol::v07::connect(url, options).await,
        }
    }

    /// The runtime's `connect_with`.
    pub async fn connect(self, url: &str, options: ClientOptions) -> Result<Connection, Error> {
        match self {
            Rt::Tokio => juggler_tokio::connect_with(url, options).await,
            Rt::Smol => juggler_smol::connect_with(url, options).await,
        }
    }
}

/// A spawned task's output; see [`Rt::spawn`].
#[derive(Debug)]
pub struct Joined<T>(oneshot::Receiver<T>);

impl<T> Future for Joined<T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map_err(|_| "a spawned task panicked or was dropped".to_owned())
    }
}

/// A listening server of either runtime.
#[derive(Debug)]
pub enum Server {
    /// juggler-tokio's.
    Tokio(juggler_tokio::Server),
    /// juggler-smol's.
    Smol(juggler_smol::Server),
}

impl Server {
    /// The `ws://` URL clients connect to.
    pub fn url(&self) -> &str {
        match self {
            Server::Tokio(server) => server.url(),
            Server::Smol(server) => server.url(),
        }
    }

    /// How many accepted connections are open or closing.
    pub fn connection_count(&self) -> usize {
        match self {
            Server::Tokio(server) => server.connection_count(),
            Server::Smol(server) => server.connection_count(),
        }
    }

    /// Stops accepting and closes every connection.
    pub async fn close(&self) {
        match self {
            Server::Tokio(server) => drop(server.close().await),
            Server::Smol(server) => drop(server.close().await),
        }
    }
}
