//! The tokio implementation of the driver's runtime trait.

use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::tokio::TokioAdapter;
use juggler_driver::{BoxFuture, Io, Listener, Runtime, TcpAccepting, TcpBinding, TcpConnecting};
use tokio::net::{TcpListener, TcpStream};

/// Spawns on and sleeps with the tokio runtime the call came from.
#[derive(Debug, Clone)]
pub(crate) struct TokioRuntime(pub(crate) tokio::runtime::Handle);

impl TokioRuntime {
    /// The runtime of the calling task. Panics outside a tokio runtime,
    /// like `tokio::spawn`.
    pub(crate) fn current() -> Arc<dyn Runtime> {
        Arc::new(TokioRuntime(tokio::runtime::Handle::current()))
    }
}

impl Runtime for TokioRuntime {
    fn spawn(&self, future: BoxFuture) {
        self.0.spawn(future);
    }

    fn now(&self) -> Instant {
        // tokio's clock, which is virtual while the runtime's time is
        // paused (`tokio::time::pause`).
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn unblock(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture {
        let task = self.0.spawn_blocking(work);
        Box::pin(async move {
            let _ = task.await;
        })
    }

    fn connect_tcp(&self, host: String, port: u16) -> TcpConnecting {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            let peer = stream.peer_addr()?;
            Ok((Box::new(TokioAdapter::new(stream)) as Box<dyn Io>, peer))
        })
    }

    fn bind_tcp(&self, host: String, port: u16) -> TcpBinding {
        Box::pin(async move {
            let listener = TcpListener::bind((host.as_str(), port)).await?;
            Ok(Box::new(TokioListener(listener)) as Box<dyn Listener>)
        })
    }
}

/// A tokio TCP listener as the driver's.
struct TokioListener(TcpListener);

impl Listener for TokioListener {
    fn accept(&self) -> TcpAccepting<'_> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok((Box::new(TokioAdapter::new(stream)) as Box<dyn Io>, peer))
        })
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}
