//! `connect`: the client side.

use juggler_driver::{ClientOptions, Connection, Error, ReconnectOptions, ReconnectingClient};

use crate::runtime::SmolRuntime;

/// Connects to a Juggler server at a `ws://` or `wss://` URL with the
/// default options (autoflush delay 0.2 s, keep-alive on).
///
/// ```no_run
/// # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
/// let connection = juggler_smol::connect("ws://127.0.0.1:23023/ws").await?;
/// connection.set_local_data(serde_json::json!({"hello": "server"}))?;
/// connection.flush_local_data().await?;
/// # Ok(()) }) }
/// ```
pub async fn connect(address: &str) -> Result<Connection, Error> {
    connect_with(address, ClientOptions::default()).await
}

/// Connects with the given options; see [`ClientOptions`].
pub async fn connect_with(address: &str, options: ClientOptions) -> Result<Connection, Error> {
    juggler_driver::connect(address, options, SmolRuntime::shared()).await
}

/// Starts a client that reconnects over `addresses` (tried in order) when
/// the network drops; see [`ReconnectingClient`]. Returns at once; the
/// first attempt runs in the background.
///
/// ```no_run
/// # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
/// use juggler_smol::{reconnecting, ReconnectOptions};
///
/// let client = reconnecting(["ws://127.0.0.1:23023/ws"], ReconnectOptions::default())?;
/// client.set_local_data(serde_json::json!({"hello": "server"}))?;
/// let connection = client.wait_connected().await?;
/// println!("connected to {:?}", connection.peer_addr());
/// # Ok(()) }) }
/// ```
#[doc(alias("retry", "auto_reconnect"))]
pub fn reconnecting<A: Into<String>>(
    addresses: impl IntoIterator<Item = A>,
    options: ReconnectOptions,
) -> Result<ReconnectingClient, Error> {
    ReconnectingClient::start(addresses, options, SmolRuntime::shared())
}
