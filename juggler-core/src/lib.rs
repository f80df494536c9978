//! The Juggler protocol, sans I/O.
//!
//! Juggler keeps JSON state in sync between two peers over a WebSocket and
//! carries application messages beside it. This crate is the whole protocol
//! logic of one peer as deterministic state machines, one per generation
//! and role ([`Engine`] for 0.5, [`v07::ServerEngine`] and
//! [`v07::ClientEngine`]): text frames in; frames to write, events and a
//! deadline out. It has no
//! async, no sockets, no threads and no clock; runtime crates
//! (`juggler-tokio`, `juggler-smol`) drive it.
//!
//! - [`frame`]: the four frame types and their JSON text.
//! - [`Driven`]: the contract every driver follows, which every engine
//!   implements.
//! - [`Engine`]: 0.5's data sync with the three autoflush policies,
//!   messages, PING/PONG, protocol errors and close.
//! - [`diff`] and [`apply`]: the RFC 6902 diff the engine sends and the
//!   atomic patch it applies.
//! - [`path_edit`]: `json.Storage`'s `set(path, value)` and
//!   `remove(path)` at a JSON pointer, each as one patch op.
//! - [`SharedState`]: one state shown to many connections, each change
//!   diffed and encoded once; whole ([`Engine::set_local_data_shared`]),
//!   or as a part of each connection's state at a JSON pointer
//!   ([`Engine::mount`], [`Engine::set_local_data_shared_at`], and the
//!   same on [`v07::ServerEngine`]).
//! - [`value_cost`]: what a decoded value costs in memory, for budgets in
//!   bytes.
//! - [`Liveness`] (module [`liveness`]): keep-alive (when to ping, when a
//!   silent peer is dead) as a deterministic machine for drivers that ping
//!   at the transport.
//! - [`responder`]: the bookkeeping of answering the peer's requests
//!   (running limit, byte charge, one-at-a-time order, the answer of a
//!   handler that panicked), shared by the 0.7 server and juggler-rpc.
//! - `testing` (feature `testing`): a virtual-time pair of engines wired back
//!   to back, for tests without sockets or sleeps.
//! - `fuzzing` (feature `fuzzing`): the fuzz target's logic.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod cost;
mod depth;
mod driven;
mod engine;
mod envelope;
mod error;
pub mod frame;
mod generation;
pub mod liveness;
mod mount;
mod op_decode;
mod op_runs;
mod patch;
pub mod path_edit;
mod remote_document;
pub mod responder;
mod shared;
mod transmit_queue;
pub mod v07;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use config::{AutoflushPolicy, Config};
pub use cost::value_cost;
pub use depth::MAX_DEPTH;
pub use driven::Driven;
pub use engine::{Engine, Event};
pub use error::{truncate_utf8, CloseReason, Closed, ProtocolError, UpdateError};
pub use frame::{EncodedMessage, Frame, FrameKind, FrameText};
pub use generation::Generation;
pub use liveness::{Liveness, LivenessAction, LivenessDeadline};
pub use mount::MountError;
pub use patch::{apply, apply_within, diff, ApplyError};
pub use path_edit::PathError;
pub use shared::{SharedChange, SharedState};
pub use transmit_queue::{FlushTicket, Transmit};

/// JSON Pointers (RFC 6901), as the `path` and `from` of a
/// [`PatchOperation`]: `PointerBuf::parse("/a/0")`.
pub use json_patch::jsonptr::{Pointer, PointerBuf};
/// Re-exported so users name the same JSON and patch types as the engine.
pub use json_patch::{
    AddOperation, CopyOperation, MoveOperation, Patch, PatchOperation, RemoveOperation,
    ReplaceOperation, TestOperation,
};
pub use serde_json::Value;

#[cfg(test)]
mod tests;

/// The crate README's example, compiled and run as a doctest so it stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
