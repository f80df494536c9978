//! The RFC 6902 diff and patch the engine uses.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchError, PatchOperation, RemoveOperation, ReplaceOperation};
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

/// Applies RFC 6902 operations (all six ops) to `doc`, whole or not at all:
/// on error `doc` is left exactly as it was.
pub fn apply(doc: &mut Value, ops: &[PatchOperation]) -> Result<(), PatchError> {
    json_patch::patch(doc, ops)
}

#[cfg(test)]
mod tests {
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
}
