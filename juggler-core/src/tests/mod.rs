//! Engine tests: no sockets, no sleeps, a virtual clock.

// `Instant::now()` here is only the virtual clock's origin.
#![allow(clippy::disallowed_methods)]

mod bounded_output;
mod diffed_outside;
mod hostile_input;
mod mounts;
pub(crate) mod properties;
mod spec_data_sync;
mod spec_transport;

use std::time::{Duration, Instant};

use crate::testing::Pair;
use crate::{AutoflushPolicy, Config};

fn policy_pair(a: AutoflushPolicy, b: AutoflushPolicy) -> Pair {
    Pair::new(
        Instant::now(),
        Config::with_autoflush(a),
        Config::with_autoflush(b),
    )
}

fn immediate_pair() -> Pair {
    policy_pair(AutoflushPolicy::Immediate, AutoflushPolicy::Immediate)
}

const DELAY: Duration = Duration::from_millis(200);
