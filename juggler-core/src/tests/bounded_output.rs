//! Shared-state fan-out and the bounds on what waits for a slow peer.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::*;
use crate::{Engine, FrameKind, SharedState};

fn immediate() -> Engine {
    Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate))
}

/// Feeds every queued frame of `from` to `to`; returns the frame kinds.
fn deliver(from: &mut Engine, to: &mut Engine) -> Vec<FrameKind> {
    std::iter::from_fn(|| from.poll_transmit())
        .map(|t| {
            to.handle_text(t.text.as_str()).unwrap();
            t.kind
        })
        .collect()
}

#[test]
fn shared_changes_reach_in_sync_engines_as_the_same_bytes() {
    let now = Instant::now();
    let mut state = SharedState::new(json!({"n": 0, "big": [1, 2, 3]}));
    let mut servers: Vec<Engine> = (0..3).map(|_| immediate()).collect();
    let mut clients: Vec<Engine> = (0..3).map(|_| immediate()).collect();
    for (server, client) in servers.iter_mut().zip(&mut clients) {
        server.set_local_data(now, state.data().clone()).unwrap();
        deliver(server, client);
    }
    for n in 1..=3 {
        let change = state.set(json!({"n": n, "big": [1, 2, 3]}));
        for (server, client) in servers.iter_mut().zip(&mut clients) {
            server.set_local_data_shared(now, &change).unwrap();
            assert!(Arc::ptr_eq(server.local_data(), state.data()));
            let transmit = server.poll_transmit().unwrap();
            assert!(
                transmit.text.clone().into_owned_or_shared().is_err(),
                "shared bytes, not a copy"
            );
            client.handle_text(transmit.text.as_str()).unwrap();
            assert_eq!(**client.remote_data(), json!({"n": n, "big": [1, 2, 3]}));
        }
    }
}

#[test]
fn engines_out_of_sync_get_a_diff_of_their_own() {
    let now = Instant::now();
    let mut state = SharedState::new(json!({"a": 1}));
    let first = state.set(json!({"a": 2}));
    let second = state
        .update(
            serde_json::from_value(json!([{"op": "add", "path": "/b", "value": true}])).unwrap(),
        )
        .unwrap();
    // A new engine never saw the base of either change.
    let (mut late, mut peer) = (immediate(), immediate());
    late.set_local_data_shared(now, &second).unwrap();
    deliver(&mut late, &mut peer);
    assert_eq!(**peer.remote_data(), json!({"a": 2, "b": true}));
    // A delayed engine batches: one diff at its deadline.
    let (mut delayed, mut peer) = (
        Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(DELAY))),
        immediate(),
    );
    delayed.set_local_data_shared(now, &first).unwrap();
    delayed.set_local_data_shared(now, &second).unwrap();
    delayed.handle_timeout(now + DELAY);
    assert_eq!(deliver(&mut delayed, &mut peer), [FrameKind::Data]);
    assert_eq!(**peer.remote_data(), json!({"a": 2, "b": true}));
    // An empty change sends nothing.
    let mut state = SharedState::new(json!(1));
    let (mut engine, mut peer) = (immediate(), immediate());
    engine.set_local_data(now, state.data().clone()).unwrap();
    deliver(&mut engine, &mut peer);
    let nothing = state.set(json!(1));
    assert!(nothing.is_empty());
    engine.set_local_data_shared(now, &nothing).unwrap();
    assert_eq!(engine.queued_transmits(), 0);
}

#[test]
fn a_lagging_peer_gets_one_frame_for_a_run_of_changes() {
    let now = Instant::now();
    let (mut engine, mut peer) = (immediate(), immediate());
    let limit = engine.config().max_queued_data_frames;
    for n in 0..1000 {
        engine.set_local_data(now, json!({"n": n})).unwrap();
        assert!(
            engine.queued_transmits() <= limit + 1,
            "queue grew past the bound at {n}"
        );
    }
    let ticket = engine.flush_local_data().unwrap();
    let mut last_seq = 0;
    while let Some(transmit) = engine.poll_transmit() {
        peer.handle_text(transmit.text.as_str()).unwrap();
        last_seq = transmit.seq;
    }
    assert!(
        ticket.is_complete(last_seq),
        "the flush completes with the collapsed frame"
    );
    assert_eq!(**peer.remote_data(), json!({"n": 999}));
}

#[test]
fn collapsing_keeps_messages_after_the_data_they_followed() {
    let now = Instant::now();
    let (mut engine, mut peer) = (immediate(), immediate());
    for n in 0..200 {
        engine.set_local_data(now, json!(n)).unwrap();
        if n % 50 == 49 {
            engine.send_message(&json!(n)).unwrap();
        }
    }
    let mut seen = Vec::new();
    while let Some(transmit) = engine.poll_transmit() {
        peer.handle_text(transmit.text.as_str()).unwrap();
        while let Some(event) = peer.poll_event() {
            if let crate::Event::Message(Value::Number(n)) = event {
                // When message n arrives, the data is at least n.
                assert!(peer.remote_data().as_i64().unwrap() >= n.as_i64().unwrap());
                seen.push(n.as_i64().unwrap());
            }
        }
    }
    assert_eq!(seen, [49, 99, 149, 199]);
    assert_eq!(**peer.remote_data(), json!(199));
    assert!(engine.config().max_queued_data_frames < 200);
}

#[test]
fn one_queued_pong_answers_a_flood_of_pings() {
    let mut engine = immediate();
    for _ in 0..10_000 {
        engine
            .handle_text(r#"{"type":"PING","payload":{}}"#)
            .unwrap();
    }
    assert_eq!(engine.queued_transmits(), 1);
    assert_eq!(engine.poll_transmit().unwrap().kind, FrameKind::Pong);
    engine
        .handle_text(r#"{"type":"PING","payload":{}}"#)
        .unwrap();
    assert_eq!(
        engine.queued_transmits(),
        1,
        "a new ping after the pong left is answered"
    );
}

#[test]
fn queued_bytes_follow_the_frames_through_collapse_and_close() {
    let now = Instant::now();
    let mut engine = immediate();
    let message = json!("x".repeat(1000));
    for _ in 0..3 {
        engine.send_message(&message).unwrap();
    }
    let one = engine.queued_transmit_bytes() / 3;
    assert!(one > 1000, "{one}");
    assert_eq!(engine.queued_transmit_bytes(), 3 * one);
    // A run of DATA frames collapses into one: the bytes are that frame's.
    for n in 0..200 {
        engine.set_local_data(now, json!({"n": n})).unwrap();
    }
    let counted = engine.queued_transmit_bytes();
    let frames: Vec<_> = std::iter::from_fn(|| engine.poll_transmit()).collect();
    assert!(frames.len() <= 3 + engine.config().max_queued_data_frames + 1);
    let polled: usize = frames.iter().map(|transmit| transmit.text.len()).sum();
    assert_eq!(counted, polled);
    let data_frames = frames
        .iter()
        .filter(|transmit| transmit.kind == crate::FrameKind::Data)
        .count() as u64;
    assert!(engine.collapsed_data_frames() > 0);
    assert_eq!(
        engine.collapsed_data_frames() + data_frames,
        200,
        "every change is a frame sent or a frame collapsed"
    );
    assert_eq!(engine.queued_transmit_bytes(), 0);
    // A close drops what waits, and its bytes.
    engine.send_message(&message).unwrap();
    engine.handle_transport_closed(crate::CloseReason::Remote);
    assert_eq!(engine.queued_transmits(), 0);
    assert_eq!(engine.queued_transmit_bytes(), 0);
}

#[test]
fn shared_changes_go_out_as_their_frames_at_every_policy() {
    use crate::{AutoflushPolicy, Config, Engine, SharedState};
    let delay = std::time::Duration::from_millis(200);
    for policy in [
        AutoflushPolicy::Immediate,
        AutoflushPolicy::Delayed(delay),
        AutoflushPolicy::Manual,
    ] {
        let start = Instant::now();
        let mut state = SharedState::new(json!({"n": 0, "keep": "x"}));
        let mut engine = Engine::new(Config::with_autoflush(policy));
        engine.set_local_data(start, state.data().clone()).unwrap();
        engine.flush_local_data().unwrap();
        while engine.poll_transmit().is_some() {}
        let changes: Vec<_> = (1..=3)
            .map(|n| state.set(json!({"n": n, "keep": "x"})))
            .collect();
        for change in &changes {
            engine.set_local_data_shared(start, change).unwrap();
        }
        engine.handle_timeout(start + delay);
        engine.flush_local_data().unwrap();
        let sent: Vec<_> = std::iter::from_fn(|| engine.poll_transmit()).collect();
        assert_eq!(sent.len(), 3, "{policy:?}: one frame per change");
        for (transmit, change) in sent.iter().zip(&changes) {
            // The very bytes of the shared frame: no diff, no encoding.
            assert!(
                std::ptr::eq(
                    transmit.text.as_str().as_ptr(),
                    change.frame.as_deref().unwrap().as_ptr()
                ),
                "{policy:?}: a frame of its own"
            );
        }
        assert_eq!(**engine.local_data(), json!({"n": 3, "keep": "x"}));
    }
}
