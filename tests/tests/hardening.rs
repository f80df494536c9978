//! The hostile-input matrix and the load and fault tests against both
//! runtimes' servers.

mod tokio {
    juggler_tests::hostile_tests!(juggler_tests::runtimes::Tokio);
    juggler_tests::load_tests!(juggler_tests::runtimes::Tokio);
}

mod smol {
    juggler_tests::hostile_tests!(juggler_tests::runtimes::Smol);
    juggler_tests::load_tests!(juggler_tests::runtimes::Smol);
}
