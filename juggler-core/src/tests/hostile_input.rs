//! Arbitrary text never panics the engine and never corrupts remote data.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::properties::arb_json;
use crate::{CloseReason, Config, Engine, Event, Frame, PatchOperation};

/// Text close to valid frames, which reaches deeper than random bytes.
fn near_frame() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just(json!("DATA")),
        Just(json!("MESSAGE")),
        Just(json!("PING")),
        Just(json!("PONG")),
        Just(json!("data")),
        Just(json!(1)),
        Just(Value::Null),
    ];
    let op = (
        prop::sample::select(vec![
            "add", "remove", "replace", "move", "copy", "test", "nope",
        ]),
        "(/[a-c0-9~-]{0,2}){0,3}",
        "(/[a-c0-9-]{0,2}){0,2}",
        arb_json(),
    )
        .prop_map(
            |(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}),
        );
    let payload = prop_oneof![
        arb_json(),
        prop::collection::vec(op, 0..5).prop_map(Value::Array)
    ];
    (kind, payload, any::<bool>()).prop_map(|(kind, payload, with_payload)| {
        let mut frame = json!({"type": kind});
        if with_payload {
            frame["payload"] = payload;
        }
        frame.to_string()
    })
}

fn check_never_corrupts(texts: Vec<String>) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(Config::default());
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{"a":[1,2,{"b":null}],"c":"d"}}]}"#)
        .unwrap();
    for text in texts {
        let before = engine.remote_data().clone();
        let was_closed = engine.is_closed();
        let result = engine.handle_text(&text);
        if result.is_err() || was_closed {
            prop_assert_eq!(&before, engine.remote_data());
        }
        if let Err(err) = result {
            prop_assert_eq!(engine.close_reason(), Some(&CloseReason::Protocol(err)));
        }
    }
    let closes = std::iter::from_fn(|| engine.poll_event())
        .filter(|e| matches!(e, Event::Closed(_)))
        .count();
    prop_assert!(closes <= 1);
    Ok(())
}

/// Feeding frames decoded beforehand (`Frame::decode`, then `handle_frame`
/// or, for a text that does not decode, `handle_protocol_error`) leaves the
/// engine exactly where `handle_text` does.
fn check_decoded_frames_match_text(texts: Vec<String>) -> Result<(), TestCaseError> {
    let first = r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":{"a":[1,2,{"b":null}],"c":"d"}}]}"#;
    let mut by_text = Engine::new(Config::default());
    let mut by_frame = Engine::new(Config::default());
    for text in std::iter::once(first).chain(texts.iter().map(String::as_str)) {
        let _ = by_text.handle_text(text);
        match Frame::decode(text) {
            Ok(frame) => {
                let _ = by_frame.handle_frame(frame);
            }
            Err(err) => by_frame.handle_protocol_error(err),
        }
        prop_assert_eq!(by_text.remote_data(), by_frame.remote_data());
        prop_assert_eq!(by_text.close_reason(), by_frame.close_reason());
        prop_assert_eq!(by_text.queued_transmits(), by_frame.queued_transmits());
    }
    let events =
        |engine: &mut Engine| std::iter::from_fn(|| engine.poll_event()).collect::<Vec<_>>();
    prop_assert_eq!(events(&mut by_text), events(&mut by_frame));
    Ok(())
}

/// Frames that crashed or corrupted the engine while it applied patches
/// with `json_patch::patch`: a move to the root that then had to be undone
/// (a panic: `unreachable!` in its rollback), and a move whose `add` half
/// failed (the moved value was lost). Each is refused whole.
#[test]
fn failing_moves_neither_panic_nor_lose_data() {
    for (start, frame) in [
        (
            json!([null]),
            json!([{"op": "move", "from": "/0", "path": ""}, {"op": "test", "path": "/x", "value": 1}]),
        ),
        (
            json!({"a": [1, 2, {"b": null}], "c": "d"}),
            json!([{"op": "move", "from": "/a", "path": "//"}]),
        ),
    ] {
        let mut engine = Engine::new(Config::default());
        let first =
            json!({"type": "DATA", "payload": [{"op": "replace", "path": "", "value": start}]});
        engine.handle_text(&first.to_string()).unwrap();
        let text = json!({"type": "DATA", "payload": frame}).to_string();
        let err = engine.handle_text(&text).unwrap_err();
        assert!(
            matches!(err, crate::ProtocolError::PatchFailed(_)),
            "{err:?}"
        );
        assert_eq!(**engine.remote_data(), start);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn decoded_frames_act_as_their_text(texts in prop::collection::vec(near_frame(), 1..8)) {
        check_decoded_frames_match_text(texts)?;
    }

    #[test]
    fn arbitrary_text_never_panics(texts in prop::collection::vec(any::<String>(), 1..5)) {
        check_never_corrupts(texts)?;
    }

    #[test]
    fn near_frames_never_panic_or_half_apply(texts in prop::collection::vec(near_frame(), 1..8)) {
        check_never_corrupts(texts)?;
    }
}

/// A whole new document built in code (`handle_frame`, no parser to
/// limit it) deeper than `MAX_DEPTH` is refused and changes nothing; one
/// exactly `MAX_DEPTH` deep is taken, and later ops are bound by its depth.
#[test]
fn a_whole_document_deeper_than_the_limit_is_refused() {
    let nested = |levels: usize| {
        let mut value = json!(1);
        for _ in 0..levels {
            value = json!([value]);
        }
        value
    };
    let replace_root = |value: Value| {
        Frame::Data(vec![PatchOperation::Replace(
            json_patch::ReplaceOperation {
                path: Default::default(),
                value,
            },
        )])
    };

    let too_deep = |err: &crate::ProtocolError| matches!(err, crate::ProtocolError::PatchFailed(text) if text.contains("deeper"));

    let mut deep = Engine::new(Config::default());
    let err = deep
        .handle_frame(replace_root(nested(crate::MAX_DEPTH + 1)))
        .unwrap_err();
    assert!(too_deep(&err), "{err:?}");
    assert_eq!(**deep.remote_data(), Value::Null);

    let mut at_limit = Engine::new(Config::default());
    at_limit
        .handle_frame(replace_root(nested(crate::MAX_DEPTH)))
        .unwrap();
    // A copy of the whole into itself would be one level deeper.
    let copy = json!({"type": "DATA", "payload": [{"op": "copy", "from": "", "path": "/1"}]});
    let err = at_limit.handle_text(&copy.to_string()).unwrap_err();
    assert!(too_deep(&err), "{err:?}");
    assert_eq!(**at_limit.remote_data(), nested(crate::MAX_DEPTH));
}

/// Remote data grown past `max_remote_data_size`, by a whole new document
/// or by DATA frames adding a little at a time, is refused: the frame that
/// would pass the limit changes nothing and closes with 1009.
#[test]
fn remote_data_stays_within_its_size_limit() {
    const LIMIT: usize = 64 << 10;
    let engine = || {
        Engine::new(Config {
            max_remote_data_size: LIMIT,
            ..Config::default()
        })
    };
    let refused = |engine: &Engine| match engine.close_reason() {
        Some(CloseReason::Protocol(err @ crate::ProtocolError::RemoteDataTooLarge { .. })) => {
            err.close_code()
        }
        other => panic!("not refused for size: {other:?}"),
    };

    // One whole document over the limit.
    let mut whole = engine();
    let big = json!({"type": "DATA", "payload": [{"op": "replace", "path": "", "value": "x".repeat(LIMIT)}]});
    let _ = whole.handle_text(&big.to_string());
    assert_eq!(refused(&whole), 1009);
    assert_eq!(**whole.remote_data(), Value::Null);

    // Growth a kilobyte at a time, each frame well under any frame limit.
    let mut growing = engine();
    growing
        .handle_text(
            &json!({"type": "DATA", "payload": [{"op": "replace", "path": "", "value": {}}]})
                .to_string(),
        )
        .unwrap();
    let mut accepted = 0;
    for n in 0..1_000 {
        let add = json!({"type": "DATA", "payload": [{"op": "add", "path": format!("/k{n}"), "value": "y".repeat(1000)}]});
        if growing.handle_text(&add.to_string()).is_err() {
            break;
        }
        accepted += 1;
    }
    assert_eq!(refused(&growing), 1009);
    assert_eq!(growing.remote_data().as_object().unwrap().len(), accepted);
    assert!(crate::value_cost(growing.remote_data()) <= LIMIT);
    assert!(accepted > 40, "only {accepted} kilobytes were taken");

    // Adding and removing keeps it within the limit indefinitely.
    let mut churn = engine();
    churn
        .handle_text(
            &json!({"type": "DATA", "payload": [{"op": "replace", "path": "", "value": {}}]})
                .to_string(),
        )
        .unwrap();
    for _ in 0..1_000 {
        let ops = json!({"type": "DATA", "payload": [
            {"op": "add", "path": "/k", "value": "z".repeat(10_000)},
            {"op": "remove", "path": "/k"},
        ]});
        churn.handle_text(&ops.to_string()).unwrap();
    }
    assert!(!churn.is_closed());
}
