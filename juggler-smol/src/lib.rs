#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(any(feature = "client", feature = "server"))]
mod runtime;
#[cfg(feature = "server")]
mod server;
pub mod v07;

juggler_driver::client_functions!(juggler_smol, crate::runtime());
#[cfg(feature = "basic-auth")]
pub use server::require_basic_auth;
#[cfg(feature = "server")]
pub use server::{listen, listen_with_routes, JugglerEndpoint};

/// This runtime as the driver's [`Runtime`](juggler_driver::Runtime), for
/// crates written above both runtimes (juggler-redis).
#[cfg(any(feature = "client", feature = "server"))]
pub fn runtime() -> std::sync::Arc<dyn juggler_driver::Runtime> {
    runtime::SmolRuntime::shared()
}

pub use juggler_driver::exports::*;

/// The crate README's example, compiled and run as a doctest so it stays
/// true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
