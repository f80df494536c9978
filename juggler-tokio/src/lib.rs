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

mod client;
mod runtime;
mod server;
pub mod v07;

pub use client::{connect, connect_with, reconnecting};
pub use server::{listen, listen_with_routes, JugglerEndpoint};

/// The `axum` crate, whose `Router` [`listen_with_routes`] takes and
/// [`JugglerEndpoint`] mounts in.
pub use axum;

/// permessage-deflate's options (`ServerOptions::compression`,
/// `ClientOptions::compression`).
pub use juggler_driver::Compression;
pub use juggler_driver::{
    connections_in_memory, crypto_provider, AutoflushPolicy, Backoff, ChangeCallbackHandle,
    ClientChangeCallbackHandle, ClientOptions, ClientStatus, CloseReason, Connection,
    ConnectionOptions, EncodedMessage, Error, Generation, Generations, Group, GroupMember,
    KeepAlive, MemoryBudget, PatchOperation, ProtocolError, ReconnectEvent, ReconnectEvents,
    ReconnectOptions, ReconnectingClient, RemoteChanges, RemoteDataChanges, Server, ServerOptions,
    SharedChange, SharedState, ShutdownSummary, TypedConnection, TypedRemoteChanges, Value,
    WeakConnection, WhileDisconnected,
};

/// The repository README's example, compiled and run as a doctest so it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The crate README's example, as a doctest too.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct CrateReadmeDoctests;
