//! The runtimes the suite runs on.

mod smol;
mod tokio;

pub use self::smol::Smol;
pub use self::tokio::Tokio;
