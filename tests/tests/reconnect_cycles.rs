//! 1,000 reconnect cycles per runtime with no growth in connections, tasks
//! or budget. Its own binary, one runtime after the other: it counts every
//! connection in the process, which other tests would disturb.

use juggler_tests::cases::reconnect::many_reconnects_leave_nothing_behind;
use juggler_tests::support::runtimes::{Smol, Tokio};
use juggler_tests::Backend;

const CYCLES: usize = 1_000;

#[test]
fn a_thousand_reconnects_leave_nothing_behind() {
    Tokio::block_on(many_reconnects_leave_nothing_behind::<Tokio>(CYCLES));
    Smol::block_on(many_reconnects_leave_nothing_behind::<Smol>(CYCLES));
}
