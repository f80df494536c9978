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

juggler_driver::v07_module!(crate::runtime::TokioRuntime::current(), crate::listen);
