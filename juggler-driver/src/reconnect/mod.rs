//! A client that survives transport loss; see [`ReconnectingClient`].

mod backoff;
mod client;
mod events;
mod options;
mod slot;
mod supervisor;
pub(crate) mod v07;

pub use backoff::Backoff;
pub use client::{ClientChangeCallbackHandle, ReconnectingClient, RemoteDataChanges};
pub use events::{ClientStatus, ReconnectEvent, ReconnectEvents};
pub use options::{HeaderCallback, ReconnectOptions, WhileDisconnected};
