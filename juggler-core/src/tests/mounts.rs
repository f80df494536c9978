//! Groups' parts of a state ("rooms"), on both server engines: a group's
//! change is applied in place and goes out encoded once for every
//! member, the connection's own changes keep their hands off the parts,
//! and whatever the interleaving the peer ends with the state.

use std::time::Instant;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::properties::arb_json;
use crate::v07::{ServerConfig, ServerEngine};
use crate::{
    apply, AutoflushPolicy, Config, Engine, MountError, PatchOperation, SharedState, UpdateError,
};

fn engine_05(data: Value) -> Engine {
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    engine.set_local_data(Instant::now(), data).unwrap();
    engine
}

fn engine_06(data: Value, autoflush: AutoflushPolicy) -> ServerEngine {
    ServerEngine::new(
        ServerConfig::v0_6().autoflush(autoflush),
        data,
        Instant::now(),
    )
}

/// The ops of every frame `engine` queued: a peer applies them in order.
fn sent_05(engine: &mut Engine) -> Vec<Vec<PatchOperation>> {
    std::iter::from_fn(|| engine.poll_transmit())
        .map(|frame| {
            let frame: Value = serde_json::from_str(frame.text.as_str()).unwrap();
            serde_json::from_value(frame["payload"].clone()).unwrap()
        })
        .collect()
}

fn sent_06(engine: &mut ServerEngine) -> Vec<Vec<PatchOperation>> {
    std::iter::from_fn(|| engine.poll_transmit())
        .map(|frame| {
            let message: Value = serde_json::from_str(frame.text.as_str()).unwrap();
            serde_json::from_value(message["diff"].clone()).unwrap()
        })
        .collect()
}

fn texts_05(engine: &mut Engine) -> Vec<String> {
    std::iter::from_fn(|| engine.poll_transmit())
        .map(|frame| frame.text.as_str().to_owned())
        .collect()
}

#[test]
fn a_group_change_goes_to_every_part_as_one_shared_text() {
    let now = Instant::now();
    let mut chat = SharedState::new(json!({"lines": []}));
    let mut members: Vec<Engine> = ["ana", "bo", "cy"]
        .iter()
        .map(|user| engine_05(json!({"user": user})))
        .collect();
    for member in &mut members {
        member
            .mount(now, "/chat", 7, chat.data().as_ref().clone())
            .unwrap();
        texts_05(member);
    }
    let change = chat.set(json!({"lines": ["hi"]}));
    for member in &mut members {
        member
            .set_local_data_shared_at(now, "/chat", &change)
            .unwrap();
    }
    let frames: Vec<_> = members
        .iter_mut()
        .map(|member| member.poll_transmit().unwrap().text)
        .collect();
    assert_eq!(
        frames[0].as_str(),
        r#"{"type":"DATA","payload":[{"op":"add","path":"/chat/lines/0","value":"hi"}]}"#
    );
    // Encoded once: every member queues the very same bytes.
    assert!(frames
        .iter()
        .all(|text| text.as_str().as_ptr() == frames[0].as_str().as_ptr()));
    assert_eq!(
        **members[1].local_data(),
        json!({"user": "bo", "chat": {"lines": ["hi"]}})
    );
}

#[test]
fn a_0_6_member_queues_the_groups_state_message_as_is() {
    let now = Instant::now();
    let mut room = SharedState::new(json!({"n": 0}));
    let mut first = engine_06(json!({"own": 1}), AutoflushPolicy::Immediate);
    let mut second = engine_06(json!({"own": 2}), AutoflushPolicy::Immediate);
    for member in [&mut first, &mut second] {
        member
            .mount(now, "/room", 1, room.data().as_ref().clone())
            .unwrap();
        while member.poll_transmit().is_some() {}
    }
    let change = room.set(json!({"n": 1}));
    first.set_state_shared_at(now, "/room", &change).unwrap();
    second.set_state_shared_at(now, "/room", &change).unwrap();
    let (one, two) = (
        first.poll_transmit().unwrap().text,
        second.poll_transmit().unwrap().text,
    );
    assert_eq!(
        one.as_str(),
        r#"{"type":"state","diff":[{"op":"replace","path":"/room/n","value":1}]}"#
    );
    assert_eq!(one.as_str().as_ptr(), two.as_str().as_ptr());
}

#[test]
fn own_changes_keep_the_parts() {
    let now = Instant::now();
    let mut engine = engine_05(json!({"user": "ana"}));
    engine.mount(now, "/chat", 1, json!(["hi"])).unwrap();
    engine
        .mount(now, "/plant/3", 2, json!({"level": 7}))
        .unwrap();
    texts_05(&mut engine);

    engine
        .set_local_data(now, json!({"user": "bo", "chat": "mine", "plant": []}))
        .unwrap();
    // `plant` was an array without an element 3: it makes room.
    assert_eq!(
        **engine.local_data(),
        json!({"user": "bo", "chat": ["hi"], "plant": {"3": {"level": 7}}})
    );
    engine
        .set_local_data(now, json!({"plant": [0, 1, 2, 3]}))
        .unwrap();
    assert_eq!(
        **engine.local_data(),
        json!({"chat": ["hi"], "plant": [0, 1, 2, {"level": 7}]})
    );
}

#[test]
fn own_ops_on_a_part_are_refused_and_change_nothing() {
    let now = Instant::now();
    let mut engine = engine_05(json!({"user": "ana"}));
    engine.mount(now, "/chat", 1, json!(["hi"])).unwrap();
    texts_05(&mut engine);
    let before = engine.local_data().clone();
    for (op, path) in [
        (
            json!({"op": "add", "path": "/chat/-", "value": 1}),
            "/chat/-",
        ),
        (json!({"op": "remove", "path": "/chat"}), "/chat"),
        (json!({"op": "replace", "path": "", "value": {}}), ""),
        (
            json!({"op": "copy", "from": "/chat/0", "path": "/x"}),
            "/chat/0",
        ),
    ] {
        let ops = vec![serde_json::from_value(op).unwrap()];
        assert_eq!(
            engine.update_local_data(now, ops),
            Err(UpdateError::Owned {
                path: path.to_owned(),
                part: "/chat".to_owned()
            })
        );
    }
    assert_eq!(engine.local_data(), &before);
    assert!(engine.poll_transmit().is_none());
    // Beside the part, own ops go as they are.
    let ops =
        vec![
            serde_json::from_value(json!({"op": "replace", "path": "/user", "value": "bo"}))
                .unwrap(),
        ];
    engine.update_local_data(now, ops).unwrap();
    assert_eq!(**engine.local_data(), json!({"user": "bo", "chat": ["hi"]}));
}

#[test]
fn a_part_makes_room_where_the_state_has_none() {
    let now = Instant::now();
    // A new connection's state is `null`: the part makes it an object.
    let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    engine.mount(now, "/rooms/chat", 1, json!([])).unwrap();
    assert_eq!(**engine.local_data(), json!({"rooms": {"chat": []}}));
    engine.set_local_data(now, json!({"rooms": 5})).unwrap();
    assert_eq!(**engine.local_data(), json!({"rooms": {"chat": []}}));
    // An array holds a part at one of its indexes or its end, no further.
    engine.set_local_data(now, json!({"list": [0]})).unwrap();
    engine.mount(now, "/list/1", 2, json!("end")).unwrap();
    assert!(matches!(
        engine.mount(now, "/list/5", 3, json!(0)),
        Err(MountError::Path(_))
    ));
    assert_eq!(
        **engine.local_data(),
        json!({"rooms": {"chat": []}, "list": [0, "end"]})
    );
}

#[test]
fn overlapping_parts_are_refused() {
    let now = Instant::now();
    let mut engine = engine_05(json!({}));
    engine.mount(now, "/a/b", 1, json!(1)).unwrap();
    for pointer in ["/a", "/a/b", "/a/b/c"] {
        assert_eq!(
            engine.mount(now, pointer, 2, json!(2)),
            Err(MountError::Overlaps {
                pointer: pointer.to_owned(),
                owned: "/a/b".to_owned()
            })
        );
    }
    assert_eq!(engine.mount(now, "", 2, json!(2)), Err(MountError::Root));
    assert!(matches!(
        engine.mount(now, "no-slash", 2, json!(2)),
        Err(MountError::Path(_))
    ));
    // The same group again sets its part again; a neighbour is fine.
    engine.mount(now, "/a/b", 1, json!(3)).unwrap();
    engine.mount(now, "/a/c", 2, json!(4)).unwrap();
    assert_eq!(**engine.local_data(), json!({"a": {"b": 3, "c": 4}}));
    // Once left, the part is the connection's own again.
    assert!(engine.unmount("/a/b", 1));
    assert!(!engine.unmount("/a/b", 1));
    engine.mount(now, "/a/b", 3, json!(5)).unwrap();
    assert_eq!(**engine.local_data(), json!({"a": {"b": 5, "c": 4}}));
}

#[test]
fn a_part_that_lost_the_groups_version_is_set_whole() {
    let now = Instant::now();
    let mut room = SharedState::new(json!({"items": [1]}));
    let mut engine = engine_05(json!({}));
    engine
        .mount(now, "/room", 1, room.data().as_ref().clone())
        .unwrap();
    texts_05(&mut engine);
    // A member that missed a change (it joined after it, say) gets the
    // next one as the whole part, not as ops that would not apply.
    // Its ops, `remove /items/1`, would not apply to the part's `[1]`.
    let _missed = room.set(json!({"items": [1, 2]}));
    let remove = json!({"op": "remove", "path": "/items/1"});
    let next = room
        .update(vec![serde_json::from_value(remove).unwrap()])
        .unwrap();
    engine
        .set_local_data_shared_at(now, "/room", &next)
        .unwrap();
    assert_eq!(
        texts_05(&mut engine),
        [r#"{"type":"DATA","payload":[{"op":"add","path":"/room","value":{"items":[1]}}]}"#]
    );
}

#[test]
fn a_0_6_member_gets_a_move_as_the_whole_part() {
    let now = Instant::now();
    let mut room = SharedState::new(json!({"a": 1}));
    let mut engine = engine_06(json!({"own": 0}), AutoflushPolicy::Immediate);
    engine
        .mount(now, "/room", 1, room.data().as_ref().clone())
        .unwrap();
    while engine.poll_transmit().is_some() {}
    let moved = room
        .update(vec![serde_json::from_value(
            json!({"op": "move", "from": "/a", "path": "/b"}),
        )
        .unwrap()])
        .unwrap();
    engine.set_state_shared_at(now, "/room", &moved).unwrap();
    assert_eq!(
        sent_06(&mut engine),
        [vec![serde_json::from_value::<PatchOperation>(
            json!({"op": "add", "path": "/room", "value": {"b": 1}})
        )
        .unwrap()]]
    );
}

#[derive(Debug, Clone)]
enum Step {
    /// Group 0 or 1 sets its state.
    Group(usize, Value),
    /// The connection sets its own state.
    Own(Value),
    /// The connection sets its own member `user`.
    OwnOp(Value),
    Flush,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..2, arb_json()).prop_map(|(group, value)| Step::Group(group, value)),
        2 => arb_json().prop_map(Step::Own),
        2 => arb_json().prop_map(Step::OwnOp),
        1 => Just(Step::Flush),
    ]
}

const PARTS: [&str; 2] = ["/rooms/chat", "/plant"];

/// What the property tests do with a server engine of either generation.
trait Member {
    fn sent(&mut self) -> Vec<Vec<PatchOperation>>;
    fn shared_at(&mut self, pointer: &str, change: &crate::SharedChange);
    fn own(&mut self, state: Value);
    fn own_op(&mut self, op: PatchOperation);
    fn flush(&mut self);
    fn local(&self) -> Value;
    fn mount(&mut self, pointer: &str, owner: u64, data: Value);
}

impl Member for Engine {
    fn sent(&mut self) -> Vec<Vec<PatchOperation>> {
        sent_05(self)
    }
    fn shared_at(&mut self, pointer: &str, change: &crate::SharedChange) {
        self.set_local_data_shared_at(Instant::now(), pointer, change)
            .unwrap();
    }
    fn own(&mut self, state: Value) {
        self.set_local_data(Instant::now(), state).unwrap();
    }
    fn own_op(&mut self, op: PatchOperation) {
        self.update_local_data(Instant::now(), vec![op]).unwrap();
    }
    fn flush(&mut self) {
        self.flush_local_data().unwrap();
    }
    fn local(&self) -> Value {
        self.local_data().as_ref().clone()
    }
    fn mount(&mut self, pointer: &str, owner: u64, data: Value) {
        Engine::mount(self, Instant::now(), pointer, owner, data).unwrap();
    }
}

impl Member for ServerEngine {
    fn sent(&mut self) -> Vec<Vec<PatchOperation>> {
        sent_06(self)
    }
    fn shared_at(&mut self, pointer: &str, change: &crate::SharedChange) {
        self.set_state_shared_at(Instant::now(), pointer, change)
            .unwrap();
    }
    fn own(&mut self, state: Value) {
        self.set_state(Instant::now(), state).unwrap();
    }
    fn own_op(&mut self, op: PatchOperation) {
        self.update_state(Instant::now(), vec![op]).unwrap();
    }
    fn flush(&mut self) {
        ServerEngine::flush(self).unwrap();
    }
    fn local(&self) -> Value {
        self.state().as_ref().clone()
    }
    fn mount(&mut self, pointer: &str, owner: u64, data: Value) {
        ServerEngine::mount(self, Instant::now(), pointer, owner, data).unwrap();
    }
}

/// Runs `steps` on `engine`, whose parts are two groups': its peer, fed
/// every frame, ends with its state, and the parts with their groups'.
fn run_steps(steps: &[Step], engine: &mut impl Member) -> Result<(), TestCaseError> {
    let mut groups = [SharedState::new(json!([])), SharedState::new(json!({}))];
    let mut peer = Value::Null;
    for (owner, pointer) in PARTS.iter().enumerate() {
        engine.mount(pointer, owner as u64, groups[owner].data().as_ref().clone());
    }
    let mut user = Value::Null;
    // A flush last: the peer then has every change.
    for step in steps.iter().chain([&Step::Flush]) {
        match step {
            Step::Group(group, value) => {
                let change = groups[*group].set(value.clone());
                engine.shared_at(PARTS[*group], &change);
            }
            Step::Own(value) => {
                user = value.clone();
                engine.own(json!({"user": value, "rooms": "mine"}));
            }
            Step::OwnOp(value) => {
                user = value.clone();
                let op = json!({"op": "add", "path": "/user", "value": value});
                engine.own_op(serde_json::from_value(op).unwrap());
            }
            Step::Flush => engine.flush(),
        }
        for frame in engine.sent() {
            apply(&mut peer, &frame).map_err(|err| TestCaseError::fail(err.to_string()))?;
        }
    }
    let local = engine.local();
    prop_assert_eq!(&peer, &local);
    prop_assert_eq!(&local["rooms"]["chat"], groups[0].data().as_ref());
    prop_assert_eq!(&local["plant"], groups[1].data().as_ref());
    if !user.is_null() {
        prop_assert_eq!(&local["user"], &user);
    }
    Ok(())
}

fn policy(manual: bool) -> AutoflushPolicy {
    if manual {
        AutoflushPolicy::Manual
    } else {
        AutoflushPolicy::Immediate
    }
}

proptest! {
    #[test]
    fn a_0_5_peer_ends_with_the_state_and_the_parts_with_their_groups(
        steps in prop::collection::vec(arb_step(), 0..24),
        manual in any::<bool>(),
    ) {
        let mut engine = Engine::new(Config::with_autoflush(policy(manual)));
        run_steps(&steps, &mut engine)?;
    }

    #[test]
    fn a_0_6_peer_ends_with_the_state_and_the_parts_with_their_groups(
        steps in prop::collection::vec(arb_step(), 0..24),
        manual in any::<bool>(),
    ) {
        run_steps(&steps, &mut engine_06(Value::Null, policy(manual)))?;
    }
}
