//! Juggler on smol: keep JSON state in sync and exchange messages with
//! Juggler peers (Python `hat-juggler`, the browser `@hat-open/juggler`,
//! other juggler-rs programs) over WebSocket.
//!
//! The same API as `juggler-tokio`, by the same engine and driver
//! (`juggler-driver`): [`connect`] and [`listen`] give a [`Connection`].
//! Sockets, timers and tasks are smol's; the HTTP server is hyper over
//! smol's I/O; TLS is rustls. No tokio runtime is needed.
//!
//! ```
//! use juggler_smol::{connect_with, listen, ClientOptions, ServerOptions};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
//! let (accepted, incoming) = smol::channel::unbounded();
//! let server = listen("127.0.0.1", 0, move |connection| { let _ = accepted.try_send(connection); },
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
//! # Ok(()) }) }
//! ```
#![forbid(unsafe_code)]

mod client;
mod runtime;
mod server;
pub mod v07;

pub use client::{connect, connect_with, reconnecting};
pub use server::{listen, JugglerEndpoint};

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

/// The crate README's example, compiled and run as a doctest so it stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
