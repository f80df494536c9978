//! The 0.6 and 0.7 generations (SPEC-0.7.md), sans I/O, beside the 0.5
//! [`Engine`](crate::Engine).
//!
//! Their user layer is asymmetric: the client sends `request`s, the
//! server sends `response`s, its `state` (one way, as JSON Patch) and
//! `notify`s. 0.6 puts each message in one bare JSON text frame; 0.7 adds
//! a transport layer of one-character headers, segments and pings
//! ([`transport`]). [`ServerEngine`] and [`ClientEngine`] are one
//! connection of each role, for either framing ([`Framing`]); like the
//! 0.5 engine they read no clock and touch no socket.
//!
//! ```
//! use std::time::Instant;
//! use juggler_core::v07::{ClientConfig, ClientEngine, ClientEvent, ServerConfig, ServerEngine, ServerEvent};
//! use juggler_core::AutoflushPolicy;
//! use serde_json::json;
//!
//! let now = Instant::now();
//! let mut server = ServerEngine::new(ServerConfig::v0_7().autoflush(AutoflushPolicy::Immediate), json!(null), now);
//! let mut client = ClientEngine::new(ClientConfig::v0_7());
//!
//! server.set_state(now, json!({"clients": 1}))?;
//! let (id, _) = client.request(now, "hello", &json!({"x": 1}), None)?;
//! while let Some(frame) = client.poll_transmit() {
//!     server.handle_text(frame.text.as_str())?;
//! }
//! let Some(ServerEvent::Request(request)) = server.poll_event() else { unreachable!() };
//! server.respond(&request.id, Ok(json!("hi")))?;
//! while let Some(frame) = server.poll_transmit() {
//!     client.handle_text(frame.text.as_str())?;
//! }
//! assert_eq!(**client.state(), json!({"clients": 1}));
//! assert_eq!(client.poll_event(), Some(ClientEvent::StateChanged));
//! assert_eq!(client.poll_event(), Some(ClientEvent::Response { id, result: Ok(json!("hi")) }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod message;
mod output;
mod server;
pub mod transport;

pub use client::{ClientConfig, ClientEngine, ClientEvent};
pub use output::{Framing, OutFrame};
pub use server::{ServerConfig, ServerEngine, ServerEvent};
pub use transport::{ping_frame, segments, Package, Reassembler, DEFAULT_MAX_SEGMENT_SIZE};

/// The largest message a peer may send by default, joined from its
/// segments: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

#[cfg(test)]
mod tests;
