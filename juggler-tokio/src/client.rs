//! `connect`: the client side.

use juggler_driver::{ClientOptions, Connection, Error, ReconnectOptions, ReconnectingClient};

use crate::runtime::TokioRuntime;

/// Connects to a Juggler server at a `ws://` or `wss://` URL with the
/// default options (autoflush delay 0.2 s, keep-alive on).
///
/// ```no_run
/// # async fn run() -> Result<(), juggler_tokio::Error> {
/// let connection = juggler_tokio::connect("ws://127.0.0.1:23023/ws").await?;
/// connection.set_local_data(serde_json::json!({"hello": "server"}))?;
/// connection.flush_local_data().await?;
/// # Ok(()) }
/// ```
pub async fn connect(address: &str) -> Result<Connection, Error> {
    connect_with(address, ClientOptions::default()).await
}

/// Connects with the given options; see [`ClientOptions`].
pub async fn connect_with(address: &str, options: ClientOptions) -> Result<Connection, Error> {
    juggler_driver::connect(address, options, TokioRuntime::current()).await
}

/// Starts a client that reconnects over `addresses` (tried in order) when
/// the network drops; see [`ReconnectingClient`]. Returns at once; the
/// first attempt runs in the background.
///
/// ```no_run
/// # async fn run() -> Result<(), juggler_tokio::Error> {
/// use juggler_tokio::{reconnecting, ReconnectEvent, ReconnectOptions};
///
/// let client = reconnecting(
///     ["ws://10.0.0.1:23023/ws", "ws://10.0.0.2:23023/ws"],
///     ReconnectOptions::default(),
/// )?;
/// client.set_local_data(serde_json::json!({"hello": "server"}))?;
/// let mut events = client.events();
/// while let Some(event) = events.next().await {
///     if let ReconnectEvent::Connected { address, .. } = event {
///         println!("connected to {address}");
///     }
/// }
/// # Ok(()) }
/// ```
#[doc(alias("retry", "auto_reconnect"))]
pub fn reconnecting<A: Into<String>>(
    addresses: impl IntoIterator<Item = A>,
    options: ReconnectOptions,
) -> Result<ReconnectingClient, Error> {
    ReconnectingClient::start(addresses, options, TokioRuntime::current())
}
