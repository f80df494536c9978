//! The runtimes the suite runs on.

mod tokio;

pub use self::tokio::Tokio;
