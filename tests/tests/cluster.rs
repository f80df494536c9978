//! juggler-redis against a real redis-server, on both runtimes.

mod tokio {
    juggler_tests::cluster_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::cluster_tests!(juggler_tests::support::runtimes::Smol);
}
