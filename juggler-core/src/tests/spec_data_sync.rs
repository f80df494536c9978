//! SPEC §2: data synchronisation and the three autoflush policies.

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::{Engine, Event, FlushTicket, FrameKind, PatchOperation, UpdateError};

fn ops(value: Value) -> Vec<PatchOperation> {
    serde_json::from_value(value).unwrap()
}

#[test]
fn all_data_starts_null() {
    let engine = Engine::new(Config::default());
    assert_eq!(**engine.local_data(), Value::Null);
    assert_eq!(**engine.remote_data(), Value::Null);
    assert_eq!(engine.config().autoflush, AutoflushPolicy::Delayed(DELAY));
}

#[test]
fn local_data_getter_returns_the_new_value_at_once() {
    for policy in [
        AutoflushPolicy::Immediate,
        AutoflushPolicy::Delayed(DELAY),
        AutoflushPolicy::Manual,
    ] {
        let mut engine = Engine::new(Config::with_autoflush(policy));
        engine
            .set_local_data(std::time::Instant::now(), json!({"v": 1}))
            .unwrap();
        assert_eq!(**engine.local_data(), json!({"v": 1}), "{policy:?}");
    }
}

#[test]
fn immediate_sends_every_transient_value_in_call_order() {
    let mut pair = immediate_pair();
    for value in [json!(123), json!("abc"), json!("xyz")] {
        pair.a.engine.set_local_data(pair.now, value).unwrap();
    }
    assert_eq!(pair.a.engine.queued_transmits(), 3);
    pair.run();
    assert_eq!(pair.b.changes(), 3);
    assert_eq!(**pair.b.engine.remote_data(), json!("xyz"));
}

#[test]
fn delayed_sends_one_frame_with_the_latest_value_at_the_deadline() {
    let mut pair = policy_pair(AutoflushPolicy::Delayed(DELAY), AutoflushPolicy::Immediate);
    let start = pair.now;
    pair.a.engine.set_local_data(start, json!(123)).unwrap();
    assert_eq!(pair.a.engine.poll_timeout(), Some(start + DELAY));
    pair.a
        .engine
        .set_local_data(start + DELAY / 2, json!("abc"))
        .unwrap();
    pair.a
        .engine
        .set_local_data(start + DELAY / 2, json!("xyz"))
        .unwrap();
    // Later calls do not move the deadline.
    assert_eq!(pair.a.engine.poll_timeout(), Some(start + DELAY));
    pair.drive();
    assert_eq!(pair.b.changes(), 0, "nothing before the deadline");
    // A timeout before the deadline does nothing.
    pair.a.engine.handle_timeout(start + DELAY / 2);
    pair.drive();
    assert_eq!(pair.b.changes(), 0);
    assert!(pair.step());
    assert_eq!(pair.now, start + DELAY);
    assert_eq!(pair.b.changes(), 1);
    assert_eq!(**pair.b.engine.remote_data(), json!("xyz"));
    assert_eq!(pair.a.engine.poll_timeout(), None);
}

#[test]
fn delayed_opens_a_new_deadline_after_a_sync() {
    let mut pair = policy_pair(AutoflushPolicy::Delayed(DELAY), AutoflushPolicy::Immediate);
    pair.a.engine.set_local_data(pair.now, json!(1)).unwrap();
    pair.run();
    let later = pair.now + DELAY * 3;
    pair.a.engine.set_local_data(later, json!(2)).unwrap();
    assert_eq!(pair.a.engine.poll_timeout(), Some(later + DELAY));
    pair.run();
    assert_eq!(pair.b.changes(), 2);
}

#[test]
fn manual_sends_nothing_until_flush() {
    let mut pair = policy_pair(AutoflushPolicy::Manual, AutoflushPolicy::Manual);
    for n in 0..5 {
        pair.a.engine.set_local_data(pair.now, json!(n)).unwrap();
    }
    assert_eq!(pair.a.engine.poll_timeout(), None);
    pair.run();
    assert_eq!(pair.b.changes(), 0);
    assert_eq!(**pair.b.engine.remote_data(), Value::Null);
    let ticket = pair.a.engine.flush_local_data().unwrap();
    pair.run();
    assert_eq!(pair.b.changes(), 1);
    assert_eq!(**pair.b.engine.remote_data(), json!(4));
    assert_eq!(ticket.seq(), pair.a.sent.last().unwrap().seq);
}

#[test]
fn flush_cancels_the_deadline_and_completes_with_its_frame() {
    let mut engine = Engine::new(Config::default());
    let now = std::time::Instant::now();
    engine.send_message(&json!("queued first")).unwrap();
    engine.set_local_data(now, json!(1)).unwrap();
    let ticket = engine.flush_local_data().unwrap();
    assert_eq!(engine.poll_timeout(), None);
    let first = engine.poll_transmit().unwrap();
    assert!(!ticket.is_complete(first.seq));
    let data = engine.poll_transmit().unwrap();
    assert_eq!(data.kind, FrameKind::Data);
    assert!(ticket.is_complete(data.seq));
}

#[test]
fn empty_diff_sends_no_frame_and_flush_completes_at_once() {
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    engine
        .set_local_data(std::time::Instant::now(), Value::Null)
        .unwrap();
    assert_eq!(engine.queued_transmits(), 0);
    let ticket = engine.flush_local_data().unwrap();
    assert_eq!(ticket, FlushTicket::default_for_tests());
    assert!(ticket.is_complete(0));
}

#[test]
fn synced_becomes_the_value_that_was_sent() {
    let mut pair = immediate_pair();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"a": 1, "b": [1, 2, 3]}))
        .unwrap();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"a": 1, "b": [1, 3]}))
        .unwrap();
    pair.run();
    // The second frame is the diff from the first value, not from null.
    let second: Value = serde_json::from_str(pair.a.sent[1].text.as_str()).unwrap();
    assert_eq!(
        second["payload"],
        json!([{"op": "replace", "path": "/b/1", "value": 3}, {"op": "remove", "path": "/b/2"}])
    );
    assert_eq!(**pair.b.engine.remote_data(), json!({"a": 1, "b": [1, 3]}));
}

#[test]
fn whole_value_replacement_uses_the_empty_path() {
    let mut pair = immediate_pair();
    pair.a.engine.set_local_data(pair.now, json!([1])).unwrap();
    pair.run();
    let frame: Value = serde_json::from_str(pair.a.sent[0].text.as_str()).unwrap();
    assert_eq!(
        frame,
        json!({"type": "DATA", "payload": [{"op": "replace", "path": "", "value": [1]}]})
    );
}

#[test]
fn json_equality_is_json_equality() {
    let mut pair = immediate_pair();
    pair.a
        .engine
        .set_local_data(pair.now, json!(false))
        .unwrap();
    pair.a.engine.set_local_data(pair.now, json!(0)).unwrap();
    pair.a.engine.set_local_data(pair.now, json!(0)).unwrap();
    pair.run();
    assert_eq!(pair.b.changes(), 2, "false -> 0 is a change, 0 -> 0 is not");
    assert_eq!(**pair.b.engine.remote_data(), json!(0));
}

#[test]
fn python_move_ops_and_jiff_test_ops_apply() {
    let mut engine = Engine::new(Config::default());
    engine
        .handle_text(r#"{"type":"DATA","payload":[{"op":"test","path":"","value":null},{"op":"replace","path":"","value":{"a":1}}]}"#)
        .unwrap();
    assert_eq!(**engine.remote_data(), json!({"a": 1}));
    engine
        .handle_text(
            r#"{"type": "DATA", "payload": [{"op": "replace", "path": "", "value": [1, 2, 3]}]}"#,
        )
        .unwrap();
    engine
        .handle_text(r#"{"type": "DATA", "payload": [{"op": "move", "from": "/2", "path": "/0"}]}"#)
        .unwrap();
    assert_eq!(**engine.remote_data(), json!([3, 1, 2]));
    engine.handle_text(r#"{"type":"DATA","payload":[{"op":"copy","from":"/0","path":"/-"},{"op":"add","path":"/0","value":0}]}"#).unwrap();
    assert_eq!(**engine.remote_data(), json!([0, 3, 1, 2, 3]));
}

#[test]
fn update_local_data_sends_the_ops_themselves() {
    let mut pair = immediate_pair();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"keep": [1, 2], "n": 0}))
        .unwrap();
    pair.run();
    let patch = ops(
        json!([{"op": "replace", "path": "/n", "value": 1}, {"op": "move", "from": "/keep/0", "path": "/keep/-"}]),
    );
    pair.a
        .engine
        .update_local_data(pair.now, patch.clone())
        .unwrap();
    pair.run();
    assert_eq!(
        **pair.a.engine.local_data(),
        json!({"keep": [2, 1], "n": 1})
    );
    assert_eq!(
        **pair.b.engine.remote_data(),
        json!({"keep": [2, 1], "n": 1})
    );
    let sent: Value = serde_json::from_str(pair.a.sent[1].text.as_str()).unwrap();
    assert_eq!(sent["payload"], serde_json::to_value(&patch).unwrap());
}

#[test]
fn updates_batch_under_delay_and_mix_with_set() {
    let mut pair = policy_pair(AutoflushPolicy::Delayed(DELAY), AutoflushPolicy::Immediate);
    pair.a.engine.set_local_data(pair.now, json!({})).unwrap();
    pair.run();
    pair.a
        .engine
        .update_local_data(
            pair.now,
            ops(json!([{"op": "add", "path": "/a", "value": 1}])),
        )
        .unwrap();
    pair.a
        .engine
        .update_local_data(
            pair.now,
            ops(json!([{"op": "add", "path": "/b", "value": 2}])),
        )
        .unwrap();
    pair.run();
    assert_eq!(pair.b.changes(), 2);
    assert_eq!(**pair.b.engine.remote_data(), json!({"a": 1, "b": 2}));
    // An update after a full set still syncs right (through the diff).
    pair.a
        .engine
        .set_local_data(pair.now, json!({"c": 3}))
        .unwrap();
    pair.a
        .engine
        .update_local_data(
            pair.now,
            ops(json!([{"op": "add", "path": "/d", "value": 4}])),
        )
        .unwrap();
    pair.run();
    assert_eq!(**pair.b.engine.remote_data(), json!({"c": 3, "d": 4}));
}

#[test]
fn failing_update_changes_nothing() {
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    let now = std::time::Instant::now();
    engine.set_local_data(now, json!({"a": 1})).unwrap();
    let _ = engine.poll_transmit();
    let result = engine.update_local_data(
        now,
        ops(json!([{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/missing"}])),
    );
    assert!(matches!(result, Err(UpdateError::Patch(_))));
    assert_eq!(**engine.local_data(), json!({"a": 1}));
    assert!(engine.poll_transmit().is_none());
}

#[test]
fn reading_data_shares_it_without_a_copy() {
    let mut engine = Engine::new(Config::default());
    let value = Arc::new(json!({"big": "state"}));
    engine
        .set_local_data(std::time::Instant::now(), value.clone())
        .unwrap();
    assert!(Arc::ptr_eq(engine.local_data(), &value));
    let first = engine.remote_data().clone();
    assert!(Arc::ptr_eq(&first, engine.remote_data()));
}

#[test]
fn remote_changes_are_notified_once_per_data_frame() {
    let mut pair = immediate_pair();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"a": 1, "b": 2, "c": 3}))
        .unwrap();
    pair.a
        .engine
        .set_local_data(pair.now, json!({"a": 2, "b": 3, "c": 4}))
        .unwrap();
    pair.run();
    assert_eq!(
        pair.b.events,
        [Event::RemoteDataChanged, Event::RemoteDataChanged]
    );
}

#[test]
fn autoflush_delay_maps_like_the_reference() {
    use std::time::Duration;
    assert_eq!(AutoflushPolicy::from_delay(None), AutoflushPolicy::Manual);
    assert_eq!(
        AutoflushPolicy::from_delay(Some(Duration::ZERO)),
        AutoflushPolicy::Immediate
    );
    assert_eq!(
        AutoflushPolicy::from_delay(Some(DELAY)),
        AutoflushPolicy::Delayed(DELAY)
    );
    for policy in [
        AutoflushPolicy::Manual,
        AutoflushPolicy::Immediate,
        AutoflushPolicy::Delayed(DELAY),
    ] {
        assert_eq!(AutoflushPolicy::from_delay(policy.delay()), policy);
    }
    let engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(
        Duration::ZERO,
    )));
    assert_eq!(engine.config().autoflush, AutoflushPolicy::Immediate);
}
