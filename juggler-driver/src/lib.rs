//! The runtime-agnostic half of juggler-rs's async API.
//!
//! `juggler-tokio` and `juggler-smol` re-export everything here; depend on
//! one of them, not on this crate. What lives here is written once for
//! both runtimes: the [`Connection`] handles, the driver tasks that move
//! frames and time between a WebSocket and an engine of any generation
//! (a [`juggler_core::Driven`]),
//! options, errors, and the client and server plumbing that does not touch
//! a runtime. What differs per runtime (sockets, timers, spawning, the
//! HTTP server) is behind the small [`Runtime`] trait or in the runtime
//! crates.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The connection machinery is shared by both sides; built for one side
// only (the `client` or `server` feature off), the other side's helpers
// go unused.
#![cfg_attr(
    not(all(feature = "client", feature = "server")),
    allow(dead_code, unused_imports)
)]

mod admission;
#[cfg(feature = "basic-auth")]
mod basic_auth;
mod budget;
mod callbacks;
mod change_stream;
#[cfg(feature = "client")]
mod client;
mod compression;
mod connection;
mod crypto;
#[cfg(feature = "server")]
mod detect;
mod diff_outside;
mod driver;
mod error;
pub mod exports;
mod freeing;
#[cfg(feature = "server")]
mod group;
mod metrics;
mod options;
mod reader_steps;
#[cfg(feature = "client")]
mod reconnect;
pub mod responder;
mod runtime;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "static-files")]
mod static_files;
mod typed;
pub mod v07;
mod writer_steps;
mod writer_wake;

pub use admission::{
    forwarded_client, Admission, AdmissionFuture, AdmissionHook, Admitted, PeerCertificates,
    UpgradeRequest,
};
#[cfg(feature = "basic-auth")]
pub use basic_auth::{unauthorized, Htpasswd};
pub use budget::MemoryBudget;
pub use change_stream::ChangeStream;
#[cfg(feature = "client")]
pub use client::{connect, handshake, ClientOptions, Target};
pub use connection::{
    connections_in_memory, prepare, start, ChangeCallbackHandle, Connection, HeldBytes,
    RemoteChanges, WeakConnection,
};
pub use crypto::crypto_provider;
pub use error::{CloseReason, Error, ProtocolError, WebSocketError};
#[cfg(feature = "server")]
pub use group::{Group, GroupMember, SlowMembers};
/// permessage-deflate's options and what a connection agreed to.
pub use juggler_deflate::{Compression, Negotiated};
pub use metrics::{describe_metrics, METRICS_ENABLED};
pub use options::{ConnectionOptions, KeepAlive};
#[cfg(feature = "client")]
pub use reconnect::{
    Backoff, ClientChangeCallbackHandle, ClientStatus, HeaderCallback, ReconnectEvent,
    ReconnectEvents, ReconnectOptions, ReconnectingClient, RemoteDataChanges, WhileDisconnected,
};
pub use runtime::{
    unblock, BoxFuture, Io, Listener, Runtime, TcpAccepting, TcpBinding, TcpConnecting,
};
#[cfg(feature = "server")]
pub use server::{
    index_redirect, listen, load_server_files, server_tls_config, upgrade_response, AcceptControl,
    Acceptor, Checked, Generations, HttpTimeouts, OriginPolicy, Refusal, Registry, RouterBody,
    Routes, Server, ServerFiles, ServerOptions, ShutdownSummary, UpgradeRejection,
};
#[cfg(feature = "static-files")]
pub use static_files::{FileBody, StaticDir};
pub use typed::{TypedConnection, TypedRemoteChanges};

/// The `http` crate, whose types the server and client options take.
pub use http;
/// The `rustls` crate, whose configurations the server and client options
/// take.
pub use rustls;

pub use juggler_core::{
    value_cost, AutoflushPolicy, EncodedMessage, Generation, MountError, PatchOperation,
    SharedChange, SharedState, Value,
};

/// The crate README's example, compiled and run as a doctest so it stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
