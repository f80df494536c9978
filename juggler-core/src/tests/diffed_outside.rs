//! `set_local_data_diffed`, the path that lets a driver diff outside its
//! lock, sends what `set_local_data` would, and falls back when its base
//! is stale.

use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;
use serde_json::Value;

use super::properties::{arb_json, arb_small_object};
use crate::{diff, AutoflushPolicy, Config, Engine, Frame, PatchOperation};

/// What a peer holds after every frame the engine has sent so far.
fn peer_view(engine: &mut Engine, peer: &mut Value) {
    while let Some(transmit) = engine.poll_transmit() {
        if let Ok(Frame::Data(ops)) = Frame::decode(transmit.text.as_str()) {
            crate::apply(peer, &ops).expect("the engine's patches apply");
        }
    }
}

/// Flushes both engines, and their peers take the frames.
fn flush_both(
    plain: &mut Engine,
    plain_peer: &mut Value,
    diffed: &mut Engine,
    diffed_peer: &mut Value,
) {
    plain.flush_local_data().unwrap();
    diffed.flush_local_data().unwrap();
    peer_view(plain, plain_peer);
    peer_view(diffed, diffed_peer);
}

proptest! {
    #[test]
    fn diffed_outside_sends_what_set_local_data_sends(
        states in prop::collection::vec(arb_json(), 1..8),
        stale in prop::collection::vec(any::<bool>(), 8),
        delayed in any::<bool>(),
    ) {
        let start = Instant::now();
        let policy = if delayed {
            AutoflushPolicy::Delayed(std::time::Duration::from_millis(200))
        } else {
            AutoflushPolicy::Immediate
        };
        let mut plain = Engine::new(Config::with_autoflush(policy));
        let mut diffed = Engine::new(Config::with_autoflush(policy));
        let (mut plain_peer, mut diffed_peer) = (Value::Null, Value::Null);
        for (step, state) in states.into_iter().enumerate() {
            let now = start + std::time::Duration::from_millis(150 * step as u64);
            plain.handle_timeout(now);
            diffed.handle_timeout(now);
            let data = Arc::new(state);
            plain.set_local_data(now, data.clone()).unwrap();
            // A stale base: another change came between the read and the set.
            let base = if stale[step] {
                Arc::new(serde_json::json!({"not": "the local data", "step": step}))
            } else {
                diffed.local_data().clone()
            };
            let ops = diff(&base, &data);
            diffed.set_local_data_diffed(now, &base, data, ops).unwrap();
            peer_view(&mut plain, &mut plain_peer);
            peer_view(&mut diffed, &mut diffed_peer);
        }
        flush_both(&mut plain, &mut plain_peer, &mut diffed, &mut diffed_peer);
        prop_assert_eq!(&diffed_peer, &**diffed.local_data());
        prop_assert_eq!(diffed_peer, plain_peer);
    }
}

/// A delayed engine whose data changes at `steps`, each change a state of
/// `states`; at each flush deadline the driver side diffs what
/// `due_diff` names, while `meanwhile[step]` says whether the next change
/// comes between the diff and its hand-back, and `drained[step]` whether
/// the frames are written then (unwritten runs of DATA frames collapse).
fn drive_diffed_at_timeout(
    states: Vec<Value>,
    meanwhile: &[bool],
    drained: &[bool],
    max_queued_data_frames: usize,
) -> (Engine, Value, Engine, Value) {
    let start = Instant::now();
    let delay = std::time::Duration::from_millis(200);
    let config = || {
        let mut config = Config::with_autoflush(AutoflushPolicy::Delayed(delay));
        config.max_queued_data_frames = max_queued_data_frames;
        config
    };
    let (mut plain, mut diffed) = (Engine::new(config()), Engine::new(config()));
    let (mut plain_peer, mut diffed_peer) = (Value::Null, Value::Null);
    let states = states.into_iter().map(Arc::new);
    for (step, state) in states.enumerate() {
        let now = start + std::time::Duration::from_millis(90 * step as u64);
        plain.handle_timeout(now);
        plain.set_local_data(now, state.clone()).unwrap();
        match diffed.due_diff(now) {
            Some((base, local)) => {
                let ops = diff(&base, &local);
                // The application's next change, while the driver diffs.
                if meanwhile[step % meanwhile.len()] {
                    diffed.set_local_data(now, state).unwrap();
                    diffed.handle_timeout_diffed(now, &base, &local, ops);
                } else {
                    diffed.handle_timeout_diffed(now, &base, &local, ops);
                    diffed.set_local_data(now, state).unwrap();
                }
            }
            None => {
                diffed.handle_timeout(now);
                diffed.set_local_data(now, state).unwrap();
            }
        }
        if drained[step % drained.len()] {
            peer_view(&mut plain, &mut plain_peer);
            peer_view(&mut diffed, &mut diffed_peer);
        }
    }
    (plain, plain_peer, diffed, diffed_peer)
}

proptest! {
    #[test]
    fn diffed_at_the_deadline_the_peer_ends_where_it_would(
        states in prop::collection::vec(arb_small_object(), 1..12),
        meanwhile in prop::collection::vec(any::<bool>(), 1..10),
        drained in prop::collection::vec(any::<bool>(), 1..10),
        max_queued in 1usize..4,
    ) {
        let (mut plain, mut plain_peer, mut diffed, mut diffed_peer) =
            drive_diffed_at_timeout(states, &meanwhile, &drained, max_queued);
        flush_both(&mut plain, &mut plain_peer, &mut diffed, &mut diffed_peer);
        prop_assert_eq!(&diffed_peer, &**diffed.local_data());
        prop_assert_eq!(diffed_peer, plain_peer);
    }
}

/// A delayed engine whose peer was synced to `{"a": 1}` (what it holds is
/// returned) and whose data is now `{"a": 2}`, due at the returned time.
fn changed_within_the_delay() -> (Engine, Value, Instant) {
    let now = Instant::now();
    let delay = std::time::Duration::from_millis(200);
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(delay)));
    engine
        .set_local_data(now, serde_json::json!({"a": 1}))
        .unwrap();
    engine.handle_timeout(now + delay);
    let mut peer = Value::Null;
    peer_view(&mut engine, &mut peer);
    engine
        .set_local_data(now + delay, serde_json::json!({"a": 2}))
        .unwrap();
    (engine, peer, now + delay * 2)
}

/// `{"a": 1}` to `{"a": 2}` as a remove and an add, not the replace
/// `diff` gives: a test sees whose ops went out.
fn not_the_minimal_diff() -> Vec<PatchOperation> {
    serde_json::from_value(serde_json::json!([
        {"op": "remove", "path": "/a"},
        {"op": "add", "path": "/a", "value": 2},
    ]))
    .unwrap()
}

#[test]
fn a_change_diffed_at_the_deadline_sends_the_given_ops() {
    let (mut engine, _, due) = changed_within_the_delay();
    assert!(engine
        .due_diff(due - std::time::Duration::from_millis(1))
        .is_none());
    let (base, local) = engine.due_diff(due).expect("a diff is due");
    engine.handle_timeout_diffed(due, &base, &local, not_the_minimal_diff());
    let frame = engine.poll_transmit().expect("the sync");
    assert_eq!(
        frame.text.as_str(),
        r#"{"type":"DATA","payload":[{"op":"remove","path":"/a"},{"op":"add","path":"/a","value":2}]}"#
    );
    assert!(engine.poll_timeout().is_none());
    assert!(!engine.has_unsent_changes());
}

#[test]
fn a_change_during_the_diff_is_sent_by_the_next_diff() {
    let (mut engine, mut peer, due) = changed_within_the_delay();
    let (base, local) = engine.due_diff(due).expect("a diff is due");
    engine
        .set_local_data(due, serde_json::json!({"a": 3, "b": 1}))
        .unwrap();
    engine.handle_timeout_diffed(due, &base, &local, diff(&base, &local));
    peer_view(&mut engine, &mut peer);
    assert_eq!(peer, serde_json::json!({"a": 2}));
    // Still due, from where the peer is now.
    let (base, local) = engine.due_diff(due).expect("the rest is due at once");
    assert_eq!(*base, serde_json::json!({"a": 2}));
    engine.handle_timeout_diffed(due, &base, &local, diff(&base, &local));
    peer_view(&mut engine, &mut peer);
    assert_eq!(peer, serde_json::json!({"a": 3, "b": 1}));
    assert!(!engine.has_unsent_changes());
}

#[test]
fn a_manual_flush_diffed_outside_sends_the_given_ops() {
    let now = Instant::now();
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Manual));
    engine
        .set_local_data(now, serde_json::json!({"a": 1}))
        .unwrap();
    engine.flush_local_data().unwrap();
    let mut peer = Value::Null;
    peer_view(&mut engine, &mut peer);
    engine
        .set_local_data(now, serde_json::json!({"a": 2}))
        .unwrap();
    let (base, local) = engine.unsent_diff().expect("a diff is unsent");
    assert!(
        engine.due_diff(now).is_none(),
        "nothing is due without a deadline"
    );
    assert!(engine.sync_diffed(&base, &local, not_the_minimal_diff()));
    assert!(!engine.has_unsent_changes());
    let frame = engine.poll_transmit().expect("the sync");
    assert!(frame.text.as_str().contains(r#""op":"remove""#));
    // A second hand-back of the same diff takes nothing.
    assert!(!engine.sync_diffed(&base, &local, diff(&base, &local)));
    engine.flush_local_data().unwrap();
    assert!(engine.poll_transmit().is_none());
}
