//! The 0.6/0.7 engines against SPEC-0.7.md: state sync at each autoflush
//! policy, requests, the transport's pings, bad input, and properties.

// `Instant::now()` here is only the virtual clock's origin.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::testing::Pair;
use crate::{AutoflushPolicy, CloseReason, Driven, PatchOperation, ProtocolError};

fn server(policy: AutoflushPolicy, now: Instant) -> ServerEngine {
    ServerEngine::new(ServerConfig::v0_7().autoflush(policy), Value::Null, now)
}

/// The frames the engine has now, as text.
fn drain_server(server: &mut ServerEngine) -> Vec<String> {
    std::iter::from_fn(|| server.poll_transmit().map(|frame| String::from(frame.text))).collect()
}

fn drain_client(client: &mut ClientEngine) -> Vec<String> {
    std::iter::from_fn(|| client.poll_transmit().map(|frame| String::from(frame.text))).collect()
}

/// The user messages in 0.7 frames, joined.
fn messages(frames: &[String]) -> Vec<Value> {
    let mut reassembler = Reassembler::new(usize::MAX);
    frames
        .iter()
        .filter_map(|frame| match reassembler.handle_frame(frame).unwrap() {
            Package::Message(text) => Some(serde_json::from_str(&text).unwrap()),
            _ => None,
        })
        .collect()
}

fn ops(value: Value) -> Vec<PatchOperation> {
    serde_json::from_value(value).unwrap()
}

#[test]
fn nothing_is_sent_while_the_state_is_null() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server.set_state(now, Value::Null).unwrap();
    server.flush().unwrap();
    assert!(drain_server(&mut server).is_empty());
}

#[test]
fn immediate_sends_every_change_and_the_first_replaces_the_root() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server.set_state(now, json!({"a": 1})).unwrap();
    server.set_state(now, json!({"a": 2})).unwrap();
    server.set_state(now, json!({"a": 2})).unwrap();
    assert_eq!(
        messages(&drain_server(&mut server)),
        [
            json!({"type": "state", "diff": [{"op": "replace", "path": "", "value": {"a": 1}}]}),
            json!({"type": "state", "diff": [{"op": "replace", "path": "/a", "value": 2}]}),
        ],
        "an equal value sends nothing"
    );
}

#[test]
fn a_delay_window_opens_at_the_first_change_and_sends_the_latest() {
    let start = Instant::now();
    let ms = |n| start + Duration::from_millis(n);
    let mut server = server(AutoflushPolicy::Delayed(Duration::from_millis(200)), start);
    server.set_state(ms(0), json!({"n": 1})).unwrap();
    server.set_state(ms(50), json!({"n": 2})).unwrap();
    server.set_state(ms(100), json!({"n": 3})).unwrap();
    assert_eq!(
        server.poll_timeout(),
        Some(ms(200)),
        "later changes do not extend it"
    );
    server.handle_timeout(ms(199));
    assert!(drain_server(&mut server).is_empty());
    server.handle_timeout(ms(200));
    assert_eq!(
        messages(&drain_server(&mut server)),
        [json!({"type": "state", "diff": [{"op": "replace", "path": "", "value": {"n": 3}}]})]
    );
    assert_eq!(server.poll_timeout(), None);
}

#[test]
fn manual_sends_only_on_flush_including_the_initial_state() {
    let now = Instant::now();
    let mut server = ServerEngine::new(
        ServerConfig::v0_7().autoflush(AutoflushPolicy::Manual),
        json!({"shared": true}),
        now,
    );
    server.set_state(now, json!({"shared": 1})).unwrap();
    assert!(drain_server(&mut server).is_empty());
    let ticket = server.flush().unwrap();
    let frames: Vec<OutFrame> = std::iter::from_fn(|| server.poll_transmit()).collect();
    assert_eq!(frames.last().unwrap().seq, ticket.seq());
    assert_eq!(
        messages(
            &frames
                .into_iter()
                .map(|f| String::from(f.text))
                .collect::<Vec<_>>()
        ),
        [json!({"type": "state", "diff": [{"op": "replace", "path": "", "value": {"shared": 1}}]})]
    );
    server.flush().unwrap();
    assert!(
        drain_server(&mut server).is_empty(),
        "nothing pending, nothing sent"
    );
}

#[test]
fn updates_send_their_own_ops_and_never_test_move_or_copy() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server.set_state(now, json!({"a": [1, 2], "b": 1})).unwrap();
    drain_server(&mut server);
    server
        .update_state(now, ops(json!([{"op": "add", "path": "/a/-", "value": 3}])))
        .unwrap();
    server
        .update_state(
            now,
            ops(json!([
                {"op": "test", "path": "/b", "value": 1},
                {"op": "move", "from": "/b", "path": "/c"}
            ])),
        )
        .unwrap();
    let sent = messages(&drain_server(&mut server));
    assert_eq!(
        sent[0],
        json!({"type": "state", "diff": [{"op": "add", "path": "/a/-", "value": 3}]})
    );
    let diff = sent[1]["diff"].as_array().unwrap();
    assert!(diff
        .iter()
        .all(|op| ["add", "remove", "replace"].contains(&op["op"].as_str().unwrap())));
    assert_eq!(**server.state(), json!({"a": [1, 2, 3], "c": 1}));
    assert!(server
        .update_state(now, ops(json!([{"op": "remove", "path": "/nope"}])))
        .is_err());
    assert_eq!(**server.state(), json!({"a": [1, 2, 3], "c": 1}));
}

#[test]
fn a_shared_change_goes_out_as_its_own_encoded_message() {
    let now = Instant::now();
    let mut shared = crate::SharedState::new(json!({"clock": 0, "big": "x".repeat(100)}));
    let mut servers: Vec<ServerEngine> = (0..3)
        .map(|_| server(AutoflushPolicy::Immediate, now))
        .collect();
    for server in &mut servers {
        server.set_state(now, shared.data().clone()).unwrap();
        drain_server(server);
    }
    let change = shared.set(json!({"clock": 1, "big": "x".repeat(100)}));
    let texts: Vec<Vec<String>> = servers
        .iter_mut()
        .map(|server| {
            server.set_state_shared(now, &change).unwrap();
            drain_server(server)
        })
        .collect();
    assert_eq!(
        messages(&texts[0]),
        vec![json!({"type": "state", "diff": [{"op": "replace", "path": "/clock", "value": 1}]})]
    );
    assert!(texts.iter().all(|frames| *frames == texts[0]));
    assert!(
        Arc::ptr_eq(servers[0].state(), change.data()),
        "no copy of the state"
    );
}

#[test]
fn requests_echo_refuse_or_reach_the_application() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server
        .handle_text(r#"0{"type":"request","id":3,"name":"","data":{"x":1}}"#)
        .unwrap();
    server
        .handle_text(r#"0{"type":"request","id":"abc","name":"hi"}"#)
        .unwrap();
    server
        .handle_text(r#"0{"type":"request","id":7,"name":"hi","data":null}"#)
        .unwrap();
    assert_eq!(
        messages(&drain_server(&mut server)),
        [
            json!({"type": "response", "id": 3, "success": true, "data": {"x": 1}}),
            json!({"type": "response", "id": "abc", "success": false, "data": "'data'"}),
        ]
    );
    let Some(ServerEvent::Request(request)) = server.poll_event() else {
        panic!("a request")
    };
    assert_eq!(
        (request.id.clone(), request.name.clone()),
        (json!(7), json!("hi"))
    );
    server.respond(&request.id, Err(json!("my error"))).unwrap();
    assert_eq!(
        messages(&drain_server(&mut server)),
        [json!({"type": "response", "id": 7, "success": false, "data": "my error"})]
    );
}

#[test]
fn a_notification_encoded_once_goes_out_as_notify_would() {
    let now = Instant::now();
    let data = json!({"text": "x".repeat(100)});
    let encoded = message::EncodedNotify::new("note", &data);
    for (config, shares_text) in [(ServerConfig::v0_6(), true), (ServerConfig::v0_7(), false)] {
        let mut plain = ServerEngine::new(config.clone(), Value::Null, now);
        plain.notify("note", &data).unwrap();
        let (mut first, mut second) = (
            ServerEngine::new(config.clone(), Value::Null, now),
            ServerEngine::new(config, Value::Null, now),
        );
        first.notify_encoded(&encoded).unwrap();
        second.notify_encoded(&encoded).unwrap();
        let (one, two) = (
            first.poll_transmit().unwrap(),
            second.poll_transmit().unwrap(),
        );
        assert_eq!(
            one.text.as_str(),
            plain.poll_transmit().unwrap().text.as_str()
        );
        // 0.6 frames are the message itself, queued without a copy; a 0.7
        // frame adds its package header.
        assert_eq!(
            one.text.as_str().as_ptr() == two.text.as_str().as_ptr(),
            shares_text
        );
    }
}

#[test]
fn a_ping_is_answered_ahead_of_queued_segments() {
    let now = Instant::now();
    let mut server = ServerEngine::new(
        ServerConfig {
            framing: Framing::Segmented {
                max_segment_size: 8,
            },
            ..ServerConfig::v0_7()
        },
        Value::Null,
        now,
    );
    server.notify("note", &json!("x".repeat(40))).unwrap();
    let first = server.poll_transmit().unwrap();
    assert!(first.text.as_str().starts_with('1'));
    server.handle_text("2hello-ping").unwrap();
    server.handle_text("2second").unwrap();
    let next = server.poll_transmit().unwrap();
    assert_eq!(
        (next.seq, next.text.as_str()),
        (0, "3second"),
        "one pong, the newest"
    );
    assert!(server
        .poll_transmit()
        .unwrap()
        .text
        .as_str()
        .starts_with('1'));
}

#[test]
fn bad_input_closes_with_a_protocol_error() {
    type Expected = fn(&ProtocolError) -> bool;
    let cases: [(&str, Expected); 6] = [
        ("", |err| matches!(err, ProtocolError::EmptyPackage)),
        ("9abc", |err| {
            matches!(err, ProtocolError::UnknownPackageHeader('9'))
        }),
        ("{}", |err| {
            matches!(err, ProtocolError::UnknownPackageHeader('{'))
        }),
        ("0{", |err| matches!(err, ProtocolError::InvalidJson(_))),
        (r#"0{"type":"notify","name":"n","data":1}"#, |err| {
            matches!(err, ProtocolError::UnexpectedMessageType(_))
        }),
        (r#"0{"type":"request","name":"n","data":1}"#, |err| {
            matches!(err, ProtocolError::InvalidMessage(_))
        }),
    ];
    for (frame, expected) in cases {
        let now = Instant::now();
        let mut server = server(AutoflushPolicy::Immediate, now);
        server.set_state(now, json!(1)).unwrap();
        let err = server.handle_text(frame).unwrap_err();
        assert!(expected(&err), "{frame:?}: {err:?}");
        assert!(
            drain_server(&mut server).is_empty(),
            "queued output is dropped"
        );
        assert!(matches!(
            server.poll_event(),
            Some(ServerEvent::Closed(CloseReason::Protocol(_)))
        ));
        assert!(server.set_state(now, json!(2)).is_err());
    }
    let mut client = ClientEngine::new(ClientConfig::v0_7());
    let err = client
        .handle_text(r#"0{"type":"request","id":1,"name":"x","data":1}"#)
        .unwrap_err();
    assert!(matches!(err, ProtocolError::UnexpectedMessageType(_)));
}

#[test]
fn a_segment_flood_past_the_limit_closes() {
    let mut server = ServerEngine::new(
        ServerConfig {
            max_message_size: 1000,
            ..ServerConfig::v0_7()
        },
        Value::Null,
        Instant::now(),
    );
    let segment = format!("1{}", "x".repeat(100));
    for _ in 0..10 {
        server.handle_text(&segment).unwrap();
    }
    assert_eq!(server.buffered_input(), 1000);
    let err = server.handle_text(&segment).unwrap_err();
    assert_eq!(err.close_code(), 1009);
}

#[test]
fn client_requests_count_from_one_and_end_by_answer_timeout_or_close() {
    let start = Instant::now();
    let mut client = ClientEngine::new(ClientConfig::v0_7());
    let (first, _) = client.request(start, "a", &json!(1), None).unwrap();
    let (second, _) = client
        .request(start, "b", &json!(2), Some(Duration::from_secs(1)))
        .unwrap();
    let (third, _) = client.request(start, "c", &json!(3), None).unwrap();
    assert_eq!((first, second, third), (1, 2, 3));
    assert_eq!(
        messages(&drain_client(&mut client))[0],
        json!({"type": "request", "id": 1, "name": "a", "data": 1})
    );
    client
        .handle_text(r#"0{"type":"response","id":99,"success":true,"data":0}"#)
        .unwrap();
    assert_eq!(client.poll_event(), None, "an unknown id is ignored");
    client
        .handle_text(r#"0{"type":"response","id":1,"success":1,"data":"ok"}"#)
        .unwrap();
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Response {
            id: 1,
            result: Ok(json!("ok"))
        })
    );
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(1)));
    client.handle_timeout(start + Duration::from_secs(1));
    assert_eq!(client.poll_event(), Some(ClientEvent::TimedOut { id: 2 }));
    client
        .handle_text(r#"0{"type":"response","id":2,"success":true,"data":"late"}"#)
        .unwrap();
    assert_eq!(client.poll_event(), None, "a late answer is ignored");
    client.handle_transport_closed(CloseReason::Remote);
    assert_eq!(client.poll_event(), Some(ClientEvent::Failed { id: 3 }));
    assert_eq!(
        client.poll_event(),
        Some(ClientEvent::Closed(CloseReason::Remote))
    );
}

#[test]
fn a_failing_patch_closes_the_client_and_keeps_the_state() {
    let mut client = ClientEngine::new(ClientConfig::v0_6());
    client
        .handle_text(r#"{"type":"state","diff":[{"op":"replace","path":"","value":{"a":1}}]}"#)
        .unwrap();
    let err = client
        .handle_text(r#"{"type":"state","diff":[{"op":"add","path":"/b","value":1},{"op":"remove","path":"/nope"}]}"#)
        .unwrap_err();
    assert!(matches!(err, ProtocolError::PatchFailed(_)));
    assert_eq!(**client.state(), json!({"a": 1}), "whole or not at all");
}

/// Nesting built by patch ops (three small ops a level, so the parser's
/// nesting limit never sees it) is refused past `MAX_DEPTH`, in one
/// message or a level per message, as the 0.5 engine refuses it: a deeper
/// state could not be cloned, compared or dropped without deep recursion.
#[test]
fn a_state_nested_past_the_limit_by_patch_ops_is_refused() {
    // One whole 0.7 message: the `0` header, then its JSON.
    let state_message = |ops: &[Value]| format!("0{}", json!({"type": "state", "diff": ops}));
    let level = [
        json!({"op": "add", "path": "/y", "value": {}}),
        json!({"op": "move", "from": "/x", "path": "/y/x"}),
        json!({"op": "move", "from": "/y", "path": "/x"}),
    ];
    let start = || {
        let mut client = ClientEngine::new(ClientConfig::v0_7());
        let root = json!({"op": "replace", "path": "", "value": {"x": 0}});
        client.handle_text(&state_message(&[root])).unwrap();
        client
    };
    let too_deep = |err: &ProtocolError| matches!(err, ProtocolError::PatchFailed(text) if text.contains("deeper"));

    let mut client = start();
    let levels: Vec<Value> = level.iter().cycle().take(3 * 200).cloned().collect();
    let err = client.handle_text(&state_message(&levels)).unwrap_err();
    assert!(too_deep(&err), "{err:?}");
    assert_eq!(**client.state(), json!({"x": 0}), "whole or not at all");

    let mut client = start();
    let mut accepted = 0;
    let err = loop {
        match client.handle_text(&state_message(&level)) {
            Ok(()) => accepted += 1,
            Err(err) => break err,
        }
        assert!(
            accepted <= 200,
            "a state {accepted} levels deeper was accepted"
        );
    };
    assert!(too_deep(&err), "{err:?}");
    // `{"x": 0}` is one level deep, and each message adds one.
    assert_eq!(accepted, crate::MAX_DEPTH - 1);
    let mut deepest = json!(0);
    for _ in 0..crate::MAX_DEPTH {
        deepest = json!({ "x": deepest });
    }
    assert_eq!(**client.state(), deepest);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        "[a-c😀é]{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-d/~]{1,2}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arb_policy() -> impl Strategy<Value = AutoflushPolicy> {
    prop_oneof![
        Just(AutoflushPolicy::Immediate),
        Just(AutoflushPolicy::Delayed(Duration::from_millis(200))),
        Just(AutoflushPolicy::Manual),
    ]
}

proptest! {
    /// Whatever the states, the policy and the segment size, the client
    /// ends with the server's state once it is flushed, and every diff is
    /// made of add, remove and replace only.
    #[test]
    fn the_client_converges_on_the_server_state(
        states in prop::collection::vec(arb_json(), 1..8),
        policy in arb_policy(),
        max_segment_size in 0usize..64,
        whole in any::<bool>(),
    ) {
        let start = Instant::now();
        let framing = if whole { Framing::Whole } else { Framing::Segmented { max_segment_size } };
        let mut server = ServerEngine::new(
            ServerConfig { framing, ..ServerConfig::v0_7() }.autoflush(policy),
            Value::Null,
            start,
        );
        let mut client = ClientEngine::new(ClientConfig { framing, ..ClientConfig::v0_7() });
        let mut frames = Vec::new();
        for (step, state) in states.iter().enumerate() {
            let now = start + Duration::from_millis(70 * step as u64);
            server.handle_timeout(now);
            server.set_state(now, state.clone()).unwrap();
            frames.extend(std::iter::from_fn(|| server.poll_transmit()));
        }
        server.flush().unwrap();
        frames.extend(std::iter::from_fn(|| server.poll_transmit()));
        for frame in &frames {
            if !whole {
                prop_assert!(frame.text.len() - 1 <= max_segment_size.max(4));
            }
            client.handle_text(frame.text.as_str()).unwrap();
        }
        let texts: Vec<String> = frames.into_iter().map(|frame| String::from(frame.text)).collect();
        let sent = if whole {
            texts.iter().map(|text| serde_json::from_str(text).unwrap()).collect()
        } else {
            messages(&texts)
        };
        for message in sent {
            for op in message["diff"].as_array().unwrap() {
                prop_assert!(["add", "remove", "replace"].contains(&op["op"].as_str().unwrap()));
            }
        }
        prop_assert_eq!(&**client.state(), states.last().unwrap());
    }

    /// Shared changes (encoded once for every connection), mixed with a
    /// connection's own sets and updates, take its client to the same
    /// state as plain sets, at every policy; a connection holding the
    /// previous version sends the very bytes the change encoded.
    #[test]
    fn shared_changes_converge_like_plain_sets(
        steps in prop::collection::vec((arb_json(), 0u8..4), 1..10),
        policy in arb_policy(),
    ) {
        let start = Instant::now();
        let mut shared = crate::SharedState::new(Value::Null);
        let server = ServerEngine::new(ServerConfig::v0_7().autoflush(policy), Value::Null, start);
        let mut pair = Pair::with_engines(start, server, ClientEngine::new(ClientConfig::v0_7()));
        for (step, (state, how)) in steps.iter().enumerate() {
            let now = start + Duration::from_millis(70 * step as u64);
            let server = &mut pair.a.engine;
            server.handle_timeout(now);
            match how {
                // The connection's own change, beside the shared ones.
                0 => server.set_state(now, state.clone()).unwrap(),
                1 => {
                    let ops = vec![PatchOperation::Replace(json_patch::ReplaceOperation {
                        path: json_patch::jsonptr::PointerBuf::new(),
                        value: state.clone(),
                    })];
                    server.update_state(now, ops).unwrap();
                }
                _ => {
                    let change = shared.set(state.clone());
                    server.set_state_shared(now, &change).unwrap();
                }
            }
            pair.drive();
        }
        pair.a.engine.flush().unwrap();
        pair.drive();
        prop_assert!(pair.b.engine.close_reason().is_none(), "every frame was valid");
        prop_assert_eq!(&**pair.b.engine.state(), &**pair.a.engine.state());
        prop_assert_eq!(&**pair.b.engine.state(), &steps.last().unwrap().0);
    }

    /// Requests answered in any order: each id gets exactly its own
    /// answer, once.
    #[test]
    fn responses_pair_with_their_requests(
        order in Just((0..12u64).collect::<Vec<_>>()).prop_shuffle(),
        max_segment_size in 4usize..32,
    ) {
        let now = Instant::now();
        let framing = Framing::Segmented { max_segment_size };
        let server = ServerEngine::new(ServerConfig { framing, ..ServerConfig::v0_7() }, Value::Null, now);
        let client = ClientEngine::new(ClientConfig { framing, ..ClientConfig::v0_7() });
        let mut pair = Pair::with_engines(now, server, client);
        let mut sent = Vec::new();
        for n in 0..12u64 {
            let (id, _) = pair.b.engine.request(now, "double", &json!(n), None).unwrap();
            sent.push((id, n));
        }
        pair.drive();
        let requests: Vec<_> = pair.a.events.drain(..).map_while(|event| match event {
            ServerEvent::Request(request) => Some(request),
            _ => None,
        }).collect();
        prop_assert_eq!(requests.len(), 12);
        for index in order {
            let request = &requests[index as usize];
            let n = request.data.as_ref().unwrap().as_u64().unwrap();
            pair.a.engine.respond(&request.id, Ok(json!(n * 2))).unwrap();
        }
        pair.drive();
        let mut answered = std::collections::BTreeMap::new();
        for event in pair.b.events.drain(..) {
            if let ClientEvent::Response { id, result } = event {
                prop_assert!(answered.insert(id, result).is_none(), "answered once");
            }
        }
        for (id, n) in sent {
            prop_assert_eq!(answered.get(&id), Some(&Ok(json!(n * 2))));
        }
        prop_assert_eq!(pair.b.engine.pending_requests(), 0);
    }
}

/// On the pair's virtual clock, a request's timeout and the server's
/// autoflush window each fire at their instant, and a close reaches the
/// other side as the end of its transport.
#[test]
fn timeouts_and_the_close_run_on_the_virtual_clock() {
    let start = Instant::now();
    let delay = Duration::from_millis(200);
    let server = server(AutoflushPolicy::Delayed(delay), start);
    let mut pair = Pair::with_engines(start, server, ClientEngine::new(ClientConfig::v0_7()));
    let timeout = Some(Duration::from_secs(1));
    let (id, _) = pair
        .b
        .engine
        .request(start, "slow", &json!(1), timeout)
        .unwrap();
    pair.a.engine.set_state(start, json!({"n": 1})).unwrap();
    pair.drive();
    assert!(matches!(pair.a.events[..], [ServerEvent::Request(_)]));
    assert!(pair.b.events.is_empty(), "the state waits for its window");
    assert!(pair.step());
    assert_eq!(pair.now, start + delay);
    assert_eq!(pair.b.events, [ClientEvent::StateChanged]);
    assert_eq!(**pair.b.engine.state(), json!({"n": 1}));
    assert!(pair.step());
    assert_eq!(pair.now, start + Duration::from_secs(1));
    assert_eq!(pair.b.events[1..], [ClientEvent::TimedOut { id }]);
    assert!(!pair.step(), "nothing is left to fire");
    Driven::close(&mut pair.a.engine);
    pair.drive();
    assert_eq!(
        pair.b.events[2..],
        [ClientEvent::Closed(CloseReason::Remote)]
    );
}

#[test]
fn a_state_diffed_outside_sends_the_given_ops() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server.set_state(now, json!({"a": 1, "b": 2})).unwrap();
    drain_server(&mut server);
    let base = server.state().clone();
    // Not the minimal diff, so the test sees whose ops went out.
    let given = ops(json!([
        {"op": "replace", "path": "/a", "value": 1},
        {"op": "replace", "path": "/b", "value": 3},
    ]));
    server
        .set_state_diffed(now, &base, json!({"a": 1, "b": 3}), given)
        .unwrap();
    assert_eq!(
        messages(&drain_server(&mut server)),
        [json!({"type": "state", "diff": [
            {"op": "replace", "path": "/a", "value": 1},
            {"op": "replace", "path": "/b", "value": 3},
        ]})]
    );
    assert_eq!(**server.state(), json!({"a": 1, "b": 3}));
}

#[test]
fn a_state_diffed_against_a_stale_base_is_diffed_again() {
    let now = Instant::now();
    let mut server = server(AutoflushPolicy::Immediate, now);
    server.set_state(now, json!({"a": 1})).unwrap();
    let base = server.state().clone();
    server.set_state(now, json!({"a": 2})).unwrap();
    drain_server(&mut server);
    let stale_ops = crate::diff(&base, &json!({"a": 3}));
    server
        .set_state_diffed(now, &base, json!({"a": 3}), stale_ops)
        .unwrap();
    assert_eq!(
        messages(&drain_server(&mut server)),
        [json!({"type": "state", "diff": [{"op": "replace", "path": "/a", "value": 3}]})]
    );
}

/// Flushes both servers, and what their clients hold after every frame
/// each sent (`frames`, with the flushed ones added).
fn flushed_views(
    plain: &mut ServerEngine,
    plain_frames: &mut Vec<String>,
    diffed: &mut ServerEngine,
    diffed_frames: &mut Vec<String>,
) -> (Value, Value) {
    plain.flush().unwrap();
    diffed.flush().unwrap();
    plain_frames.extend(drain_server(plain));
    diffed_frames.extend(drain_server(diffed));
    let view = |frames: &[String]| {
        let mut view = Value::Null;
        for message in messages(frames) {
            let diff: Vec<PatchOperation> =
                serde_json::from_value(message["diff"].clone()).unwrap();
            crate::apply(&mut view, &diff).unwrap();
        }
        view
    };
    (view(plain_frames), view(diffed_frames))
}

proptest! {
    /// With a fresh or a stale base (another change came between), the
    /// client of `set_state_diffed` ends where that of `set_state` does, at
    /// every policy; with immediate autoflush the frames are the same.
    #[test]
    fn diffed_outside_sends_what_set_state_sends(
        states in prop::collection::vec(arb_json(), 1..8),
        stale in prop::collection::vec(any::<bool>(), 8),
        policy in arb_policy(),
    ) {
        let start = Instant::now();
        let mut plain = server(policy, start);
        let mut diffed = server(policy, start);
        let (mut plain_frames, mut diffed_frames) = (Vec::new(), Vec::new());
        for (step, state) in states.into_iter().enumerate() {
            let now = start + Duration::from_millis(150 * step as u64);
            plain.handle_timeout(now);
            diffed.handle_timeout(now);
            let state = Arc::new(state);
            plain.set_state(now, state.clone()).unwrap();
            let base = if stale[step] {
                Arc::new(json!({"not": "the state", "step": step}))
            } else {
                diffed.state().clone()
            };
            let ops = crate::diff(&base, &state);
            diffed.set_state_diffed(now, &base, state, ops).unwrap();
            plain_frames.extend(drain_server(&mut plain));
            diffed_frames.extend(drain_server(&mut diffed));
        }
        let (plain_view, diffed_view) =
            flushed_views(&mut plain, &mut plain_frames, &mut diffed, &mut diffed_frames);
        prop_assert_eq!(&diffed_view, &**diffed.state());
        prop_assert_eq!(diffed_view, plain_view);
        if policy == AutoflushPolicy::Immediate {
            prop_assert_eq!(diffed_frames, plain_frames);
        }
    }
}

proptest! {
    /// With each due sync diffed by the caller (`due_diff`, then
    /// `handle_timeout_diffed`), and states set while it diffs, the client
    /// ends where that of plain `handle_timeout` does.
    #[test]
    fn diffed_at_the_deadline_the_client_ends_where_it_would(
        states in prop::collection::vec(crate::tests::properties::arb_small_object(), 1..12),
        meanwhile in prop::collection::vec(any::<bool>(), 1..10),
    ) {
        let start = Instant::now();
        let policy = AutoflushPolicy::Delayed(Duration::from_millis(200));
        let mut plain = server(policy, start);
        let mut diffed = server(policy, start);
        let (mut plain_frames, mut diffed_frames) = (Vec::new(), Vec::new());
        for (step, state) in states.into_iter().enumerate() {
            let now = start + Duration::from_millis(90 * step as u64);
            let state = Arc::new(state);
            plain.handle_timeout(now);
            plain.set_state(now, state.clone()).unwrap();
            match diffed.due_diff(now) {
                Some((base, current)) => {
                    let ops = crate::diff(&base, &current);
                    if meanwhile[step % meanwhile.len()] {
                        diffed.set_state(now, state).unwrap();
                        diffed.handle_timeout_diffed(now, &base, &current, ops);
                    } else {
                        diffed.handle_timeout_diffed(now, &base, &current, ops);
                        diffed.set_state(now, state).unwrap();
                    }
                }
                None => {
                    diffed.handle_timeout(now);
                    diffed.set_state(now, state).unwrap();
                }
            }
            plain_frames.extend(drain_server(&mut plain));
            diffed_frames.extend(drain_server(&mut diffed));
        }
        let (plain_view, diffed_view) =
            flushed_views(&mut plain, &mut plain_frames, &mut diffed, &mut diffed_frames);
        prop_assert_eq!(&diffed_view, &**diffed.state());
        prop_assert_eq!(diffed_view, plain_view);
    }
}

#[test]
fn a_state_diffed_at_the_deadline_sends_the_given_ops() {
    let start = Instant::now();
    let delay = Duration::from_millis(200);
    let mut engine = server(AutoflushPolicy::Delayed(delay), start);
    engine.set_state(start, json!({"a": 1})).unwrap();
    engine.handle_timeout(start + delay);
    drain_server(&mut engine);
    engine.set_state(start + delay, json!({"a": 2})).unwrap();
    let due = start + delay * 2;
    assert!(engine.due_diff(due - Duration::from_millis(1)).is_none());
    let (base, state) = engine.due_diff(due).expect("a diff is due");
    // Not what diff() gives (a replace of /a): the engine must send these.
    let given = ops(json!([
        {"op": "remove", "path": "/a"},
        {"op": "add", "path": "/a", "value": 2},
    ]));
    engine.handle_timeout_diffed(due, &base, &state, given);
    let frames = drain_server(&mut engine);
    let sent = messages(&frames);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["diff"][0]["op"], "remove");
    assert!(engine.poll_timeout().is_none());
    assert!(!engine.has_unsent_changes());
}
