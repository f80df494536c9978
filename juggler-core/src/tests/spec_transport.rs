//! SPEC §1 (frame types and protocol errors), §3 (messages), §4 (closing).

use serde_json::{json, Value};

use super::*;
use crate::{CloseReason, Closed, Engine, Event, FrameKind, ProtocolError};

fn engine() -> Engine {
    Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate))
}

fn drain_events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

#[test]
fn data_frame_patches_remote_data_and_notifies_once() {
    let mut engine = engine();
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{"a":1,"b":2}},{"op":"remove","path":"/b"}]}"#)
        .unwrap();
    assert_eq!(**engine.remote_data(), json!({"a": 1}));
    assert_eq!(drain_events(&mut engine), [Event::RemoteDataChanged]);
}

#[test]
fn message_frames_are_queued_in_arrival_order() {
    let mut engine = engine();
    for n in 0..3 {
        engine
            .handle_text(&format!(r#"{{"type":"MESSAGE","payload":{n}}}"#))
            .unwrap();
    }
    assert_eq!(
        drain_events(&mut engine),
        [0, 1, 2].map(|n| Event::Message(json!(n)))
    );
}

#[test]
fn ping_is_answered_with_pong_at_once() {
    let mut engine = engine();
    engine
        .handle_text(r#"{"type":"PING","payload":"anything"}"#)
        .unwrap();
    let pong = engine.poll_transmit().expect("a PONG frame");
    assert_eq!(pong.kind, FrameKind::Pong);
    assert_eq!(pong.text.as_str(), r#"{"type":"PONG","payload":{}}"#);
    assert!(drain_events(&mut engine).is_empty());
}

#[test]
fn pong_does_nothing() {
    let mut engine = engine();
    engine
        .handle_text(r#"{"type":"PONG","payload":[1]}"#)
        .unwrap();
    assert!(engine.poll_transmit().is_none());
    assert!(drain_events(&mut engine).is_empty());
    assert!(!engine.is_closed());
}

#[test]
fn engine_never_sends_ping_unless_asked() {
    let mut pair = immediate_pair();
    pair.a.engine.set_local_data(pair.now, json!(1)).unwrap();
    pair.a.engine.send_message(&json!("m")).unwrap();
    pair.run();
    assert!(pair.a.sent.iter().all(|t| t.kind != FrameKind::Ping));
    pair.a.engine.send_ping().unwrap();
    pair.run();
    assert_eq!(pair.a.sent.last().unwrap().kind, FrameKind::Ping);
    assert_eq!(pair.b.sent.last().unwrap().kind, FrameKind::Pong);
}

#[test]
fn each_protocol_error_closes_with_its_typed_reason() {
    let cases: Vec<(&str, ProtocolError)> = vec![
        ("[1]", ProtocolError::NotAnObject),
        (
            r#"{"type":"NOPE","payload":1}"#,
            ProtocolError::UnknownType("NOPE".into()),
        ),
        (r#"{"type":"MESSAGE"}"#, ProtocolError::MissingPayload),
        (r#"{"payload":1}"#, ProtocolError::MissingType),
    ];
    for (text, expected) in cases {
        let mut engine = engine();
        assert_eq!(engine.handle_text(text), Err(expected.clone()));
        assert_eq!(
            engine.close_reason(),
            Some(&CloseReason::Protocol(expected.clone()))
        );
        assert_eq!(
            drain_events(&mut engine),
            [Event::Closed(CloseReason::Protocol(expected))]
        );
    }
}

#[test]
fn invalid_json_not_a_patch_and_failing_patch_close() {
    for text in [
        "{nope",
        r#"{"type":"DATA","payload":{"op":"add"}}"#,
        r#"{"type":"DATA","payload":[{"op":"remove","path":"/missing"}]}"#,
        r#"{"type":"DATA","payload":[{"op":"test","path":"","value":false}]}"#,
    ] {
        let mut engine = engine();
        assert!(engine.handle_text(text).is_err(), "{text}");
        assert!(engine.is_closed(), "{text}");
    }
}

#[test]
fn transport_violations_close_with_their_close_codes() {
    for (err, code) in [
        (ProtocolError::BinaryFrame, 1003),
        (ProtocolError::InvalidUtf8, 1007),
        (ProtocolError::FrameTooLarge { size: 10, limit: 5 }, 1009),
        (ProtocolError::NotAnObject, 1002),
    ] {
        let mut engine = engine();
        engine.handle_protocol_error(err.clone());
        let reason = engine.close_reason().unwrap().clone();
        assert_eq!(reason, CloseReason::Protocol(err));
        assert_eq!(reason.close_frame().0, code);
        assert!(reason.close_frame().1.len() <= 123);
    }
}

#[test]
fn failed_test_op_is_a_protocol_error_and_changes_nothing() {
    let mut engine = engine();
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":[1,2]}]}"#)
        .unwrap();
    let before = engine.remote_data().clone();
    let err = engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"add","path":"/-","value":3},{"op":"test","path":"/0","value":0}]}"#)
        .unwrap_err();
    assert!(matches!(err, ProtocolError::PatchFailed(_)));
    assert_eq!(engine.remote_data(), &before);
}

#[test]
fn too_many_operations_is_a_protocol_error() {
    let config = Config {
        max_patch_operations: 2,
        ..Config::default()
    };
    let mut engine = Engine::new(config);
    let ops = r#"[{"op":"add","path":"/a","value":1},{"op":"add","path":"/b","value":1},{"op":"add","path":"/c","value":1}]"#;
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{}}]}"#)
        .unwrap();
    let err = engine
        .handle_text(&format!(r#"{{"type":"DATA","payload":{ops}}}"#))
        .unwrap_err();
    assert_eq!(err, ProtocolError::TooManyOperations { count: 3, limit: 2 });
    assert_eq!(**engine.remote_data(), json!({}));
}

#[test]
fn messages_arrive_in_send_order_after_immediate_data() {
    let mut pair = immediate_pair();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"x": 1}))
        .unwrap();
    pair.a.engine.send_message(&json!("after")).unwrap();
    pair.run();
    assert_eq!(
        pair.b.events,
        [Event::RemoteDataChanged, Event::Message(json!("after"))]
    );
    let kinds: Vec<_> = pair.a.sent.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [FrameKind::Data, FrameKind::Message]);
}

#[test]
fn messages_are_never_batched() {
    let mut pair = policy_pair(AutoflushPolicy::Manual, AutoflushPolicy::Manual);
    let messages = [
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
        Value::Null,
    ];
    for message in &messages {
        pair.a.engine.send_message(message).unwrap();
    }
    pair.drive();
    assert_eq!(pair.a.sent.len(), messages.len());
    assert_eq!(pair.b.messages(), messages);
}

#[test]
fn after_close_commands_fail_and_data_keeps_its_last_value() {
    let mut pair = immediate_pair();
    pair.a.engine.set_local_data(pair.now, json!([1])).unwrap();
    pair.b.engine.set_local_data(pair.now, json!("b")).unwrap();
    pair.run();
    pair.b.engine.close();
    pair.run();
    assert_eq!(
        pair.a.events.last(),
        Some(&Event::Closed(CloseReason::Remote))
    );
    assert_eq!(
        pair.b.events.last(),
        Some(&Event::Closed(CloseReason::Local))
    );
    let a = &mut pair.a.engine;
    assert_eq!(a.set_local_data(pair.now, json!(2)), Err(Closed));
    assert_eq!(a.flush_local_data(), Err(Closed));
    assert_eq!(a.send_message(&json!(1)), Err(Closed));
    assert_eq!(a.send_ping(), Err(Closed));
    assert_eq!(**a.local_data(), json!([1]));
    assert_eq!(**a.remote_data(), json!("b"));
    // Frames after the close are ignored, not applied.
    assert_eq!(
        a.handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":9}]}"#),
        Ok(())
    );
    assert_eq!(**a.remote_data(), json!("b"));
}

#[test]
fn close_is_the_last_event_and_happens_once() {
    let mut engine = engine();
    engine.close();
    engine.close();
    engine.handle_transport_closed(CloseReason::Remote);
    engine.handle_protocol_error(ProtocolError::BinaryFrame);
    assert_eq!(
        drain_events(&mut engine),
        [Event::Closed(CloseReason::Local)]
    );
}

#[test]
fn clean_close_sends_pending_delayed_data_first() {
    let mut pair = policy_pair(AutoflushPolicy::Delayed(DELAY), AutoflushPolicy::Immediate);
    pair.a
        .engine
        .set_local_data(pair.now, json!({"last": "words"}))
        .unwrap();
    pair.a.engine.close();
    pair.drive();
    assert_eq!(**pair.b.engine.remote_data(), json!({"last": "words"}));
    assert_eq!(
        pair.b.events.last(),
        Some(&Event::Closed(CloseReason::Remote))
    );
}

#[test]
fn transport_close_drops_unwritten_frames() {
    let mut engine = engine();
    engine.send_message(&json!(1)).unwrap();
    engine.handle_transport_closed(CloseReason::Transport("reset".into()));
    assert!(engine.poll_transmit().is_none());
    assert_eq!(engine.queued_transmits(), 0);
}

#[test]
fn one_encoded_message_goes_to_many_engines_without_a_copy() {
    let message = crate::EncodedMessage::shared(&json!({"to": "everyone"}));
    let mut engines = [engine(), engine()];
    for engine in &mut engines {
        engine.send_encoded(message.clone()).unwrap();
    }
    for engine in &mut engines {
        let transmit = engine.poll_transmit().unwrap();
        assert_eq!(
            transmit.text.as_str(),
            r#"{"type":"MESSAGE","payload":{"to":"everyone"}}"#
        );
        assert!(
            transmit.text.into_owned_or_shared().is_err(),
            "the text is shared, not copied"
        );
    }
}

#[test]
fn patches_cannot_nest_remote_data_past_the_depth_limit() {
    let mut engine = engine();
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{"x":{}}}]}"#)
        .unwrap();
    // Each round nests /x one level deeper with three small ops.
    let round = r#"{"op":"add","path":"/y","value":{}},{"op":"move","from":"/x","path":"/y/x"},{"op":"move","from":"/y","path":"/x"}"#;
    let frame = format!(
        r#"{{"type":"DATA","payload":[{}]}}"#,
        vec![round; 3000].join(",")
    );
    let before = engine.remote_data().clone();
    let err = engine.handle_text(&frame).unwrap_err();
    assert!(
        matches!(&err, ProtocolError::PatchFailed(text) if text.contains("deeper")),
        "{err:?}"
    );
    assert_eq!(engine.remote_data(), &before);
    // Frame by frame it is refused too, once the limit is reached.
    let mut engine = self::engine();
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{"x":{}}}]}"#)
        .unwrap();
    let one_round = format!(r#"{{"type":"DATA","payload":[{round}]}}"#);
    let accepted = (0..1000)
        .take_while(|_| engine.handle_text(&one_round).is_ok())
        .count();
    assert!(
        (100..=crate::MAX_DEPTH).contains(&accepted),
        "{accepted} rounds accepted"
    );
    assert!(crate::depth::depth(engine.remote_data()) <= crate::MAX_DEPTH);
}

/// Every malformed text the socket-level hostile suite once sent one case
/// at a time, here without sockets: each closes the engine with its typed
/// error (and close code 1002), and leaves the remote data exactly as the
/// setup frame made it. The socket suite keeps one of each kind.
#[test]
fn every_hostile_text_closes_with_its_error() {
    type Expected = fn(&ProtocolError) -> bool;
    let invalid_json: Expected = |err| matches!(err, ProtocolError::InvalidJson(_));
    let not_an_object: Expected = |err| *err == ProtocolError::NotAnObject;
    let unknown_type: Expected = |err| matches!(err, ProtocolError::UnknownType(_));
    let missing_type: Expected = |err| *err == ProtocolError::MissingType;
    let missing_payload: Expected = |err| *err == ProtocolError::MissingPayload;
    let invalid_patch: Expected = |err| matches!(err, ProtocolError::InvalidPatch(_));
    let patch_failed: Expected = |err| matches!(err, ProtocolError::PatchFailed(_));

    const DEPTH: usize = 10_000;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    let unclosed = "[".repeat(DEPTH);
    let huge_type = json!({"type": "X".repeat(100_000), "payload": 1}).to_string();
    let data = |patch: Value| json!({"type": "DATA", "payload": patch}).to_string();

    let mut cases: Vec<(String, Expected)> = Vec::new();
    let mut add = |texts: &[&str], expected: Expected| {
        cases.extend(texts.iter().map(|text| (text.to_string(), expected)));
    };
    add(
        &[
            "",
            " ",
            "{",
            "not json",
            r#"{"type":"MESSAGE","payload":1"#,
            r#"{"type":"MESSAGE","payload":1} trailing"#,
            r#"{"type":"MESSAGE","payload":1,}"#,
            r#"{'type':'MESSAGE','payload':1}"#,
            r#"{"type":"MESSAGE","payload":01}"#,
            r#"{"type":"MESSAGE","payload":"\x"}"#,
            r#"{"type":"MESSAGE","payload":"\ud800"}"#,
            "{\"type\":\"MESSAGE\",\"payload\":\"\u{1}\"}",
            r#"{"type":"MESSAGE","payload":1} {"type":"MESSAGE","payload":2}"#,
            r#"/* comment */ {"type":"MESSAGE","payload":1}"#,
            r#"{"type":"MESSAGE","payload":NaN}"#,
            r#"{"type":"MESSAGE","payload":nan}"#,
            r#"{"type":"MESSAGE","payload":Infinity}"#,
            r#"{"type":"MESSAGE","payload":-Infinity}"#,
            r#"{"type":"MESSAGE","payload":[1,NaN]}"#,
            r#"{"type":"DATA","payload":[{"op":"add","path":"/a","value":NaN}]}"#,
            r#"{"type":"MESSAGE","payload":1e400}"#,
            r#"{"type":"MESSAGE","payload":-1e400}"#,
            &arrays,
            &format!(r#"{{"type":"MESSAGE","payload":{arrays}}}"#),
            &format!(r#"{{"type":"MESSAGE","payload":{objects}}}"#),
            &format!(
                r#"{{"type":"DATA","payload":[{{"op":"add","path":"/d","value":{objects}}}]}}"#
            ),
            &format!(r#"{{"type":{arrays},"payload":1}}"#),
            &format!(r#"{{"type":"MESSAGE","payload":{unclosed}"#),
        ],
        invalid_json,
    );
    add(
        &[
            "[]",
            r#"[{"type":"MESSAGE","payload":1}]"#,
            "1",
            "-0.5",
            r#""MESSAGE""#,
            "null",
            "true",
        ],
        not_an_object,
    );
    add(
        &[
            r#"{"type":"BOGUS","payload":1}"#,
            r#"{"type":"message","payload":1}"#,
            r#"{"type":"","payload":1}"#,
            r#"{"type":"DATA ","payload":[]}"#,
            r#"{"type":"RPC","payload":{}}"#,
            &huge_type,
        ],
        unknown_type,
    );
    add(
        &[
            "{}",
            r#"{"payload":1}"#,
            r#"{"type":null,"payload":1}"#,
            r#"{"type":1,"payload":1}"#,
            r#"{"type":["DATA"],"payload":[]}"#,
            r#"{"Type":"MESSAGE","payload":1}"#,
        ],
        missing_type,
    );
    add(
        &[
            r#"{"type":"MESSAGE"}"#,
            r#"{"type":"DATA"}"#,
            r#"{"type":"PING"}"#,
            r#"{"type":"MESSAGE","Payload":1}"#,
        ],
        missing_payload,
    );
    add(
        &[
            r#"{"type":"DATA","payload":[1]}"#,
            r#"{"type":"DATA","payload":[null]}"#,
            r#"{"type":"DATA","payload":[{"op":"bogus","path":""}]}"#,
            r#"{"type":"DATA","payload":[{"op":"add","path":"/a"}]}"#,
            r#"{"type":"DATA","payload":[{"path":"/a","value":1}]}"#,
            r#"{"type":"DATA","payload":[{"op":"remove"}]}"#,
            r#"{"type":"DATA","payload":[{"op":"move","path":"/a"}]}"#,
            r#"{"type":"DATA","payload":[{"op":"add","path":1,"value":1}]}"#,
            r#"{"type":"DATA","payload":{}}"#,
            r#"{"type":"DATA","payload":{"op":"add","path":"","value":1}}"#,
            r#"{"type":"DATA","payload":"[]"}"#,
            r#"{"type":"DATA","payload":null}"#,
            r#"{"type":"DATA","payload":1}"#,
            r#"{"type":"DATA","payload":true}"#,
        ],
        invalid_patch,
    );
    // Pointers that are not RFC 6901, even after valid ops.
    for patch in [
        json!([{"op": "add", "path": "a", "value": 1}]),
        json!([{"op": "add", "path": "a/b", "value": 1}]),
        json!([{"op": "add", "path": "/a~2", "value": 1}]),
        json!([{"op": "add", "path": "/a~", "value": 1}]),
        json!([{"op": "move", "from": "obj", "path": "/b"}]),
        json!([{"op": "add", "path": "/b", "value": 1}, {"op": "remove", "path": "x"}]),
    ] {
        cases.push((data(patch), invalid_patch));
    }
    // Ops that do not apply to the setup's data.
    for patch in [
        json!([{"op": "remove", "path": "/missing"}]),
        json!([{"op": "remove", "path": "/obj/missing"}]),
        json!([{"op": "replace", "path": "/missing", "value": 1}]),
        json!([{"op": "add", "path": "/missing/child", "value": 1}]),
        json!([{"op": "add", "path": "/a/child", "value": 1}]),
        json!([{"op": "add", "path": "/s/0", "value": 1}]),
        json!([{"op": "test", "path": "/a", "value": 2}]),
        json!([{"op": "test", "path": "/a", "value": "1"}]),
        json!([{"op": "test", "path": "/a", "value": 1.5}]),
        json!([{"op": "test", "path": "/obj", "value": {"k": "w"}}]),
        json!([{"op": "test", "path": "/missing", "value": null}]),
        json!([{"op": "move", "from": "/missing", "path": "/b"}]),
        json!([{"op": "move", "from": "/obj", "path": "/obj/inside"}]),
        json!([{"op": "copy", "from": "/missing", "path": "/b"}]),
        json!([{"op": "add", "path": "/arr/3", "value": 0}]),
        json!([{"op": "remove", "path": "/arr/2"}]),
        json!([{"op": "replace", "path": "/arr/5", "value": 0}]),
        json!([{"op": "remove", "path": "/arr/-"}]),
        json!([{"op": "add", "path": "/arr/-1", "value": 0}]),
        json!([{"op": "add", "path": "/arr/01", "value": 0}]),
        json!([{"op": "add", "path": "/arr/x", "value": 0}]),
        json!([{"op": "add", "path": "/arr/99999999999999999999999", "value": 0}]),
    ] {
        cases.push((data(patch), patch_failed));
    }

    let base = json!({"a": 1, "arr": [1, 2], "obj": {"k": "v"}, "s": "text"});
    for (text, expected) in cases {
        let mut engine = engine();
        engine
            .handle_text(&data(json!([{"op": "replace", "path": "", "value": base}])))
            .unwrap();
        let shown: String = text.chars().take(80).collect();
        let err = engine.handle_text(&text).unwrap_err();
        assert!(expected(&err), "{shown}: {err:?}");
        assert_eq!(err.close_code(), 1002, "{shown}");
        assert_eq!(
            engine.close_reason(),
            Some(&CloseReason::Protocol(err)),
            "{shown}"
        );
        assert_eq!(**engine.remote_data(), base, "{shown}");
    }
}
