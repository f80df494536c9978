//! permessage-deflate with real peers (Python websockets, aiohttp,
//! hat-juggler 0.7.6) against both runtimes.

mod tokio {
    juggler_tests::compression_interop_tests!(juggler_tests::support::runtimes::Tokio);
}

mod smol {
    juggler_tests::compression_interop_tests!(juggler_tests::support::runtimes::Smol);
}
