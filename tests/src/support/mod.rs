//! What the suites share: the runtime abstraction, the hostile-input
//! bench, the reference peers and a raw HTTP client.

pub mod backend;
pub mod bench;
pub mod browser;
pub mod http;
pub mod python;
pub mod redis;
pub mod relay;
pub mod runtimes;
pub mod tap;
