//! The little a driver needs from an async runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Instant;

/// A boxed future the runtime runs or waits on.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A boxed future that borrows what it came from.
pub(crate) type BorrowedFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A TCP connection in progress: the stream (with `TCP_NODELAY` set) and
/// the peer's address.
pub type TcpConnecting =
    Pin<Box<dyn Future<Output = io::Result<(Box<dyn Io>, SocketAddr)>> + Send + 'static>>;

/// Spawning, the clock, timers and TCP connect: everything runtime-specific that the
/// connection driver and the client use. `juggler-tokio` and `juggler-smol`
/// each implement it in a few lines.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture);
    /// The runtime's clock: the driver reads time only here, so a runtime
    /// with a virtual clock (tokio's paused time, say) drives every timer
    /// of a connection deterministically.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline` on the clock of
    /// [`now`](Self::now).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;
    /// Runs blocking or CPU-heavy `work` (a bcrypt check, a file system
    /// call) off the async threads; the future completes when it is done.
    fn unblock(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture;
    /// Opens a TCP connection to `host:port`.
    fn connect_tcp(&self, host: String, port: u16) -> TcpConnecting;
    /// Binds a TCP listener on `host:port` (port `0` picks a free one),
    /// for a server of juggler-rs's own. The default fails with
    /// [`io::ErrorKind::Unsupported`]: a runtime that only connects needs
    /// none.
    fn bind_tcp(&self, host: String, port: u16) -> TcpBinding {
        let _ = (host, port);
        Box::pin(std::future::ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this runtime does not listen",
        ))))
    }
}

/// A TCP listener being bound.
pub type TcpBinding = Pin<Box<dyn Future<Output = io::Result<Box<dyn Listener>>> + Send + 'static>>;

/// A connection a [`Listener`] accepted: the stream (with `TCP_NODELAY`
/// set) and the peer's address.
pub type TcpAccepting<'a> =
    Pin<Box<dyn Future<Output = io::Result<(Box<dyn Io>, SocketAddr)>> + Send + 'a>>;

/// A runtime's TCP listener, as [`Runtime::bind_tcp`] makes it; dropping
/// it frees the port.
pub trait Listener: Send + Sync + 'static {
    /// Accepts the next connection.
    fn accept(&self) -> TcpAccepting<'_>;
    /// The address it listens on (with the real port when `0` was asked
    /// for).
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// Runs `work` with [`Runtime::unblock`] and returns what it returned;
/// `None` if it panicked.
pub async fn unblock<T: Send + 'static>(
    runtime: &dyn Runtime,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (sender, output) = tokio::sync::oneshot::channel();
    runtime
        .unblock(Box::new(move || {
            let _ = sender.send(work());
        }))
        .await;
    output.await.ok()
}

/// A byte stream of any runtime, boxed so that plain and TLS streams share
/// one type.
pub trait Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static {}
impl<T: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin + Send + 'static> Io for T {}
