//! The fuzz target's logic, kept in the crate so it builds and is tested
//! with it; `fuzz/fuzz_targets/engine.rs` is one call to [`run`].

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;

use crate::testing::Pair;
use crate::{AutoflushPolicy, CloseReason, Config, PatchOperation, ProtocolError};

/// Which engine of the pair a step acts on.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Side {
    A,
    B,
}

/// One step of a fuzz scenario.
#[derive(Debug, Arbitrary)]
enum Step {
    /// Feed raw text to one side as an incoming frame.
    Text(Side, String),
    /// Feed text that is a frame of the given type with a JSON payload
    /// parsed from the string (or the string itself when it is not JSON).
    Frame(Side, u8, String),
    SetLocal(Side, String),
    Update(Side, String),
    Flush(Side),
    Send(Side, String),
    Ping(Side),
    Advance(u16),
    Drive,
    Binary(Side),
    Close(Side),
}

impl Step {
    /// The side the step acts on (`A` for those that act on both).
    fn side(&self) -> Side {
        match self {
            Step::Text(side, _)
            | Step::Frame(side, _, _)
            | Step::SetLocal(side, _)
            | Step::Update(side, _)
            | Step::Flush(side)
            | Step::Send(side, _)
            | Step::Ping(side)
            | Step::Binary(side)
            | Step::Close(side) => *side,
            Step::Advance(_) | Step::Drive => Side::A,
        }
    }
}

fn policy(byte: u8) -> AutoflushPolicy {
    match byte % 3 {
        0 => AutoflushPolicy::Immediate,
        1 => AutoflushPolicy::Manual,
        _ => AutoflushPolicy::Delayed(Duration::from_millis(u64::from(byte))),
    }
}

fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Most steps one input runs, so every input finishes quickly.
const MAX_STEPS: usize = 512;

/// Runs one fuzz input: two engines on a virtual clock, driven by steps
/// decoded from `data`, with the engine's invariants checked after each.
/// Panics only when an invariant is broken.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let (Ok(a), Ok(b)) = (u8::arbitrary(&mut input), u8::arbitrary(&mut input)) else {
        return;
    };
    // The only clock read: a base for the virtual clock, never used as "now".
    #[allow(clippy::disallowed_methods)]
    let origin = Instant::now();
    let mut pair = Pair::new(
        origin,
        Config::with_autoflush(policy(a)),
        Config::with_autoflush(policy(b)),
    );
    // `arbitrary` yields default values once the data runs out, so the
    // input's end (not a decode error) ends the scenario.
    for _ in 0..MAX_STEPS {
        if input.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut input) else {
            break;
        };
        let engine = match step.side() {
            Side::A => &mut pair.a.engine,
            Side::B => &mut pair.b.engine,
        };
        match step {
            Step::Text(_, text) => check_input(engine, &text),
            Step::Frame(_, kind, payload) => {
                let kind = ["DATA", "MESSAGE", "PING", "PONG", "OTHER"][usize::from(kind % 5)];
                let text = serde_json::json!({"type": kind, "payload": json_or_string(&payload)})
                    .to_string();
                check_input(engine, &text);
            }
            Step::SetLocal(_, text) => {
                let closed = engine.is_closed();
                assert_eq!(
                    engine
                        .set_local_data(pair.now, json_or_string(&text))
                        .is_err(),
                    closed
                );
            }
            Step::Update(_, text) => {
                if let Ok(ops) = serde_json::from_str::<Vec<PatchOperation>>(&text) {
                    let before = engine.local_data().clone();
                    if engine.update_local_data(pair.now, ops).is_err() {
                        assert_eq!(
                            &before,
                            engine.local_data(),
                            "failed update changed local data"
                        );
                    }
                }
            }
            Step::Flush(_) => {
                let _ = engine.flush_local_data();
            }
            Step::Send(_, text) => {
                let _ = engine.send_message(&json_or_string(&text));
            }
            Step::Ping(_) => {
                let _ = engine.send_ping();
            }
            Step::Advance(ms) => {
                pair.now += Duration::from_millis(u64::from(ms));
                pair.a.engine.handle_timeout(pair.now);
                pair.b.engine.handle_timeout(pair.now);
            }
            Step::Drive => pair.drive(),
            Step::Binary(_) => engine.handle_protocol_error(ProtocolError::BinaryFrame),
            Step::Close(_) => engine.close(),
        }
    }
    pair.run();
    // Two open engines that only talked to each other agree after a flush.
    if !pair.a.engine.is_closed() && !pair.b.engine.is_closed() {
        let _ = pair.a.engine.flush_local_data();
        let _ = pair.b.engine.flush_local_data();
        pair.run();
        if !pair.a.engine.is_closed() && !pair.b.engine.is_closed() {
            assert_eq!(pair.a.engine.local_data(), pair.b.engine.remote_data());
            assert_eq!(pair.b.engine.local_data(), pair.a.engine.remote_data());
        }
    }
}

/// Feeds one text and checks: a rejected frame leaves remote data alone
/// and closes the engine with that very error.
fn check_input(engine: &mut crate::Engine, text: &str) {
    let before = engine.remote_data().clone();
    let was_closed = engine.is_closed();
    match engine.handle_text(text) {
        Ok(()) if was_closed => assert_eq!(&before, engine.remote_data()),
        Ok(()) => {}
        Err(err) => {
            assert_eq!(
                &before,
                engine.remote_data(),
                "rejected frame changed remote data"
            );
            assert_eq!(engine.close_reason(), Some(&CloseReason::Protocol(err)));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_input_ends() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x00\x01\x00",
            &[0xff; 64],
            b"\x00\x00\x01\x01{\"type\":\"PING\"}",
        ] {
            super::run(data);
        }
    }
}
