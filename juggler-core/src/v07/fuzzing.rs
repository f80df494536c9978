//! The 0.6/0.7 fuzz target's logic (`fuzz/fuzz_targets/v07.rs` is one call
//! to [`run`]): a server and a client engine, arbitrary frames to both,
//! and arbitrary operations between them. Nothing may panic, and unless
//! arbitrary frames reached the client, a flushed client shows the
//! server's state.

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use serde_json::Value;

use super::{ClientConfig, ClientEngine, Framing, ServerConfig, ServerEngine, ServerEvent};
use crate::{AutoflushPolicy, PatchOperation};

#[derive(Debug, Arbitrary)]
enum Step {
    /// Raw text to the server, as a frame from the client.
    ToServer(String),
    /// Raw text to the client, as a frame from the server.
    ToClient(String),
    SetState(String),
    Update(String),
    Notify(String, String),
    Request(String, String, Option<u16>),
    /// Answers the n-th request waiting (if any), with success or not.
    Respond(u8, bool, String),
    ServerPing(String),
    ClientPing(String),
    Flush,
    Advance(u16),
    Drive,
    Close(bool),
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Runs one scenario from fuzzer bytes.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok((whole, segment, policy_byte)) = <(bool, u8, u8)>::arbitrary(&mut input) else {
        return;
    };
    let framing = if whole {
        Framing::Whole
    } else {
        Framing::Segmented {
            max_segment_size: usize::from(segment),
        }
    };
    let policy = match policy_byte % 3 {
        0 => AutoflushPolicy::Immediate,
        1 => AutoflushPolicy::Manual,
        _ => AutoflushPolicy::Delayed(Duration::from_millis(u64::from(policy_byte))),
    };
    // The virtual clock's origin; every later time is relative to it.
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut server = ServerEngine::new(
        ServerConfig {
            framing,
            max_message_size: 1 << 16,
            ..ServerConfig::v0_7()
        }
        .autoflush(policy),
        Value::Null,
        now,
    );
    let mut client = ClientEngine::new(ClientConfig {
        framing,
        max_message_size: 1 << 16,
        max_state_size: 1 << 20,
    });
    let mut waiting = Vec::new();
    let mut tampered = false;
    let Ok(steps) = Vec::<Step>::arbitrary(&mut input) else {
        return;
    };
    for step in steps {
        match step {
            Step::ToServer(text) => {
                let _ = server.handle_text(&text);
            }
            Step::ToClient(text) => {
                tampered = true;
                let _ = client.handle_text(&text);
            }
            Step::SetState(text) => {
                let _ = server.set_state(now, json(&text));
            }
            Step::Update(text) => {
                if let Ok(ops) = serde_json::from_str::<Vec<PatchOperation>>(&text) {
                    let _ = server.update_state(now, ops);
                }
            }
            Step::Notify(name, data) => {
                let _ = server.notify(&name, &json(&data));
            }
            Step::Request(name, data, timeout) => {
                let timeout = timeout.map(|ms| Duration::from_millis(u64::from(ms)));
                let _ = client.request(now, &name, &json(&data), timeout);
            }
            Step::Respond(index, success, data) => {
                if !waiting.is_empty() {
                    let request: super::message::Request =
                        waiting.remove(usize::from(index) % waiting.len());
                    let result = if success {
                        Ok(json(&data))
                    } else {
                        Err(json(&data))
                    };
                    let _ = server.respond(&request.id, result);
                }
            }
            Step::ServerPing(payload) => {
                let _ = server.send_ping(&payload);
            }
            Step::ClientPing(payload) => {
                let _ = client.send_ping(&payload);
            }
            Step::Flush => {
                let _ = server.flush();
            }
            Step::Advance(ms) => {
                now += Duration::from_millis(u64::from(ms));
                server.handle_timeout(now);
                client.handle_timeout(now);
            }
            Step::Drive => drive(&mut server, &mut client, &mut waiting),
            Step::Close(server_side) => {
                if server_side {
                    server.close();
                } else {
                    client.close();
                }
            }
        }
        while let Some(event) = server.poll_event() {
            if let ServerEvent::Request(request) = event {
                waiting.push(request);
            }
        }
        while client.poll_event().is_some() {}
    }
    let open = server.close_reason().is_none() && client.close_reason().is_none();
    if open && !tampered {
        let _ = server.flush();
        drive(&mut server, &mut client, &mut waiting);
        if server.close_reason().is_none() && client.close_reason().is_none() {
            assert_eq!(**client.state(), **server.state(), "the client converges");
        }
    }
}

/// Moves every queued frame across, both ways, until none is left.
fn drive(
    server: &mut ServerEngine,
    client: &mut ClientEngine,
    waiting: &mut Vec<super::message::Request>,
) {
    loop {
        let mut moved = false;
        while let Some(frame) = server.poll_transmit() {
            moved = true;
            let _ = client.handle_text(frame.text.as_str());
        }
        while let Some(frame) = client.poll_transmit() {
            moved = true;
            let _ = server.handle_text(frame.text.as_str());
        }
        while let Some(event) = server.poll_event() {
            if let ServerEvent::Request(request) = event {
                waiting.push(request);
            }
        }
        if !moved {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_scenarios_neither_panic_nor_diverge(data in prop::collection::vec(any::<u8>(), 0..2048)) {
            super::run(&data);
        }
    }
}
