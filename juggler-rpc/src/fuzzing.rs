//! The rpc fuzz target's logic, kept in the crate so it builds and is
//! tested with it; `fuzz/fuzz_targets/rpc.rs` is one call to [`run`].
//!
//! One `juggler-core` engine plays the rpc side: arbitrary frames reach it
//! as from the wire, and every message it yields goes through the same
//! [`Endpoint`] as in [`RpcConnection`](crate::RpcConnection): a request
//! runs its action from a real [`Actions`] registry (typed and raw actions,
//! a default action) and is answered; a response resolves a pending call;
//! a malformed rpc object closes the engine with
//! [`ProtocolError::InvalidMessage`]. A second engine, the peer, receives
//! what the rpc side sends and checks it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};
use futures_util::FutureExt;
use juggler_core::testing::Pair;
use juggler_core::{AutoflushPolicy, CloseReason, Config, Event, ProtocolError};
use serde_json::{json, Value};

use crate::endpoint::{Endpoint, Inbound};
use crate::protocol::{decode, Calls, Decoded, Resolved, Response, RpcId, RpcMessage};
use crate::Actions;

/// The fuzz entry: decodes an arbitrary received message and checks the
/// decoder's invariants. It panics only on a bug: a plain message that
/// does not come back unchanged, an rpc message that does not survive an
/// encode/decode round trip, or a response that a [`Calls`] table
/// mishandles.
pub fn fuzz_message(message: &Value) {
    match decode(message.clone()) {
        Ok(Decoded::Other(other)) => assert_eq!(&other, message, "plain message changed"),
        Ok(Decoded::Rpc(rpc)) => {
            let wire = match &rpc {
                RpcMessage::Request(request) => request.encode(),
                RpcMessage::Response(response) => response.encode(),
            };
            assert_eq!(
                decode(wire).expect("an encoded message decodes"),
                Decoded::Rpc(rpc.clone()),
                "encode/decode round trip"
            );
            if let RpcMessage::Response(response) = rpc {
                let mut calls = Calls::new();
                let (first, _) = calls.start("a", Vec::new(), ()).expect("open");
                let (second, _) = calls.start("b", Vec::new(), ()).expect("open");
                let id = response.id;
                let known = id == first || id == second;
                match calls.resolve(response) {
                    Resolved::Pending { id: resolved, .. } => {
                        assert!(known && resolved == id, "resolved an unknown id")
                    }
                    Resolved::Unknown(unknown) => {
                        assert!(!known && unknown == id, "ignored a pending id")
                    }
                }
                let remaining = if known { 1 } else { 2 };
                assert_eq!(calls.len(), remaining);
                assert_eq!(calls.close().len(), remaining);
                assert!(calls.is_empty());
            }
        }
        Err(err) => assert!(!err.0.is_empty(), "an empty error text"),
    }
}

/// One step of an rpc fuzz scenario.
#[derive(Debug, Arbitrary)]
enum Step {
    /// Raw text as an incoming frame.
    Frame(String),
    /// A MESSAGE frame whose payload is this text as it is (JSON or not).
    Message(String),
    /// A MESSAGE frame with a well-formed request; the args text is parsed
    /// as JSON (an array is the args, anything else one argument).
    Request { id: i64, action: u8, args: String },
    /// A MESSAGE frame with a well-formed response.
    Response {
        id: i64,
        success: bool,
        result: String,
    },
    /// A response to the call `n` places back in the pending table.
    Answer { back: u8, success: bool },
    /// A call of the rpc side's own (so responses have something to match).
    Call(u8),
    /// Gives a pending call up, as a timeout does.
    Cancel(u8),
}

/// The actions requests pick from by index; past the end, names no action
/// has (the default action answers them).
const ACTION_NAMES: [&str; 6] = ["echo", "add", "repeat", "sum", "fail", "unit"];

fn actions() -> Actions {
    Actions::new()
        .action("echo", |args: Vec<Value>| async move {
            Ok::<_, Infallible>(Value::Array(args))
        })
        .typed_action("add", |(a, b): (i64, i64)| async move {
            a.checked_add(b).ok_or("overflow")
        })
        .typed_action("repeat", |(text, times): (String, Option<u8>)| async move {
            Ok::<_, Infallible>(text.repeat(usize::from(times.unwrap_or(1) % 4)))
        })
        .typed_action("sum", |(values,): (BTreeMap<String, f64>,)| async move {
            let sum: f64 = values.values().sum();
            serde_json::Number::from_f64(sum).ok_or("not finite")
        })
        .action("fail", |args: Vec<Value>| async move {
            Err::<Value, _>(format!("failed with {} args", args.len()))
        })
        .typed_action("unit", |(): ()| async move { Ok::<_, Infallible>(()) })
        .default_action(|name: String, _args: Vec<Value>| async move {
            Err::<Value, _>(format!("no action {name}"))
        })
}

fn json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn message_frame(payload: &Value) -> String {
    json!({"type": "MESSAGE", "payload": payload}).to_string()
}

/// Most of the peer's requests running at once: every request here is
/// answered before the next message, so one slot is enough, and a
/// request that found none would be a leaked slot.
const MAX_RUNNING: usize = 1;

/// Most steps one input runs, so every input finishes quickly.
const MAX_STEPS: usize = 256;

/// The rpc side: its engine is `pair.a`, the observing peer `pair.b`.
struct RpcSide {
    pair: Pair,
    actions: Actions,
    endpoint: Endpoint<()>,
    /// The ids of calls the model holds pending, in start order.
    pending: Vec<RpcId>,
    /// Events of `pair.a` already dispatched.
    dispatched: usize,
    /// What the peer must receive, in order: the rpc side's requests and
    /// responses.
    sent: Vec<Value>,
    /// Plain (non-rpc) messages received.
    plain: usize,
}

impl RpcSide {
    fn new() -> Self {
        let config = || Config::with_autoflush(AutoflushPolicy::Immediate);
        RpcSide {
            // The only clock read: a base for the virtual clock, never
            // used as "now".
            pair: Pair::new(Instant::now(), config(), config()),
            actions: actions(),
            endpoint: Endpoint::new(MAX_RUNNING),
            pending: Vec::new(),
            dispatched: 0,
            sent: Vec::new(),
            plain: 0,
        }
    }

    fn feed(&mut self, text: &str) {
        let _ = self.pair.a.engine.handle_text(text);
        self.dispatch();
    }

    /// Carries frames and dispatches the rpc side's new messages, as the
    /// dispatch task does, until nothing moves.
    fn dispatch(&mut self) {
        loop {
            self.pair.drive();
            if self.dispatched == self.pair.a.events.len() {
                return;
            }
            let events: Vec<Event> = self.pair.a.events[self.dispatched..].to_vec();
            self.dispatched = self.pair.a.events.len();
            for event in events {
                if let Event::Message(message) = event {
                    self.handle_message(message);
                }
            }
        }
    }

    fn handle_message(&mut self, message: Value) {
        if self.pair.a.engine.is_closed() {
            // The dispatch task stops at the close; what was queued is
            // not acted on.
            return;
        }
        fuzz_message(&message);
        match self.endpoint.handle_message(message.clone()) {
            Inbound::Plain(other) => {
                assert_eq!(other, message);
                self.plain += 1;
            }
            Inbound::Run(request) => {
                let outcome = self
                    .actions
                    .run(&request.action, request.args.clone())
                    .now_or_never()
                    .expect("the fuzz actions are ready at once");
                check_outcome(&request.action, &request.args, &outcome);
                let response = Response::from_outcome(request.id, outcome).encode();
                self.send(response);
                self.endpoint.request_done();
            }
            Inbound::Refuse(response) => panic!("refused with a free slot: {response:?}"),
            Inbound::Ignored => panic!("a request ignored while open"),
            Inbound::Resolved { id, .. } => {
                assert!(
                    self.pending.contains(&id),
                    "resolved call {id} was not pending"
                );
                self.pending.retain(|pending| *pending != id);
                assert_eq!(self.endpoint.pending_calls(), self.pending.len());
            }
            Inbound::Unmatched(id) => {
                assert!(!self.pending.contains(&id), "ignored pending call {id}");
            }
            Inbound::Violation(err) => {
                self.pair
                    .a
                    .engine
                    .handle_protocol_error(ProtocolError::InvalidMessage(err.0.clone()));
                assert!(matches!(
                    self.pair.a.engine.close_reason(),
                    Some(CloseReason::Protocol(ProtocolError::InvalidMessage(text))) if *text == err.0
                ));
                let failed = self.endpoint.close();
                assert_eq!(failed.len(), self.pending.len());
                self.pending.clear();
            }
        }
        assert_eq!(
            self.endpoint.running_requests(),
            0,
            "a request's slot leaked"
        );
    }

    fn send(&mut self, message: Value) {
        if self.pair.a.engine.send_message(&message).is_ok() {
            self.sent.push(message);
        }
    }

    fn call(&mut self, pick: u8) {
        let action = ACTION_NAMES[usize::from(pick) % ACTION_NAMES.len()];
        let Ok((id, request)) = self.endpoint.start_call(action, vec![json!(pick)], ()) else {
            assert!(self.endpoint.is_closed());
            return;
        };
        assert!(!self.pending.contains(&id), "id {id} reused while pending");
        self.pending.push(id);
        self.send(request);
    }

    /// The id of the call `back` places from the newest pending one.
    fn pending_id(&self, back: u8) -> Option<RpcId> {
        let len = self.pending.len();
        (len > 0).then(|| self.pending[len - 1 - usize::from(back) % len])
    }
}

/// Checks an action's outcome against what its arguments call for.
fn check_outcome(action: &str, args: &[Value], outcome: &Result<Value, String>) {
    match action {
        "echo" => assert_eq!(outcome, &Ok(Value::Array(args.to_vec()))),
        "add" => match (args, outcome) {
            ([a, b], Ok(sum)) => {
                let (a, b) = (a.as_i64().expect("an i64"), b.as_i64().expect("an i64"));
                assert_eq!(sum, &json!(a + b));
            }
            (_, Ok(sum)) => panic!("add of {args:?} gave {sum}"),
            (_, Err(text)) => assert!(!text.is_empty()),
        },
        "fail" => assert!(outcome.is_err()),
        "unit" if outcome.is_ok() => {
            assert!(args.is_empty() || args == [Value::Null], "{args:?}");
            assert_eq!(outcome, &Ok(Value::Null));
        }
        name if !ACTION_NAMES.contains(&name) => {
            assert_eq!(outcome, &Err(format!("no action {name}")))
        }
        _ => {}
    }
}

/// Runs one fuzz input; see the module docs. Panics only when an invariant
/// is broken.
pub fn run(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let mut side = RpcSide::new();
    for _ in 0..MAX_STEPS {
        // `arbitrary` yields default values once the data runs out, so the
        // input's end (not a decode error) ends the scenario.
        if input.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut input) else {
            break;
        };
        match step {
            Step::Frame(text) => side.feed(&text),
            Step::Message(payload) => {
                side.feed(&format!(r#"{{"type":"MESSAGE","payload":{payload}}}"#))
            }
            Step::Request { id, action, args } => {
                let action = ACTION_NAMES
                    .get(usize::from(action))
                    .map_or_else(|| format!("action{action}"), |name| (*name).to_owned());
                let args = match json_or_string(&args) {
                    Value::Array(args) => args,
                    other => vec![other],
                };
                let request = json!({"type": "rpc", "id": id, "direction": "request", "action": action, "args": args});
                side.feed(&message_frame(&request));
            }
            Step::Response {
                id,
                success,
                result,
            } => {
                let response = Response {
                    id,
                    success,
                    result: json_or_string(&result),
                };
                side.feed(&message_frame(&response.encode()));
            }
            Step::Answer { back, success } => {
                if let Some(id) = side.pending_id(back) {
                    let response = Response {
                        id,
                        success,
                        result: json!(back),
                    };
                    side.feed(&message_frame(&response.encode()));
                    if !side.pair.a.engine.is_closed() {
                        assert!(!side.pending.contains(&id), "answer left call {id} pending");
                    }
                }
            }
            Step::Call(pick) => {
                side.call(pick);
                side.dispatch();
            }
            Step::Cancel(back) => {
                if let Some(id) = side.pending_id(back) {
                    assert_eq!(side.endpoint.cancel_call(id), Some(()));
                    side.pending.retain(|pending| *pending != id);
                }
            }
        }
    }
    side.pair.run();
    // The peer got every request and response the rpc side sent, in order
    // and unchanged, each an rpc object it decodes.
    let received = side.pair.b.messages();
    assert_eq!(received, side.sent);
    for message in received {
        assert!(matches!(decode(message), Ok(Decoded::Rpc(_))));
    }
    if !side.pair.a.engine.is_closed() {
        assert_eq!(side.endpoint.pending_calls(), side.pending.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_ends() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x05\x01\x05\x00\x06\x01",
            &[0xff; 64],
            b"\x01{\"type\":\"rpc\"}",
        ] {
            run(data);
        }
    }

    /// A scripted scenario through the same steps: the checks hold and the
    /// peer sees the answers.
    #[test]
    fn answers_requests_and_resolves_calls() {
        let mut side = RpcSide::new();
        side.call(1);
        side.feed(&message_frame(
            &json!({"type": "rpc", "id": 9, "direction": "request", "action": "add", "args": [2, 3]}),
        ));
        side.feed(&message_frame(&Response::success(1, json!(5)).encode()));
        side.feed(&message_frame(&json!({"plain": true})));
        side.pair.run();
        assert!(side.pending.is_empty());
        assert_eq!(side.plain, 1);
        assert_eq!(
            side.pair.b.messages(),
            vec![
                json!({"type": "rpc", "id": 1, "direction": "request", "action": "add", "args": [1]}),
                json!({"type": "rpc", "id": 9, "direction": "response", "success": true, "result": 5}),
            ]
        );
        side.feed(&message_frame(&json!({"type": "rpc", "id": "x"})));
        assert!(matches!(
            side.pair.a.engine.close_reason(),
            Some(CloseReason::Protocol(ProtocolError::InvalidMessage(_)))
        ));
    }
}
