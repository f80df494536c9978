//! What the reconnecting client tells its application.

use juggler_core::{CloseReason, Generation};
use tokio::sync::broadcast;

/// Where a [`ReconnectingClient`](super::ReconnectingClient) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientStatus {
    /// Between connections: trying addresses or waiting to.
    Connecting,
    /// A connection is open.
    Connected,
    /// `max_failed_rounds` rounds failed in a row; no more attempts.
    GaveUp,
    /// Closed by the application.
    Closed,
}

/// A change in a [`ReconnectingClient`](super::ReconnectingClient)'s
/// connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectEvent {
    /// A connection opened; its local data is on its way.
    Connected {
        /// The address it connected to.
        address: String,
        /// The protocol generation it speaks.
        generation: Generation,
    },
    /// An attempt failed: TCP, TLS, the handshake, or the server refused.
    ConnectFailed {
        /// The address tried.
        address: String,
        /// What went wrong.
        error: String,
    },
    /// The open connection closed.
    Disconnected {
        /// Its address.
        address: String,
        /// Why it closed.
        reason: CloseReason,
    },
    /// No more attempts (see
    /// [`ReconnectOptions::max_failed_rounds`](super::ReconnectOptions::max_failed_rounds)).
    GaveUp {
        /// Rounds in a row in which every address failed.
        failed_rounds: u32,
    },
    /// This reader fell behind by this many events, which it will not see.
    Missed(u64),
}

/// The events of a [`ReconnectingClient`](super::ReconnectingClient), as
/// an async sequence; it ends when the client has closed or given up.
#[derive(Debug)]
pub struct ReconnectEvents {
    pub(crate) receiver: broadcast::Receiver<ReconnectEvent>,
}

impl ReconnectEvents {
    /// The next event; `None` once the client has closed or given up and
    /// every event was read.
    pub async fn next(&mut self) -> Option<ReconnectEvent> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Some(ReconnectEvent::Missed(missed))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
