//! Property tests: the diff is exact, and any interleaving of operations on
//! both sides delivers every message once, in order, and converges the data.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::*;
use crate::{apply, diff, Event, PatchOperation};

pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "[a-c~/\"\\\\\u{e9}\u{1F600}]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-d~/]{0,3}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object of up to four of the keys `a` to `d`: diffs between two of
/// them remove and replace members as well as add them.
pub(crate) fn arb_small_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d]", arb_json(), 0..4)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

#[derive(Debug, Clone)]
enum Op {
    Set(bool, Value),
    /// A change of the side's `SharedState`, shown with
    /// `set_local_data_shared` (its fast path when the side shows the
    /// previous version, a diff otherwise).
    SetShared(bool, Value),
    Update(bool, String, Value),
    Flush(bool),
    Send(bool, Value),
    Advance(u64),
    Drive,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), arb_json()).prop_map(|(a, v)| Op::Set(a, v)),
        3 => (any::<bool>(), arb_json()).prop_map(|(a, v)| Op::SetShared(a, v)),
        2 => (any::<bool>(), "[a-c]", arb_json()).prop_map(|(a, k, v)| Op::Update(a, k, v)),
        1 => any::<bool>().prop_map(Op::Flush),
        3 => (any::<bool>(), arb_json()).prop_map(|(a, v)| Op::Send(a, v)),
        1 => (0u64..400).prop_map(Op::Advance),
        2 => Just(Op::Drive),
    ]
}

fn arb_policy() -> impl Strategy<Value = AutoflushPolicy> {
    prop_oneof![
        Just(AutoflushPolicy::Immediate),
        Just(AutoflushPolicy::Manual),
        (1u64..300).prop_map(|ms| AutoflushPolicy::Delayed(std::time::Duration::from_millis(ms))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn diff_then_apply_gives_the_target(a in arb_json(), b in arb_json()) {
        let ops = diff(&a, &b);
        let mut doc = a.clone();
        apply(&mut doc, &ops).unwrap();
        prop_assert_eq!(&doc, &b);
        // What goes on the wire decodes to the same ops.
        let wire = serde_json::to_string(&ops).unwrap();
        let decoded: Vec<PatchOperation> = serde_json::from_str(&wire).unwrap();
        let mut doc = a;
        apply(&mut doc, &decoded).unwrap();
        prop_assert_eq!(doc, b);
    }

    #[test]
    fn diff_is_deterministic(a in arb_json(), b in arb_json()) {
        prop_assert_eq!(diff(&a, &b), diff(&a.clone(), &b.clone()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn interleavings_deliver_messages_once_in_order_and_converge(
        policy_a in arb_policy(),
        policy_b in arb_policy(),
        data_frame_limit in prop_oneof![Just(1usize), Just(3), Just(64)],
        ops in prop::collection::vec(arb_op(), 0..40),
    ) {
        // Small limits make the lagging-peer collapse happen often.
        let config = |autoflush| crate::Config {
            autoflush,
            max_queued_data_frames: data_frame_limit,
            ..crate::Config::default()
        };
        let mut pair = crate::testing::Pair::new(std::time::Instant::now(), config(policy_a), config(policy_b));
        let mut sent_by_a = Vec::new();
        let mut sent_by_b = Vec::new();
        let mut shared_a = crate::SharedState::new(Value::Null);
        let mut shared_b = crate::SharedState::new(Value::Null);
        for op in ops {
            match op {
                Op::SetShared(on_a, value) => {
                    let (side, shared) = if on_a { (&mut pair.a, &mut shared_a) } else { (&mut pair.b, &mut shared_b) };
                    let change = shared.set(value);
                    side.engine.set_local_data_shared(pair.now, &change).unwrap();
                }
                Op::Set(on_a, value) => {
                    let side = if on_a { &mut pair.a } else { &mut pair.b };
                    side.engine.set_local_data(pair.now, value).unwrap();
                }
                Op::Update(on_a, key, value) => {
                    let side = if on_a { &mut pair.a } else { &mut pair.b };
                    if !side.engine.local_data().is_object() {
                        side.engine.set_local_data(pair.now, json!({})).unwrap();
                    }
                    let op: PatchOperation = serde_json::from_value(
                        json!({"op": "add", "path": format!("/{key}"), "value": value}),
                    ).unwrap();
                    side.engine.update_local_data(pair.now, vec![op]).unwrap();
                }
                Op::Flush(on_a) => {
                    let side = if on_a { &mut pair.a } else { &mut pair.b };
                    side.engine.flush_local_data().unwrap();
                }
                Op::Send(on_a, value) => {
                    let (side, log) = if on_a { (&mut pair.a, &mut sent_by_a) } else { (&mut pair.b, &mut sent_by_b) };
                    side.engine.send_message(&value).unwrap();
                    log.push(value);
                }
                Op::Advance(ms) => {
                    pair.now += std::time::Duration::from_millis(ms);
                    pair.a.engine.handle_timeout(pair.now);
                    pair.b.engine.handle_timeout(pair.now);
                }
                Op::Drive => pair.drive(),
            }
        }
        pair.a.engine.flush_local_data().unwrap();
        pair.b.engine.flush_local_data().unwrap();
        pair.run();
        prop_assert_eq!(pair.b.messages(), sent_by_a);
        prop_assert_eq!(pair.a.messages(), sent_by_b);
        prop_assert_eq!(pair.b.engine.remote_data(), pair.a.engine.local_data());
        prop_assert_eq!(pair.a.engine.remote_data(), pair.b.engine.local_data());
        let closed = pair.a.events.iter().chain(&pair.b.events).any(|e| matches!(e, Event::Closed(_)));
        prop_assert!(!closed);
    }
}
