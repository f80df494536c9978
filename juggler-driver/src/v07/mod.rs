//! The 0.6 and 0.7 generations of Juggler (SPEC-0.7.md): requests and
//! responses, a server state that flows one way as JSON Patch, and
//! notifications. The API follows hat-juggler 0.7.6: a server's
//! [`Handlers`] are its `connection_cb` and `request_cb`, its
//! [`Connection`] has `state`, `flush`, `notify` and `remote`; a
//! [`Client`] has `state`, `send(name, data)` and the notifications
//! ([`Client::receive`]).
//!
//! The protocol lives in [`juggler_core::v07`]; this module drives its
//! engines over a WebSocket on any [`Runtime`](crate::Runtime). The
//! runtime crates' `v07` modules give `listen` and `connect` on their
//! runtime. A server can also serve every generation on one path, telling
//! them apart by the client's first frame: see
//! [`ServerOptions::generations`](crate::ServerOptions::generations).

#[cfg(feature = "client")]
mod client;
mod link;
mod options;
#[cfg(feature = "server")]
mod server;
mod typed;

pub use crate::callbacks::StateCallbackHandle;
#[cfg(feature = "client")]
pub use crate::reconnect::v07::ReconnectingClient;
#[cfg(feature = "client")]
pub use client::{connect, start as start_client, Client, Notification};
pub use options::{Notifications, Options};
#[cfg(feature = "server")]
pub(crate) use server::accept;
#[cfg(feature = "server")]
pub use server::{
    Connection, Handlers, RequestError, RequestFuture, RequestHandler, RequestResult,
    WeakConnection,
};
