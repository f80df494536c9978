//! What a runtime must provide to run the suite.

use std::future::Future;
use std::time::Duration;

use juggler_driver::{ClientOptions, Connection, Error, ServerOptions};
use tokio::sync::mpsc;

/// A listening server, as the suite sees it.
pub trait TestServer: Send + Sync + 'static {
    /// The `ws://` or `wss://` URL of its WebSocket endpoint.
    fn url(&self) -> String;
    /// Its address.
    fn local_addr(&self) -> std::net::SocketAddr;
    /// Closes it and waits until all its connections are gone.
    fn close(&self) -> impl Future<Output = juggler_driver::ShutdownSummary> + Send;
    /// How many accepted connections are open or closing.
    fn connection_count(&self) -> usize;
    /// The byte budget its connections share.
    fn memory_budget(&self) -> std::sync::Arc<juggler_driver::MemoryBudget>;
}

/// A runtime under test: `juggler-tokio` or `juggler-smol`.
pub trait Backend: 'static {
    /// The runtime's server type.
    type Server: TestServer;

    /// Runs a future to completion on a fresh runtime.
    fn block_on<F: Future<Output = ()> + Send + 'static>(future: F);

    /// Spawns a task.
    fn spawn<F: Future<Output = ()> + Send + 'static>(future: F);

    /// Completes after `duration` (the runtime's own timer).
    fn sleep(duration: Duration) -> impl Future<Output = ()> + Send;

    /// The runtime's `listen` on 127.0.0.1 with a free port.
    fn listen(
        options: ServerOptions,
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
    ) -> impl Future<Output = Result<Self::Server, Error>> + Send {
        Self::listen_on(0, options, on_connection)
    }

    /// The runtime's `listen` on 127.0.0.1 and `port` (0: a free one).
    fn listen_on(
        port: u16,
        options: ServerOptions,
        on_connection: impl Fn(Connection) + Send + Sync + 'static,
    ) -> impl Future<Output = Result<Self::Server, Error>> + Send;

    /// The runtime's `reconnecting`.
    fn reconnecting(
        addresses: Vec<String>,
        options: juggler_driver::ReconnectOptions,
    ) -> Result<juggler_driver::ReconnectingClient, Error>;

    /// A 0.6/0.7 reconnecting client on the runtime.
    fn reconnecting_v07(
        addresses: Vec<String>,
        options: juggler_driver::v07::Options,
        reconnect: juggler_driver::ReconnectOptions,
    ) -> Result<juggler_driver::v07::ReconnectingClient, Error>;

    /// Tasks alive on the runtime, where the runtime counts them.
    fn alive_tasks() -> Option<usize>;

    /// The runtime's `connect_with`.
    fn connect(
        address: &str,
        options: ClientOptions,
    ) -> impl Future<Output = Result<Connection, Error>> + Send;

    /// The runtime's `v07::connect`.
    fn connect_v07(
        address: &str,
        options: juggler_driver::v07::Options,
    ) -> impl Future<Output = Result<juggler_driver::v07::Client, Error>> + Send;

    /// The runtime's `v07::connect_with`: TLS, headers, compression of
    /// `client`.
    fn connect_v07_with(
        address: &str,
        options: juggler_driver::v07::Options,
        client: ClientOptions,
    ) -> impl Future<Output = Result<juggler_driver::v07::Client, Error>> + Send;

    /// A plain TCP connection to `addr` on the runtime's own sockets, for
    /// clients that speak raw (and hostile) HTTP, TLS or WebSocket.
    fn tcp_connect(
        addr: std::net::SocketAddr,
    ) -> impl Future<Output = std::io::Result<Box<dyn juggler_driver::Io>>> + Send;
}

/// The connections a server accepted, in order.
pub struct Incoming(mpsc::UnboundedReceiver<Connection>);

impl Incoming {
    /// The next accepted connection.
    pub async fn next(&mut self) -> Connection {
        self.0.recv().await.expect("the server is alive")
    }
}

/// Starts a server whose accepted connections arrive through [`Incoming`].
pub async fn listen<B: Backend>(options: ServerOptions) -> (B::Server, Incoming) {
    let (accepted, incoming) = mpsc::unbounded_channel();
    let server = B::listen(options, move |connection| {
        let _ = accepted.send(connection);
    })
    .await
    .expect("listen on 127.0.0.1");
    (server, Incoming(incoming))
}

/// A server and one connected client, both with `autoflush_delay`.
pub async fn pair<B: Backend>(
    autoflush_delay: Option<Duration>,
) -> (B::Server, Connection, Connection) {
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().autoflush_delay(autoflush_delay)).await;
    let client = B::connect(
        &server.url(),
        ClientOptions::default().autoflush_delay(autoflush_delay),
    )
    .await
    .expect("connect to the server");
    let server_side = incoming.next().await;
    (server, server_side, client)
}

/// Fails the test if `future` has not completed after `limit`: a guard
/// against hangs, never a way to wait for something, and never a claim
/// about speed (the suite runs on two cores shared by dozens of tests).
pub async fn within<B: Backend, F: Future>(limit: Duration, what: &str, future: F) -> F::Output {
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(B::sleep(limit));
    match futures_util::future::select(future, timer).await {
        futures_util::future::Either::Left((output, _)) => output,
        futures_util::future::Either::Right(_) => panic!("{what} did not happen within {limit:?}"),
    }
}

/// The limit of [`within`]: long enough that only a hang reaches it, on a
/// loaded two-core machine where a millisecond's work may wait seconds.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// The reference's `autoflush_delay=0`: every change is its own DATA frame.
pub const IMMEDIATE: Option<Duration> = Some(Duration::ZERO);

/// Records the remote data at every change notification; keep the handle.
pub fn record_changes(
    connection: &Connection,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    juggler_driver::ChangeCallbackHandle,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let handle = {
        let seen = seen.clone();
        let observed = connection.clone();
        connection.register_change_cb(move || {
            seen.lock().unwrap().push((*observed.remote_data()).clone())
        })
    };
    (seen, handle)
}

/// Receives `messages` on `to`, in order, with their JSON types intact
/// (0.0 stays a float, 0 an integer).
pub async fn expect_messages<B: Backend>(to: &Connection, messages: &[serde_json::Value]) {
    for message in messages {
        let received = within::<B, _>(HANG_GUARD, "message", to.receive())
            .await
            .unwrap();
        assert_eq!(received, *message);
        assert_eq!(received.is_f64(), message.is_f64());
    }
}

/// Echoes every message a 0.5 connection receives back to it, until it
/// closes: the server side the suites use most.
pub fn echo<B: Backend>(connection: Connection) {
    B::spawn(async move {
        while let Ok(message) = connection.receive().await {
            if connection.send(&message).await.is_err() {
                break;
            }
        }
    });
}
