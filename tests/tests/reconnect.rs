//! The reconnecting client on both runtimes.

mod tokio {
    juggler_tests::reconnect_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::reconnect_tests!(juggler_tests::support::runtimes::Smol);
}
