//! The browser reference client against both runtimes' servers.

mod tokio {
    juggler_tests::browser_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::browser_tests!(juggler_tests::support::runtimes::Smol);
}
