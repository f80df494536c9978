//! One Juggler state, and groups, across several server processes, on
//! Redis.
//!
//! A juggler-rs server keeps its [`Group`](juggler_driver::Group)s in one
//! process. With this crate several processes (nodes) behind a load
//! balancer share:
//!
//! - [`Document`]s: one JSON document every node mirrors and shows to its
//!   connections through a local group. Writes are JSON Patches committed
//!   atomically in Redis (a Lua script that checks an expected version
//!   and appends to a stream); every node applies them only as they come
//!   back from the stream, so all converge. A node that falls behind,
//!   reconnects or finds its epoch changed reloads the snapshot, and its
//!   connections get one corrective diff.
//! - [`ClusterGroup`]s: messages and notifications to members on every
//!   node over pub/sub, at most once.
//! - [`Presence`]: each node's part, under a heartbeat with a TTL.
//!
//! While Redis is unreachable, reads serve the last copy and writes fail
//! at once with [`Error::Unavailable`]; the node reconnects with backoff
//! and catches up. docs/cluster.md says what is guaranteed and what is
//! not. The crate runs on both runtimes: it uses the driver's
//! [`Runtime`](juggler_driver::Runtime) for its tasks, and the `redis`
//! crate uses the runtime it is called on.
#![forbid(unsafe_code)]

mod bus;
mod cluster;
mod document;
mod error;
mod follower;
mod groups;
mod link;
mod options;
mod presence;
mod scripts;
mod view;

pub use cluster::Cluster;
pub use document::{Changes, Document};
pub use error::Error;
pub use groups::ClusterGroup;
pub use options::ClusterOptions;
pub use presence::{Parts, Presence, PresenceChanges};
pub use view::View;
