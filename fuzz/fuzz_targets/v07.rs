//! A 0.6/0.7 server and client engine driven by arbitrary frames and
//! operations; see `juggler_core::v07::fuzzing::run`.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| juggler_core::v07::fuzzing::run(data));
