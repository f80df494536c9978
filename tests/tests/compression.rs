//! permessage-deflate against both runtimes' servers and clients.

mod tokio {
    juggler_tests::compression_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::compression_tests!(juggler_tests::support::runtimes::Smol);
}
