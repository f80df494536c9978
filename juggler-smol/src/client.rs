//! `connect`: the client side.

use juggler_driver::{handshake, ClientOptions, Connection, Error, Target};
use smol::net::TcpStream;

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
    let target = Target::parse(address)?;
    let stream = TcpStream::connect((target.host.as_str(), target.port)).await?;
    stream.set_nodelay(true)?;
    let peer_addr = stream.peer_addr().ok();
    handshake(stream, &target, peer_addr, &options, SmolRuntime::shared()).await
}
