//! The 0.6 and 0.7 generations on both runtimes: our client and server,
//! detection on one path, the pinned Python peers in both directions,
//! hostile input.

mod tokio {
    juggler_tests::generations_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::generations_tests!(juggler_tests::support::runtimes::Smol);
}
