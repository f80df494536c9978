//! `connect`: the client side.

use juggler_driver::{ClientOptions, Connection, Error};

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
