//! The RPC suite (juggler-rpc) on both runtimes.

mod tokio {
    juggler_tests::rpc_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::rpc_tests!(juggler_tests::support::runtimes::Smol);
}
