//! Typed state, typed RPC and broadcast groups on both runtimes.

mod tokio {
    juggler_tests::typed_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::typed_tests!(juggler_tests::support::runtimes::Smol);
}
