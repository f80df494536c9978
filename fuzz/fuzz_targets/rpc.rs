//! The rpc layer's message handling behind a `juggler-core` engine, driven
//! by arbitrary frames; see `juggler_rpc::fuzzing::run` for the steps and
//! invariants.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| juggler_rpc::fuzzing::run(data));
