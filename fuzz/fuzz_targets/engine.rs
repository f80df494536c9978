//! Two engines driven by arbitrary frames and operations; see
//! `juggler_core::fuzzing::run` for the steps and invariants.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| juggler_core::fuzzing::run(data));
