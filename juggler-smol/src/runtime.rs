//! The smol implementation of the driver's runtime trait.

use std::sync::Arc;
use std::time::Instant;

use juggler_driver::{BoxFuture, Io, Listener, Runtime, TcpAccepting, TcpBinding, TcpConnecting};
use smol::net::{TcpListener, TcpStream};

/// Spawns on smol's global executor and sleeps with `async-io` timers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmolRuntime;

impl SmolRuntime {
    pub(crate) fn shared() -> Arc<dyn Runtime> {
        Arc::new(SmolRuntime)
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture) {
        smol::spawn(future).detach();
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let timer = smol::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn unblock(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture {
        Box::pin(smol::unblock(work))
    }

    fn connect_tcp(&self, host: String, port: u16) -> TcpConnecting {
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            let peer = stream.peer_addr()?;
            Ok((Box::new(stream) as Box<dyn Io>, peer))
        })
    }

    fn bind_tcp(&self, host: String, port: u16) -> TcpBinding {
        Box::pin(async move {
            let listener = TcpListener::bind((host.as_str(), port)).await?;
            Ok(Box::new(SmolListener(listener)) as Box<dyn Listener>)
        })
    }
}

/// A smol TCP listener as the driver's.
struct SmolListener(TcpListener);

impl Listener for SmolListener {
    fn accept(&self) -> TcpAccepting<'_> {
        Box::pin(async move {
            let (stream, peer) = self.0.accept().await?;
            let _ = stream.set_nodelay(true);
            Ok((Box::new(stream) as Box<dyn Io>, peer))
        })
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}
