//! The smol implementation of the driver's runtime trait.

use std::sync::Arc;
use std::time::Instant;

use juggler_driver::{BoxFuture, Runtime};

/// Spawns on smol's global executor and sleeps with `async-io` timers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SmolRuntime;

impl SmolRuntime {
    pub(crate) fn shared() -> Arc<dyn Runtime> {
        Arc::new(SmolRuntime)
    }
}

impl Runtime for SmolRuntime {
    fn spawn(&self, future: BoxFuture) {
        smol::spawn(future).detach();
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture {
        let timer = smol::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }
}
