//! The HTTP side of a server of juggler-rs's own, the same on every
//! runtime: the accept loop, the TLS handshake with its timeout, hyper
//! serving each connection, and the upgraded socket handed to the
//! [`Acceptor`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use http::Request;
use hyper::body::{Bytes, Incoming};
use hyper::upgrade::Upgraded;
use smol_hyper::rt::FuturesIo;

use super::router::{Router, Routes};
use super::{AcceptControl, Acceptor, HttpTimeouts, Server, ServerOptions};
use crate::admission::Admitted;
use crate::runtime::{BoxFuture, Io, Listener, Runtime};
use crate::{Connection, Error};

/// The I/O hyper serves, plain or TLS: one type, so that an upgraded
/// request can be turned back into the stream it came on.
type HttpIo = FuturesIo<Box<dyn Io>>;

/// Binds `host:port` on `runtime` and serves HTTP there: the WebSocket
/// path, the `/` redirect, the application's `routes` and the static
/// folder, as `options` say. What the runtime crates' `listen` does.
pub async fn listen<B>(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: &ServerOptions,
    runtime: Arc<dyn Runtime>,
    routes: Option<Routes<B>>,
) -> Result<Server, Error>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut files = super::load_server_files(options)?;
    let tls = files.tls.take();
    let listener = runtime.bind_tcp(host.to_owned(), port).await?;
    let local_addr = listener.local_addr()?;
    let acceptor = Acceptor::serving(on_connection, options, runtime.clone());
    let registry = acceptor.registry().clone();
    let router = Arc::new(Router::new(
        &acceptor,
        options,
        files,
        routes,
        runtime.clone(),
    ));
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{local_addr}{}", options.ws_path);
    tracing::info!(%url, "juggler server listening");
    let (server, control) = Server::new(local_addr, url, registry, runtime.clone());
    let accepting = Accepting {
        router,
        tls: tls.map(futures_rustls::TlsAcceptor::from),
        timeouts: options.http_timeouts(),
        runtime: runtime.clone(),
    };
    runtime.spawn(Box::pin(accepting.run(listener, control)));
    Ok(server)
}

/// What the accept loop gives each HTTP connection.
struct Accepting<B> {
    router: Arc<Router<B>>,
    tls: Option<futures_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
    runtime: Arc<dyn Runtime>,
}

impl<B> Accepting<B>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Accepts until the server stops. HTTP connections end with the
    /// loop; upgraded WebSocket connections run in tasks of their own.
    async fn run(self, listener: Box<dyn Listener>, mut control: AcceptControl) {
        loop {
            let accepted = match select(listener.accept(), pin!(control.stopped())).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(((), _)) => break,
            };
            match accepted {
                Ok((io, peer)) => {
                    let serving = self.serve(io, peer);
                    let mut stop = control.stop.clone();
                    self.runtime.spawn(Box::pin(async move {
                        let stopped = async move {
                            let _ = stop.wait_for(|stop| *stop).await;
                        };
                        select(pin!(serving), pin!(stopped)).await;
                    }));
                }
                Err(err) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(%err, "accept failed");
                    after(&*self.runtime, Duration::from_millis(50)).await;
                }
            }
        }
        // Dropping the control tells `Server::close` that the loop is done:
        // the port must be free by then, so that a server restarted on it
        // can bind at once.
        drop(listener);
        drop(control);
    }

    /// Serves one HTTP connection: the TLS handshake if any, then hyper.
    fn serve(&self, io: Box<dyn Io>, peer: SocketAddr) -> impl Future<Output = ()> + Send {
        let router = self.router.clone();
        let tls = self.tls.clone();
        let timeouts = self.timeouts;
        let runtime = self.runtime.clone();
        async move {
            let (io, certificates) = match tls {
                None => (io, None),
                Some(tls) => match super::tls::handshake(&tls, io, peer, timeouts, &*runtime).await
                {
                    Some(handshaken) => handshaken,
                    None => return,
                },
            };
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                if let Some(certificates) = &certificates {
                    request.extensions_mut().insert(certificates.clone());
                }
                let answer = router.clone().handle(request, peer);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let result = hyper::server::conn::http1::Builder::new()
                .timer(RuntimeTimer(runtime))
                .header_read_timeout(timeouts.header_read)
                .serve_connection(HttpIo::new(io), service)
                .with_upgrades()
                .await;
            if let Err(err) = result {
                tracing::debug!(%peer, %err, "HTTP connection ended with an error");
            }
        }
    }
}

/// Completes `duration` from now on the runtime's clock; never, when that
/// is past what an `Instant` holds.
pub(super) fn after(runtime: &dyn Runtime, duration: Duration) -> BoxFuture {
    match runtime.now().checked_add(duration) {
        Some(deadline) => runtime.sleep_until(deadline),
        None => Box::pin(std::future::pending()),
    }
}

/// Takes over an upgraded request's socket as a connection: our own
/// server's stream taken back whole, with no adapter between tungstenite
/// and the socket, or another server's through [`UpgradedIo`].
pub(crate) async fn take_over(acceptor: &Arc<Acceptor>, upgraded: Upgraded, admitted: Admitted) {
    match upgraded.downcast::<HttpIo>() {
        Ok(parts) => {
            let io: Box<dyn Io> = parts.io.into_inner();
            // tungstenite sizes the read buffers it allocates later
            // after the allocation of the first one, and
            // `read_buf.to_vec()` of nothing has none: every later
            // socket read would then be of a few bytes, a syscall
            // per frame header (1.5 per 100-byte message). Bytes
            // the client sent before our 101 are rare.
            let read = if parts.read_buf.is_empty() {
                Vec::new()
            } else {
                let capacity = acceptor.websocket_config().read_buffer_size;
                let mut read = Vec::with_capacity(capacity.max(parts.read_buf.len()));
                read.extend_from_slice(&parts.read_buf);
                read
            };
            acceptor.start(io, read, admitted).await;
        }
        Err(upgraded) => {
            acceptor
                .start(UpgradedIo(upgraded), Vec::new(), admitted)
                .await
        }
    }
}

/// An upgraded connection of another server's stream type, as futures-io.
struct UpgradedIo(Upgraded);

impl futures_io::AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut read = hyper::rt::ReadBuf::new(buf);
        match hyper::rt::Read::poll_read(Pin::new(&mut self.0), cx, read.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(read.filled().len())),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.0), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.0), cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.0), cx)
    }
}

/// The runtime's clock and timers as hyper's (the header read timeout).
#[derive(Clone)]
struct RuntimeTimer(Arc<dyn Runtime>);

impl hyper::rt::Timer for RuntimeTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(Mutex::new(after(&*self.0, duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(Mutex::new(self.0.sleep_until(deadline))))
    }

    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// A runtime's sleep as hyper's, which must be `Sync`: the mutex makes it
/// so, and polling takes it without locking (`get_mut`).
struct Sleep(Mutex<BoxFuture>);

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.get_mut().0.get_mut();
        sleep
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .poll(cx)
    }
}

impl hyper::rt::Sleep for Sleep {}
