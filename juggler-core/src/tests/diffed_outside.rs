//! `set_local_data_diffed`, the path that lets a driver diff outside its
//! lock, sends what `set_local_data` would, and falls back when its base
//! is stale.

use std::sync::Arc;
use std::time::Instant;

use proptest::prelude::*;
use serde_json::Value;

use super::properties::arb_json;
use crate::{diff, AutoflushPolicy, Config, Engine, Frame};

/// What a peer holds after every frame the engine has sent so far.
fn peer_view(engine: &mut Engine, peer: &mut Value) {
    while let Some(transmit) = engine.poll_transmit() {
        if let Ok(Frame::Data(ops)) = Frame::decode(transmit.text.as_str()) {
            crate::apply(peer, &ops).expect("the engine's patches apply");
        }
    }
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
        plain.flush_local_data().unwrap();
        diffed.flush_local_data().unwrap();
        peer_view(&mut plain, &mut plain_peer);
        peer_view(&mut diffed, &mut diffed_peer);
        prop_assert_eq!(&diffed_peer, &**diffed.local_data());
        prop_assert_eq!(diffed_peer, plain_peer);
    }
}
