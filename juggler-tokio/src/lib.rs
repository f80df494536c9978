#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "server")]
mod layers;
#[cfg(any(feature = "client", feature = "server"))]
mod runtime;
#[cfg(feature = "server")]
mod server;
pub mod v07;

juggler_driver::client_functions!(juggler_tokio, crate::runtime());
#[cfg(feature = "server")]
pub use layers::no_cache_layer;
#[cfg(feature = "basic-auth")]
pub use layers::{BasicAuth, BasicAuthLayer, HtpasswdCheck};
#[cfg(feature = "server")]
pub use server::{listen, listen_with_routes, JugglerEndpoint};

/// The `axum` crate, whose `Router` [`listen_with_routes`] takes and
/// [`JugglerEndpoint`] mounts in.
#[cfg(feature = "server")]
pub use axum;

/// This runtime as the driver's [`Runtime`](juggler_driver::Runtime), for
/// crates written above both runtimes (juggler-redis) (call it inside a tokio runtime).
#[cfg(any(feature = "client", feature = "server"))]
pub fn runtime() -> std::sync::Arc<dyn juggler_driver::Runtime> {
    runtime::TokioRuntime::current()
}

pub use juggler_driver::exports::*;

/// The repository README's example, compiled and run as a doctest so it
/// stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/operations.md's snippets, as doctests too.
#[cfg(doctest)]
#[doc = include_str!("../../docs/operations.md")]
pub struct OperationsDoctests;
