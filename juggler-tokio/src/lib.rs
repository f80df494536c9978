//! Juggler on tokio: keep JSON state in sync and exchange messages with
//! Juggler peers (Python `hat-juggler`, the browser `@hat-open/juggler`,
//! other juggler-rs programs) over WebSocket.
//!
//! The API follows the reference `hat.juggler` module: [`connect`] and
//! [`listen`] give a [`Connection`] with `local_data`, `remote_data`,
//! `register_change_cb`, `set_local_data`, `flush_local_data`, `send` and
//! `receive`. The protocol itself lives in `juggler-core`; this crate moves
//! its frames over tokio sockets (async-tungstenite, axum, rustls).
//!
//! ```
//! use juggler_tokio::{connect_with, listen, ClientOptions, ServerOptions};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), juggler_tokio::Error> {
//! let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
//! let server = listen("127.0.0.1", 0, move |connection| { let _ = accepted.send(connection); },
//!     ServerOptions::default().autoflush_delay(Some(Duration::ZERO))).await?;
//!
//! let client = connect_with(server.url(), ClientOptions::default().autoflush_delay(Some(Duration::ZERO))).await?;
//! let server_side = incoming.recv().await.unwrap();
//!
//! let mut changes = server_side.remote_changes();
//! client.set_local_data(json!(123))?;
//! assert_eq!(*changes.changed().await?, json!(123));
//!
//! server.close().await;
//! client.wait_closed().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "server")]
mod layers;
#[cfg(any(feature = "client", feature = "server"))]
mod runtime;
#[cfg(feature = "server")]
mod server;
pub mod v07;

#[cfg(feature = "client")]
pub use client::{connect, connect_with, reconnecting};
#[cfg(feature = "server")]
pub use layers::no_cache_layer;
#[cfg(feature = "basic-auth")]
pub use layers::{BasicAuth, BasicAuthLayer};
#[cfg(feature = "server")]
pub use server::{listen, listen_with_routes, JugglerEndpoint};

/// The `axum` crate, whose `Router` [`listen_with_routes`] takes and
/// [`JugglerEndpoint`] mounts in.
#[cfg(feature = "server")]
pub use axum;

/// This runtime as the driver's [`Runtime`](juggler_driver::Runtime), for
/// crates written above both runtimes (juggler-redis) (call it inside a tokio runtime).
#[cfg(any(feature = "client", feature = "server"))]
pub fn runtime() -> std::sync::Arc<dyn juggler_driver::Runtime> {
    runtime::TokioRuntime::current()
}

pub use juggler_driver::exports::*;

/// The repository README's example, compiled and run as a doctest so it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate README's example, as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;

/// docs/operations.md's snippets, as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/operations.md")]
pub struct OperationsDoctests;
