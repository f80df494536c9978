//! Starting a 0.5 connection's driver (crate::driver) on an established
//! WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;

use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use crate::admission::Admitted;
use crate::budget::MemoryBudget;
use crate::connection::Shared;
use crate::{BoxFuture, Connection, ConnectionOptions, Runtime};

/// Starts driving an established WebSocket on `runtime` and returns the
/// application's handle to it. Runtime crates call this after their
/// handshake; applications use `connect` or `listen` instead.
pub fn start<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    runtime: Arc<dyn Runtime>,
) -> Connection
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (connection, driver) = prepare(socket, options, peer_addr, runtime.clone());
    runtime.spawn(driver);
    connection
}

/// Like [`start`], but hands back the driver instead of spawning it, so a
/// server can give the connection to the application before the first
/// frame is read: a change callback registered then misses nothing.
pub fn prepare<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    runtime: Arc<dyn Runtime>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let budget = MemoryBudget::new(None);
    drive(
        socket,
        options,
        peer_addr,
        Admitted::default(),
        runtime,
        budget,
        None,
    )
}

/// [`prepare`] for a server connection, keeping the request that opened it
/// and the context its admission attached.
pub(crate) fn prepare_admitted<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    admitted: Admitted,
    runtime: Arc<dyn Runtime>,
    budget: Arc<MemoryBudget>,
    first_frame: Option<String>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_addr = admitted
        .request
        .as_ref()
        .and_then(|request| request.peer_addr);
    drive(
        socket,
        options,
        peer_addr,
        admitted,
        runtime,
        budget,
        first_frame,
    )
}

/// The connection's shared state and its driver, in the connection's span.
fn drive<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    admitted: Admitted,
    runtime: Arc<dyn Runtime>,
    budget: Arc<MemoryBudget>,
    first_frame: Option<String>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared::new(
        options,
        peer_addr,
        admitted,
        runtime.clone(),
        budget,
    ));
    let span = shared.span.clone();
    let host = shared.clone();
    let driver = async move { crate::driver::run(socket, &*host, first_frame).await };
    (Connection::new(shared), Box::pin(driver.instrument(span)))
}
