//! The test suites of juggler-rs, written once and run on every runtime.
//!
//! Where a test for X lives:
//!
//! - `support/`: what the suites share. [`support::backend`] is the
//!   `Backend` trait a runtime implements to run the suites (and `within`,
//!   the hang guard), [`support::runtimes`] its two implementations,
//!   [`support::bench`] the hostile-input bench, [`support::python`] and
//!   [`support::browser`] the reference peers, [`support::http`] a raw
//!   HTTP client.
//! - `cases/`: the suites. [`cases::conformance`] (the reference's own
//!   tests), [`cases::admission`] (origin policy, connection cap, slow
//!   clients), [`cases::web`] (HTTP side: static files, TLS),
//!   [`cases::rpc`], [`cases::hostile`] (hostile input, by topic),
//!   [`cases::load`], [`cases::interop_python`],
//!   [`cases::interop_browser`] and [`cases::cluster`] (juggler-redis
//!   against a real `redis-server`, [`support::redis`]).
//! - `tests/*.rs`: one test binary per suite, named after it, instantiating
//!   the suite's cases on tokio and smol with its macro
//!   ([`conformance_tests!`], [`hostile_tests!`], ...).
#![forbid(unsafe_code)]

pub mod cases;
pub mod support;

pub use support::backend::{Backend, Incoming, TestServer};
