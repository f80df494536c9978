//! The pinned Python reference peer (hat-juggler) against both runtimes,
//! in both directions: our server with its client, its server with ours.

mod tokio {
    juggler_tests::python_interop_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::python_interop_tests!(juggler_tests::support::runtimes::Smol);
}
