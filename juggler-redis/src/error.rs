//! What can go wrong between a node and Redis.

use thiserror::Error;

/// An error of a cluster operation.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Redis cannot be reached now (or this node has not caught up with
    /// it since it came back): the write was not sent. The node keeps
    /// serving its last copy and reconnects by itself.
    #[error("Redis is unreachable; the write was not sent")]
    Unavailable,
    /// The document's version was not the expected one: someone else
    /// wrote first. Nothing was written.
    #[error("version conflict: expected {expected}, the document is at {actual}")]
    Conflict {
        /// The version the write expected.
        expected: u64,
        /// The version the document had.
        actual: u64,
    },
    /// The patch does not apply to this node's copy; nothing was sent.
    #[error("the patch does not apply: {0}")]
    Patch(String),
    /// The write was committed in Redis, but Redis lost it (it restarted
    /// empty) before this node saw it, and the document was re-seeded
    /// from a copy without it.
    #[error("version {0} was committed, then lost with Redis's data")]
    Lost(u64),
    /// The write was sent but its outcome was not seen in time (the
    /// connection broke): it may or may not have been applied.
    #[error("the write's outcome is unknown: {0}")]
    Unconfirmed(String),
    /// A Redis command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something this crate did not write there.
    #[error("unexpected data in Redis: {0}")]
    Corrupt(String),
    /// The cluster handle was closed.
    #[error("the cluster is closed")]
    Closed,
}

impl Error {
    /// Whether `err` means the connection is gone (so reconnect), rather
    /// than a refused command.
    pub(crate) fn is_connection_loss(err: &redis::RedisError) -> bool {
        err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
            || err.is_unrecoverable_error()
    }
}
