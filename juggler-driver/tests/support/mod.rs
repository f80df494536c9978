//! What the driver's integration tests share: the runtime they drive
//! connections on.

use std::io;
use std::time::Instant;

use juggler_driver::{BoxFuture, Runtime, TcpConnecting};

/// tokio's current runtime, with its clock: virtual where a test pauses
/// time (`start_paused`), the real one elsewhere.
pub struct TokioClock;

impl Runtime for TokioClock {
    fn spawn(&self, future: BoxFuture) {
        tokio::spawn(future);
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn unblock(&self, work: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture {
        Box::pin(async move { work() })
    }

    fn connect_tcp(&self, _host: String, _port: u16) -> TcpConnecting {
        Box::pin(async { Err(io::Error::other("these tests have no network")) })
    }
}
