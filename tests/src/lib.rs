//! One conformance suite for every juggler-rs runtime.
//!
//! The cases in [`conformance`] are written once against the [`Backend`]
//! trait; each runtime's test file implements `Backend` in a few lines and
//! instantiates every case with [`conformance_tests!`].
#![forbid(unsafe_code)]

pub mod backend;
pub mod browser;
pub mod conformance;
pub mod hostile;
pub mod http;
pub mod interop_browser;
pub mod interop_python;
pub mod load;
pub mod python;
pub mod rpc;
pub mod runtimes;
pub mod web;

pub use backend::{Backend, Incoming, TestServer};
