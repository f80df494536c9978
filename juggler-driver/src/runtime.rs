//! The little a driver needs from an async runtime.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A boxed future the runtime runs or waits on.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Spawning and timers: everything runtime-specific the connection driver
/// uses. `juggler-tokio` and `juggler-smol` each implement it in a few lines.
pub trait Runtime: Send + Sync + 'static {
    /// Runs `future` to completion in the background.
    fn spawn(&self, future: BoxFuture);
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture;
}
