//! permessage-deflate (RFC 7692) for WebSocket byte streams.
//!
//! tungstenite, which juggler-rs speaks WebSocket with, has no extension
//! support. This crate adds permessage-deflate underneath it instead of
//! inside it: between the upgraded socket and the WebSocket implementation
//! sits a layer ([`DeflateStream`]) that inflates the peer's compressed
//! messages into plain frames and compresses the plain frames written to
//! it, so the implementation above only ever sees frames without RSV1.
//!
//! - [`Compression`]: the options, and negotiation (the server's answer to
//!   an offer, the client's offer and its reading of the answer).
//! - [`frames`]: the transform, sans I/O: [`Inbound`] and [`Outbound`].
//! - [`codec`]: one message compressed, a stream of them inflated, with
//!   the size limit counted while inflating; zlib state pooled per thread.
//! - [`DeflateStream`]: the transform over any futures-io stream.
//!
//! Our compressor never keeps context between messages: it holds no
//! memory while a connection is idle, and a payload compresses to the same
//! bytes on every connection, which [`codec::compress_message`] uses to
//! compress a payload fanned out to many connections once per thread.
//!
//! ```
//! use juggler_deflate::{codec, Compression};
//!
//! let server = Compression::default();
//! let (agreed, answer) = server
//!     .answer_offers(["permessage-deflate; client_max_window_bits"])
//!     .expect("an offer we accept");
//! assert_eq!(answer, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
//! let text = br#"{"type": "DATA", "payload": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
//! let wire = codec::compress_message(text, agreed.own_window_bits, agreed.level);
//! assert_eq!(codec::decompress_message(&wire, 1 << 20).unwrap(), text);
//! ```
#![forbid(unsafe_code)]

pub mod codec;
pub mod frames;
mod io;
mod params;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use frames::{Inbound, Outbound};
pub use io::{ClientStream, DeflateStream};
pub use params::{Compression, Negotiated, NegotiationError, EXTENSION};

/// A peer's violation of RFC 7692 (or of the size limit) found while
/// inflating: the connection must close with [`close_code`](Self::close_code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    /// RSV1 where it may not be (a control frame, a continuation frame):
    /// close 1002.
    #[error("permessage-deflate: {0}")]
    Protocol(&'static str),
    /// The compressed data is not a valid deflate stream: close 1007.
    #[error("permessage-deflate: corrupt compressed data")]
    Corrupt,
    /// The message inflates past the size limit (inflation stopped
    /// there): close 1009.
    #[error("message inflates past the limit of {limit} bytes")]
    TooLarge {
        /// Bytes inflated when it stopped (a lower bound of the size).
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl Violation {
    /// The WebSocket close code (RFC 6455 §7.4.1) that reports it.
    pub fn close_code(&self) -> u16 {
        match self {
            Violation::Protocol(_) => 1002,
            Violation::Corrupt => 1007,
            Violation::TooLarge { .. } => 1009,
        }
    }

    /// The violation an I/O error of a [`DeflateStream`] carries, if any.
    pub fn of_io_error(err: &std::io::Error) -> Option<&Violation> {
        err.get_ref()?.downcast_ref::<Violation>()
    }
}
