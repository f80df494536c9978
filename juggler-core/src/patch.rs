//! The RFC 6902 diff and patch the engine uses.

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use std::iter::Peekable;

use serde_json::{map, Map, Value};

/// The RFC 6902 operations that turn `from` into `to`.
///
/// Only `add`, `remove` and `replace` are emitted, which every peer applies
/// (Python `jsonpatch`, JS `jiff`). Object members are visited in key order,
/// so the output never depends on hash iteration order; a change of the
/// whole value is one `replace` at path `""`. Equal subtrees are skipped
/// after a comparison, without building their paths, so a small change of a
/// large state costs one pass of equality checks.
pub fn diff(from: &Value, to: &Value) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    diff_into(from, to, &mut PointerBuf::new(), &mut ops);
    ops
}

/// Whether [`diff`]`(from, to)` is the one op that replaces the whole
/// document (the two differ, and are not both objects or both arrays).
pub(crate) fn replaces_root(from: &Value, to: &Value) -> bool {
    let same_container = matches!(
        (from, to),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    );
    !same_container && from != to
}

fn diff_into(from: &Value, to: &Value, path: &mut PointerBuf, ops: &mut Vec<PatchOperation>) {
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => {
            let mut new_entries = to.iter().peekable();
            for key in from
                .keys()
                .filter(|key| lockstep_get(&mut new_entries, to, key).is_none())
            {
                path.push_back(key);
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: path.clone(),
                }));
                path.pop_back();
            }
            let mut old_entries = from.iter().peekable();
            for (key, new) in to {
                match lockstep_get(&mut old_entries, from, key) {
                    Some(old) if old == new => {}
                    Some(old) => {
                        path.push_back(key);
                        diff_into(old, new, path, ops);
                        path.pop_back();
                    }
                    None => {
                        path.push_back(key);
                        ops.push(PatchOperation::Add(AddOperation {
                            path: path.clone(),
                            value: new.clone(),
                        }));
                        path.pop_back();
                    }
                }
            }
        }
        (Value::Array(from), Value::Array(to)) => {
            for (index, (old, new)) in from.iter().zip(to).enumerate() {
                if old != new {
                    path.push_back(index);
                    diff_into(old, new, path, ops);
                    path.pop_back();
                }
            }
            // Extra items go from the end backwards, so indices stay valid.
            for index in (to.len()..from.len()).rev() {
                path.push_back(index);
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: path.clone(),
                }));
                path.pop_back();
            }
            for (index, new) in to.iter().enumerate().skip(from.len()) {
                path.push_back(index);
                ops.push(PatchOperation::Add(AddOperation {
                    path: path.clone(),
                    value: new.clone(),
                }));
                path.pop_back();
            }
        }
        (from, to) if from == to => {}
        (_, to) => ops.push(PatchOperation::Replace(ReplaceOperation {
            path: path.clone(),
            value: to.clone(),
        })),
    }
}

/// `map.get(key)`, found by walking `entries` (an iterator over `map`)
/// alongside the caller's own ordered walk: with both maps in key order (the
/// serde_json default) each key is found in O(1) instead of a tree lookup.
/// Any other order only makes it fall back to the lookup.
fn lockstep_get<'a>(
    entries: &mut Peekable<map::Iter<'a>>,
    map: &'a Map<String, Value>,
    key: &str,
) -> Option<&'a Value> {
    while entries
        .next_if(|(old_key, _)| old_key.as_str() < key)
        .is_some()
    {}
    match entries.next_if(|(old_key, _)| old_key.as_str() == key) {
        Some((_, value)) => Some(value),
        None => map.get(key),
    }
}

/// Why a patch did not apply. Nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operation {operation} at {path:?}: {reason}")]
#[non_exhaustive]
pub struct ApplyError {
    /// The index of the operation that failed.
    pub operation: usize,
    /// Its `path`.
    pub path: String,
    /// What was wrong.
    pub reason: &'static str,
}

/// Applies RFC 6902 operations (all six ops) to `doc`, whole or not at all:
/// on error `doc` is left exactly as it was.
///
/// Written here rather than taken from `json_patch::patch`, whose `move`
/// loses the moved value when the `add` half fails (and whose rollback
/// then panics if it cannot undo): a peer's patch must never corrupt or
/// crash anything.
pub fn apply(doc: &mut Value, ops: &[PatchOperation]) -> Result<(), ApplyError> {
    apply_steps(doc, ops, None)
}

/// [`apply`], keeping `cost`, an estimate of [`value_cost`](crate::value_cost)
/// of `doc`, up to date as the operations add and remove values, and
/// refusing a patch after which `doc` would cost more than `limit`: then
/// `doc` and `cost` are left exactly as they were.
///
/// Each step counts what it adds and removes (work proportional to those
/// values, which applying and dropping them take anyway); the whole
/// document is walked only when the running estimate passes `limit`, to
/// decide on its exact cost. Containers' spare capacity is not tracked, so
/// the estimate may be under the exact cost by up to about half.
pub fn apply_within(
    doc: &mut Value,
    ops: &[PatchOperation],
    cost: &mut usize,
    limit: usize,
) -> Result<(), ApplyError> {
    apply_steps(doc, ops, Some((cost, limit)))
}

fn apply_steps(
    doc: &mut Value,
    ops: &[PatchOperation],
    mut budget: Option<(&mut usize, usize)>,
) -> Result<(), ApplyError> {
    let mut undo = Vec::with_capacity(ops.len());
    let before = budget.as_ref().map(|(cost, _)| **cost);
    let mut cost = before.unwrap_or(0);
    let failed = |doc: &mut Value, undo: &mut Vec<Undo>, operation: usize, reason| {
        while let Some(step) = undo.pop() {
            step.revert(doc);
        }
        Err(ApplyError {
            operation,
            path: ops[operation].path().to_string(),
            reason,
        })
    };
    for (operation, op) in ops.iter().enumerate() {
        match apply_op(doc, op, &mut undo, budget.is_some()) {
            Ok((grew, shrank)) => cost = cost.saturating_add(grew).saturating_sub(shrank),
            Err(reason) => return failed(doc, &mut undo, operation, reason),
        }
    }
    if let Some((tracked, limit)) = budget.take() {
        if cost > limit {
            cost = crate::value_cost(doc);
        }
        if cost > limit {
            return failed(doc, &mut undo, ops.len().saturating_sub(1), TOO_LARGE);
        }
        *tracked = cost;
    }
    Ok(())
}

type Failure = &'static str;

const NO_PATH: Failure = "path does not exist";
/// What [`apply_within`] refuses a patch for.
pub const TOO_LARGE: &str = "the data would exceed its size limit";
const NO_FROM: Failure = "from does not exist";

/// Applies one operation and logs how to undo it; with `count`, also says
/// how many bytes it added and removed (see [`apply_within`]).
fn apply_op(
    doc: &mut Value,
    op: &PatchOperation,
    undo: &mut Vec<Undo>,
    count: bool,
) -> Result<(usize, usize), Failure> {
    let cost = |value: &Value| if count { crate::value_cost(value) } else { 0 };
    let (step, grew) = match op {
        PatchOperation::Add(op) => {
            let grew = cost(&op.value);
            (
                add(doc, &op.path, op.value.clone()).map_err(|(why, _)| why)?,
                grew,
            )
        }
        PatchOperation::Remove(op) => {
            let (slot, value) = remove(doc, &op.path).ok_or(NO_PATH)?;
            (Undo::Removed(slot, value), 0)
        }
        PatchOperation::Replace(op) => {
            let target = doc.pointer_mut(op.path.as_str()).ok_or(NO_PATH)?;
            let old = std::mem::replace(target, op.value.clone());
            (Undo::Replaced(op.path.clone(), old), cost(&op.value))
        }
        PatchOperation::Move(op) => {
            if op.path.starts_with(&op.from) && op.path.len() != op.from.len() {
                return Err("cannot move a value inside itself");
            }
            let (from, value) = remove(doc, &op.from).ok_or(NO_FROM)?;
            match add(doc, &op.path, value) {
                Ok(to) => {
                    // What the move displaced at `path`, if anything, is
                    // gone; the moved value itself stays.
                    let shrank = match &to {
                        Undo::Added(_, Some(replaced)) | Undo::Replaced(_, replaced) => {
                            cost(replaced)
                        }
                        _ => 0,
                    };
                    undo.push(Undo::Moved {
                        from,
                        to: Box::new(to),
                    });
                    return Ok((0, shrank));
                }
                Err((why, value)) => {
                    // The half that failed changed nothing; the value goes
                    // back where it came from.
                    Undo::Removed(from, value).revert(doc);
                    return Err(why);
                }
            }
        }
        PatchOperation::Copy(op) => {
            let value = doc.pointer(op.from.as_str()).ok_or(NO_FROM)?.clone();
            let grew = cost(&value);
            (add(doc, &op.path, value).map_err(|(why, _)| why)?, grew)
        }
        PatchOperation::Test(op) => {
            if doc.pointer(op.path.as_str()) != Some(&op.value) {
                return Err("test failed");
            }
            return Ok((0, 0));
        }
    };
    let (grew, shrank) = match &step {
        Undo::Removed(slot, value) => (0, cost(value) + slot.entry_cost(count)),
        Undo::Added(slot, None) => (grew + slot.entry_cost(count), 0),
        Undo::Added(_, Some(replaced)) | Undo::Replaced(_, replaced) => (grew, cost(replaced)),
        Undo::Moved { .. } => (grew, 0),
    };
    undo.push(step);
    Ok((grew, shrank))
}

/// Where a value sits: the path of its container and its place there.
struct Slot {
    parent: PointerBuf,
    place: Place,
}

enum Place {
    Member(String),
    Item(usize),
}

impl Slot {
    /// What the slot itself costs beside its value: an object entry's key
    /// and node share; nothing for an array item (its `Value` is counted
    /// with the value).
    fn entry_cost(&self, count: bool) -> usize {
        match (&self.place, count) {
            (Place::Member(key), true) => crate::cost::OBJECT_ENTRY + key.len(),
            _ => 0,
        }
    }
}

/// How to take one applied step back. Steps are undone last first, so each
/// finds the document exactly as it left it.
enum Undo {
    /// A `remove`: the value goes back into its slot.
    Removed(Slot, Value),
    /// An `add` into a container: what it put in the slot comes out, and
    /// the member it replaced, if any, goes back.
    Added(Slot, Option<Value>),
    /// A `replace`, or an `add` at the root: the old value goes back.
    Replaced(PointerBuf, Value),
    /// A `move`: its `add` is taken back, and the value returns to `from`.
    Moved { from: Slot, to: Box<Undo> },
}

impl Undo {
    fn revert(self, doc: &mut Value) {
        match self {
            Undo::Removed(slot, value) => insert(doc, &slot, value),
            Undo::Moved { from, to } => {
                if let Some(value) = to.take_back(doc) {
                    insert(doc, &from, value);
                }
            }
            added => drop(added.take_back(doc)),
        }
    }

    /// Undoes an `add` (or `replace`) step and returns the value it had
    /// put in place.
    fn take_back(self, doc: &mut Value) -> Option<Value> {
        match self {
            Undo::Added(slot, replaced) => {
                let added = take(doc, &slot);
                if let Some(replaced) = replaced {
                    insert(doc, &slot, replaced);
                }
                added
            }
            Undo::Replaced(path, old) => doc
                .pointer_mut(path.as_str())
                .map(|target| std::mem::replace(target, old)),
            other => {
                other.revert(doc);
                None
            }
        }
    }
}

/// RFC 6902 `add`; on failure the value comes back with the reason.
fn add(doc: &mut Value, path: &Pointer, value: Value) -> Result<Undo, (Failure, Value)> {
    let Some((parent_path, last)) = path.split_back() else {
        let old = std::mem::replace(doc, value);
        return Ok(Undo::Replaced(PointerBuf::new(), old));
    };
    let Some(parent) = doc.pointer_mut(parent_path.as_str()) else {
        return Err((NO_PATH, value));
    };
    match parent {
        Value::Object(map) => {
            let key = last.decoded().into_owned();
            let replaced = map.insert(key.clone(), value);
            Ok(Undo::Added(slot(parent_path, Place::Member(key)), replaced))
        }
        Value::Array(items) => {
            let Some(index) = last
                .to_index()
                .ok()
                .and_then(|index| index.for_len_incl(items.len()).ok())
            else {
                return Err(("array index out of range", value));
            };
            items.insert(index, value);
            Ok(Undo::Added(slot(parent_path, Place::Item(index)), None))
        }
        _ => Err(("parent is not a container", value)),
    }
}

/// RFC 6902 `remove`: the value and the slot it was in.
fn remove(doc: &mut Value, path: &Pointer) -> Option<(Slot, Value)> {
    let (parent_path, last) = path.split_back()?;
    match doc.pointer_mut(parent_path.as_str())? {
        Value::Object(map) => {
            let key = last.decoded().into_owned();
            let value = map.remove(&key)?;
            Some((slot(parent_path, Place::Member(key)), value))
        }
        Value::Array(items) => {
            let index = last.to_index().ok()?.for_len(items.len()).ok()?;
            let value = items.remove(index);
            Some((slot(parent_path, Place::Item(index)), value))
        }
        _ => None,
    }
}

fn slot(parent: &Pointer, place: Place) -> Slot {
    Slot {
        parent: parent.to_buf(),
        place,
    }
}

/// Puts `value` into `slot`, which the undo order guarantees is there.
fn insert(doc: &mut Value, slot: &Slot, value: Value) {
    match (doc.pointer_mut(slot.parent.as_str()), &slot.place) {
        (Some(Value::Object(map)), Place::Member(key)) => {
            map.insert(key.clone(), value);
        }
        (Some(Value::Array(items)), Place::Item(index)) if *index <= items.len() => {
            items.insert(*index, value);
        }
        _ => debug_assert!(false, "undo found the document in another shape"),
    }
}

/// Takes the value out of `slot`.
fn take(doc: &mut Value, slot: &Slot) -> Option<Value> {
    match (doc.pointer_mut(slot.parent.as_str())?, &slot.place) {
        (Value::Object(map), Place::Member(key)) => map.remove(key),
        (Value::Array(items), Place::Item(index)) if *index < items.len() => {
            Some(items.remove(*index))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn wire(ops: &[PatchOperation]) -> Value {
        serde_json::to_value(ops).unwrap()
    }

    #[test]
    fn emits_minimal_standard_ops() {
        assert_eq!(
            wire(&diff(&json!(null), &json!({"a": 1}))),
            json!([{"op": "replace", "path": "", "value": {"a": 1}}])
        );
        assert_eq!(wire(&diff(&json!({"a": 1}), &json!({"a": 1}))), json!([]));
        assert_eq!(
            wire(&diff(
                &json!({"a": 1, "b": {"c": [1, 2, 3]}, "d/~": 0}),
                &json!({"b": {"c": [1, 5]}, "d/~": 1, "e": null})
            )),
            json!([
                {"op": "remove", "path": "/a"},
                {"op": "replace", "path": "/b/c/1", "value": 5},
                {"op": "remove", "path": "/b/c/2"},
                {"op": "replace", "path": "/d~1~0", "value": 1},
                {"op": "add", "path": "/e", "value": null},
            ])
        );
        assert_eq!(
            wire(&diff(&json!([1]), &json!([1, 2, 3]))),
            json!([{"op": "add", "path": "/1", "value": 2}, {"op": "add", "path": "/2", "value": 3}])
        );
        assert_eq!(
            wire(&diff(&json!([1, 2, 3]), &json!([]))),
            json!([{"op": "remove", "path": "/2"}, {"op": "remove", "path": "/1"}, {"op": "remove", "path": "/0"}])
        );
        assert_eq!(
            wire(&diff(&json!(false), &json!(0))),
            json!([{"op": "replace", "path": "", "value": 0}])
        );
    }

    fn ops(value: Value) -> Vec<PatchOperation> {
        serde_json::from_value(value).unwrap()
    }

    fn doc() -> Value {
        json!({"a": [1, 2, {"b": null}], "c": "d"})
    }

    #[test]
    fn a_move_whose_add_fails_changes_nothing() {
        // json_patch 5 loses "/a" here: the case proptest found.
        let mut value = doc();
        let err = apply(
            &mut value,
            &ops(json!([{"op": "move", "from": "/a", "path": "//"}])),
        )
        .unwrap_err();
        assert_eq!(err.operation, 0);
        assert_eq!(value, doc());
    }

    #[test]
    fn every_kind_of_step_is_undone_when_a_later_one_fails() {
        let steps = json!([
            {"op": "move", "from": "/a/0", "path": "/a/2"},
            {"op": "move", "from": "/c", "path": "/a/1/b"},
            {"op": "add", "path": "/c", "value": "new"},
            {"op": "add", "path": "/a/-", "value": 9},
            {"op": "copy", "from": "/a", "path": "/e"},
            {"op": "remove", "path": "/a/0"},
            {"op": "replace", "path": "", "value": {"a": {"x": 1}, "c": "d"}},
            {"op": "move", "from": "/a", "path": "/c"},
            {"op": "test", "path": "/c", "value": "no"},
        ]);
        let mut value = doc();
        let err = apply(&mut value, &ops(steps)).unwrap_err();
        assert_eq!(err.operation, 8);
        assert_eq!(value, doc());
    }

    #[test]
    fn moves_follow_rfc_6902() {
        let mut value = json!({"list": [0, 1, 2, 3], "m": {"k": 1}});
        apply(
            &mut value,
            &ops(json!([
                {"op": "move", "from": "/list/0", "path": "/list/3"},
                {"op": "move", "from": "/m/k", "path": "/m/k"},
                {"op": "move", "from": "/m", "path": "/list/0"},
            ])),
        )
        .unwrap();
        assert_eq!(value, json!({"list": [{"k": 1}, 1, 2, 3, 0]}));
        let inside = apply(
            &mut value,
            &ops(json!([{"op": "move", "from": "/list", "path": "/list/0/k"}])),
        );
        assert!(inside.is_err());
    }

    fn arb_leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i8>().prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ]
    }

    fn arb_doc() -> impl Strategy<Value = Value> {
        arb_leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn arb_ops() -> impl Strategy<Value = Vec<PatchOperation>> {
        let op = (
            prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test"]),
            "(/([a-c]|[0-3]|-|)){0,3}",
            "(/([a-c]|[0-3])){0,3}",
            arb_leaf(),
        )
            .prop_map(|(op, path, from, value)| {
                json!({"op": op, "path": path, "from": from, "value": value})
            });
        prop::collection::vec(op, 1..6).prop_map(|ops| {
            ops.into_iter()
                .filter_map(|op| serde_json::from_value(op).ok())
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Where `json_patch::patch` succeeds, `apply` gives the same
        /// document; where either fails, `apply` leaves the document as it
        /// was.
        #[test]
        fn apply_is_rfc_6902_and_atomic(start in arb_doc(), ops in arb_ops()) {
            let mut ours = start.clone();
            let mut theirs = start.clone();
            // json_patch panics when it cannot undo a move (the root case
            // in the engine's hostile-input tests); only its successes are
            // a reference.
            let reference = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                json_patch::patch(&mut theirs, &ops).is_ok()
            }))
            .unwrap_or(false);
            match apply(&mut ours, &ops) {
                Ok(()) => {
                    prop_assert!(reference, "json_patch refused it");
                    prop_assert_eq!(&ours, &theirs);
                }
                Err(_) => prop_assert_eq!(&ours, &start),
            }
            if reference {
                prop_assert_eq!(&ours, &theirs);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// `apply_within` applies what `apply` applies while the data stays
        /// under the limit, keeps its estimate near the exact cost, and
        /// refuses a patch that would pass the limit without changing the
        /// document or the estimate.
        #[test]
        fn apply_within_bounds_the_cost(
            start in arb_doc(),
            patches in prop::collection::vec(arb_ops(), 1..8),
            limit in 300usize..3000,
        ) {
            let mut doc = start.clone();
            let mut cost = crate::value_cost(&doc);
            let mut plain = start;
            for ops in &patches {
                let before = (doc.clone(), cost);
                let applied = apply(&mut plain, ops).is_ok();
                match apply_within(&mut doc, ops, &mut cost, limit) {
                    Ok(()) => {
                        prop_assert!(applied);
                        prop_assert_eq!(&doc, &plain);
                        let exact = crate::value_cost(&doc);
                        prop_assert!(cost <= limit.max(before.1), "estimate {} over {}", cost, limit);
                        prop_assert!(exact <= 2 * cost.max(before.1) + 256, "exact {} vs estimate {}", exact, cost);
                    }
                    Err(err) => {
                        prop_assert_eq!(&doc, &before.0);
                        prop_assert_eq!(cost, before.1);
                        if err.reason == TOO_LARGE {
                            prop_assert!(applied, "only patches that apply are too large");
                            prop_assert!(crate::value_cost(&plain) > limit);
                        }
                        plain = doc.clone();
                    }
                }
            }
        }
    }
}
