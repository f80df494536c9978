//! The hostile-input matrix against both runtimes' servers.

mod tokio {
    juggler_tests::hostile_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::hostile_tests!(juggler_tests::support::runtimes::Smol);
}
