//! The suites, each written once against [`Backend`](crate::Backend).

pub mod admission;
pub mod cluster;
pub mod compression;
pub mod compression_interop;
pub mod conformance;
pub mod generations;
pub mod hostile;
pub mod http_parity;
pub mod interop_browser;
pub mod interop_python;
pub mod load;
pub mod reconnect;
pub mod rpc;
pub mod typed;
pub mod web;
