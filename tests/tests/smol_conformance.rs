//! The conformance suite on juggler-smol: the very cases tokio runs.

juggler_tests::conformance_tests!(juggler_tests::runtimes::Smol);
juggler_tests::web_tests!(juggler_tests::runtimes::Smol);
