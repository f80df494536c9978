//! The conformance suite (the reference's own cases, and the HTTP side) on
//! both runtimes.

mod tokio {
    juggler_tests::conformance_tests!(juggler_tests::support::runtimes::Tokio);
    juggler_tests::web_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::conformance_tests!(juggler_tests::support::runtimes::Smol);
    juggler_tests::web_tests!(juggler_tests::support::runtimes::Smol);
}

/// The same HTTP requests to a tokio and a smol server: the same answers.
#[test]
fn both_runtimes_answer_http_alike() {
    juggler_tests::cases::http_parity::run();
}
