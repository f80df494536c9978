//! The admission suite (origin policy, max_connections, slow clients) on
//! both runtimes.

mod tokio {
    juggler_tests::admission_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::admission_tests!(juggler_tests::support::runtimes::Smol);
}
