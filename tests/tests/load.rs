//! The load and fault cases against both runtimes' servers, in a binary of
//! their own and one at a time (see `juggler_tests::cases::load`).

mod tokio {
    juggler_tests::load_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::load_tests!(juggler_tests::support::runtimes::Smol);
}
