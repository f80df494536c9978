//! The 0.6 and 0.7 generations on tokio, with hat-juggler 0.7.6's names:
//! [`listen`] with `connection_cb`/`request_cb` ([`Handlers`]), and
//! [`connect`] for a [`Client`] with `state`, `send(name, data)` and
//! notifications. To serve every generation on one path, see
//! [`Generations`](crate::Generations).
//!
//! ```
//! use juggler_tokio::v07::{connect, listen, Handlers, Options};
//! use juggler_tokio::ServerOptions;
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), juggler_tokio::Error> {
//! let handlers = Handlers::new()
//!     .on_connection(|connection| connection.set_state(json!({"clients": 1})))
//!     .on_request(|_connection, name, data| async move { Ok(json!({"name": name, "data": data})) });
//! let server = listen("127.0.0.1", 0, handlers, ServerOptions::default()).await?;
//!
//! let client = connect(server.url(), Options::default()).await?;
//! assert_eq!(client.send("hi", json!(1)).await?, json!({"name": "hi", "data": 1}));
//! let (_, state) = client.state_changed(0).await?;
//! assert_eq!(*state, json!({"clients": 1}));
//!
//! client.async_close().await;
//! server.close().await;
//! # Ok(()) }
//! ```

pub use juggler_driver::exports::v07::*;
#[cfg(feature = "client")]
use juggler_driver::ClientOptions;
#[cfg(any(feature = "client", feature = "server"))]
use juggler_driver::Error;
#[cfg(feature = "server")]
use juggler_driver::{Server, ServerOptions};

#[cfg(feature = "client")]
use crate::runtime::TokioRuntime;

/// Starts a server of one generation, `options.v07.generation` (0.7 by
/// default), on `host:port` (port `0` picks a free one): the reference's
/// `listen(host, port, connection_cb, request_cb)`. The HTTP side (static
/// files, basic auth, TLS, origin checks) is `options`'.
#[doc(alias("serve", "bind"))]
#[cfg(feature = "server")]
pub async fn listen(
    host: &str,
    port: u16,
    handlers: Handlers,
    options: ServerOptions,
) -> Result<Server, Error> {
    crate::listen(host, port, drop, options.v07_only(handlers)).await
}

/// Connects to a 0.7 (or, by `options.generation`, 0.6) server.
#[cfg(feature = "client")]
pub async fn connect(address: &str, options: Options) -> Result<Client, Error> {
    connect_with(address, options, ClientOptions::default()).await
}

/// [`connect`], with TLS, headers, the connect timeout and compression
/// of `client`.
#[cfg(feature = "client")]
pub async fn connect_with(
    address: &str,
    options: Options,
    client: ClientOptions,
) -> Result<Client, Error> {
    juggler_driver::v07::connect(address, options, client, TokioRuntime::current()).await
}
