//! permessage-deflate's frame transform driven by arbitrary peer bytes,
//! and the round trip of arbitrary payloads; see
//! `juggler_deflate::fuzzing::run`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| juggler_deflate::fuzzing::run(data));
