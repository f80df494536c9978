//! The public connection handle and the state it shares with its driver.
//!
//! Wake-ups, in one place (docs/architecture.md says the same):
//! [`Shared::update`] compares what the writer watches (`WakeSnapshot`)
//! before and after every change and wakes the writer when the application
//! or the reader changed it, through the connection's `WriterWake`
//! (writer_wake.rs): from another thread that is its notify; from the
//! driver task's own thread while its reader runs (the thread-local
//! `READER_RUNNING` holds that connection's address), it is its kick
//! flag instead: `join` polls the writer right after the
//! reader, and waking the running task would reschedule it as a yield and
//! wake an idle worker. The writer's progress wakes application tasks
//! waiting for it; the reader's messages and changes wake theirs; a close
//! wakes everyone; room in the receive queue wakes the reader
//! (`reader_notify`), only when the queue had been full.
//!
//! [`shared`] holds the state behind the lock and its wake-ups, [`handle`]
//! the application's handles; [`RemoteChanges`] is the change stream
//! (crate::change_stream) over it.

use std::sync::atomic::Ordering;

mod handle;
mod host;
mod shared;
mod start;

pub use handle::{ChangeCallbackHandle, Connection, HeldBytes, WeakConnection};
pub(crate) use shared::{Shared, State, Wake};
pub(crate) use start::prepare_admitted;
pub use start::{prepare, start};

/// Remote data changes of a [`Connection`] as an async sequence; see
/// [`ChangeStream`](crate::ChangeStream).
pub type RemoteChanges = crate::ChangeStream<Shared>;

/// Numbers connections in this process, for their spans.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A new connection's number in this process, unique across
/// generations.
pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

/// Connections of this process whose state is still in memory.
pub(super) static CONNECTIONS_IN_MEMORY: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// How many connections of this process still hold their state in memory:
/// open ones, closing ones, and closed ones that a handle, a task or a
/// callback still keeps. A number that only grows is a leak.
pub fn connections_in_memory() -> usize {
    CONNECTIONS_IN_MEMORY.load(Ordering::Relaxed)
}
