//! The conformance suite on juggler-tokio.

juggler_tests::conformance_tests!(juggler_tests::runtimes::Tokio);
juggler_tests::web_tests!(juggler_tests::runtimes::Tokio);
