//! Remote procedure calls over Juggler messages (SPEC §5): the reference
//! `RpcConnection`, on either runtime.
//!
//! - [`RpcConnection`] wraps a [`juggler_driver::Connection`] from
//!   `juggler-tokio` or `juggler-smol`. It answers the peer's requests with
//!   [`Actions`], makes calls of its own ([`RpcConnection::call`],
//!   optionally with a timeout or with serde types), and keeps the
//!   connection's data and message API; its `receive` yields only the
//!   messages that are not rpc objects.
//! - [`protocol`] is the protocol logic without I/O: decoding and
//!   validating rpc objects, encoding them, and the pending-call table.
//!
//! On the wire a call is a MESSAGE with
//! `{"type": "rpc", "id": 1, "direction": "request", "action": "add_one", "args": [123]}`,
//! answered by
//! `{"type": "rpc", "id": 1, "direction": "response", "success": true, "result": 124}`.
//! Both sides may call at once; ids count up from 1 per connection and
//! direction.
//!
//! ```
//! use juggler_rpc::{Actions, RpcConnection, RpcError};
//! use juggler_tokio::{connect, listen, ServerOptions};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = listen("127.0.0.1", 0, |connection| {
//!     let actions = Actions::new().typed_action("add_one", |(x,): (i64,)| async move {
//!         x.checked_add(1).ok_or("overflow")
//!     });
//!     let rpc = RpcConnection::new(connection, actions);
//!     // Dropping the last RpcConnection handle closes the connection:
//!     // keep one until the peer goes away.
//!     tokio::spawn(async move { rpc.wait_closed().await });
//! }, ServerOptions::default()).await?;
//!
//! let client = RpcConnection::new(connect(server.url()).await?, Actions::new());
//! assert_eq!(client.call("add_one", vec![json!(123)]).await?, json!(124));
//! let sum: i64 = client.call_typed("add_one", (41,)).await?;
//! assert_eq!(sum, 42);
//! match client.call("add_one", vec![json!("abc")]).await {
//!     Err(err) => assert!(err.remote_text().unwrap().contains("invalid type")),
//!     other => panic!("{other:?}"),
//! }
//! match client.call("missing", vec![]).await {
//!     Err(RpcError::Remote(error)) => assert_eq!(error, json!("invalid action")),
//!     other => panic!("{other:?}"),
//! }
//! server.close().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod actions;
mod connection;
pub mod endpoint;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod metrics;
pub mod protocol;
mod typed;

pub use actions::{ActionFuture, Actions, INVALID_ACTION};
pub use connection::{RpcConnection, RpcOptions, ACTION_PANICKED};
pub use endpoint::TOO_MANY_REQUESTS;
pub use metrics::describe_metrics;
pub use typed::Action;

use thiserror::Error;

/// docs/guide.md, whose Rust snippets are compiled (and, unless marked
/// `no_run`, run) as doctests of this crate: its test dependencies have
/// all they use (juggler-tokio, tokio, serde, tracing-subscriber).
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct GuideDoctests;

/// Why a call failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The remote action failed (or does not exist: `"invalid action"`).
    /// The value is the response's `result` as the peer sent it: the
    /// reference (and juggler-rpc's `Actions`) send the error's text, as a
    /// JSON string; see [`remote_text`](Self::remote_text) and
    /// [`remote_error_as`](Self::remote_error_as).
    #[error("remote error: {}", remote_display(.0))]
    Remote(serde_json::Value),
    /// The connection closed before the response arrived (or was closed
    /// when the call was made).
    #[error("connection closed")]
    Closed,
    /// [`RpcConnection::call_with_timeout`] gave up waiting.
    #[error("call timed out")]
    Timeout,
    /// The request could not be sent for a reason other than the close.
    #[error(transparent)]
    Connection(juggler_driver::Error),
    /// [`RpcConnection::call_typed`]: the arguments do not serialize to a
    /// JSON array.
    #[error("invalid call arguments: {0}")]
    InvalidArgs(String),
    /// [`RpcConnection::call_typed`]: the result does not deserialize into
    /// the requested type.
    #[error("invalid call result: {0}")]
    InvalidResult(serde_json::Error),
}

fn remote_display(error: &serde_json::Value) -> String {
    match error {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl RpcError {
    /// The remote error's text, when the peer sent a string (as the
    /// reference does).
    pub fn remote_text(&self) -> Option<&str> {
        match self {
            RpcError::Remote(error) => error.as_str(),
            _ => None,
        }
    }

    /// The remote error as a `T`: `None` for other errors, `Some(Err(_))`
    /// when the peer's error does not fit `T`.
    ///
    /// ```
    /// use juggler_rpc::RpcError;
    /// use serde_json::json;
    ///
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Refusal { code: u16 }
    ///
    /// let error = RpcError::Remote(json!({"code": 403}));
    /// assert_eq!(error.remote_error_as::<Refusal>().unwrap().unwrap(), Refusal { code: 403 });
    /// assert!(RpcError::Timeout.remote_error_as::<Refusal>().is_none());
    /// ```
    pub fn remote_error_as<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Option<Result<T, serde_json::Error>> {
        match self {
            RpcError::Remote(error) => Some(T::deserialize(error)),
            _ => None,
        }
    }
}

impl From<juggler_driver::Error> for RpcError {
    fn from(err: juggler_driver::Error) -> Self {
        match err {
            juggler_driver::Error::Closed => RpcError::Closed,
            other => RpcError::Connection(other),
        }
    }
}

/// The crate README's example, compiled and run as a doctest so it stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
