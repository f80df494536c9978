//! Arbitrary text never panics the engine and never corrupts remote data.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::properties::arb_json;
use crate::{CloseReason, Config, Engine, Event};

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_text_never_panics(texts in prop::collection::vec(any::<String>(), 1..5)) {
        check_never_corrupts(texts)?;
    }

    #[test]
    fn near_frames_never_panic_or_half_apply(texts in prop::collection::vec(near_frame(), 1..8)) {
        check_never_corrupts(texts)?;
    }
}
