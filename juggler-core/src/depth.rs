//! Keeps remote data shallow enough to walk, clone and drop recursively.
//!
//! The parser refuses a frame nested deeper than 128 levels, but patch ops
//! can build depth across ops and frames (add `{}`, move a subtree into
//! it, repeat). Deep data would overflow the stack when it is dropped,
//! compared or encoded, so the engine refuses any DATA frame that could make
//! remote data deeper than [`MAX_DEPTH`], before applying it.

use json_patch::PatchOperation;
use serde_json::Value;

/// Deepest nesting of containers remote data may reach (the parser's limit).
pub const MAX_DEPTH: usize = 128;

/// Levels of containers in `value`: 0 for a scalar, 1 for `[]` or `{}`.
/// Stops counting past `MAX_DEPTH + 1`, so a deep value costs no more.
pub(crate) fn depth(value: &Value) -> usize {
    fn walk(value: &Value, level: usize) -> usize {
        if level > MAX_DEPTH {
            return level;
        }
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| walk(item, level + 1))
                .max()
                .unwrap_or(level + 1),
            Value::Object(members) => members
                .values()
                .map(|item| walk(item, level + 1))
                .max()
                .unwrap_or(level + 1),
            _ => level,
        }
    }
    walk(value, 0)
}

/// An upper bound of the depth `doc` reaches after `ops`, starting from an
/// upper bound `bound` of its depth now; `None` past [`MAX_DEPTH`].
///
/// A value placed at a path of n tokens adds n levels; a subtree moved or
/// copied from a path of m tokens is at most `bound - m` deep. The bound
/// is loose (it never shrinks) but costs only the ops themselves.
pub(crate) fn bound_after(bound: usize, ops: &[PatchOperation]) -> Option<usize> {
    let mut bound = bound;
    for op in ops {
        let reached = match op {
            PatchOperation::Add(op) => op.path.count() + depth(&op.value),
            PatchOperation::Replace(op) => op.path.count() + depth(&op.value),
            PatchOperation::Move(op) => (op.path.count() + bound).saturating_sub(op.from.count()),
            PatchOperation::Copy(op) => (op.path.count() + bound).saturating_sub(op.from.count()),
            PatchOperation::Remove(_) | PatchOperation::Test(_) => 0,
        };
        bound = bound.max(reached);
        if bound > MAX_DEPTH {
            return None;
        }
    }
    Some(bound)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ops(value: Value) -> Vec<PatchOperation> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn depth_counts_container_levels() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"a": [1, {"b": []}]})), 4);
    }

    #[test]
    fn renames_and_reorders_do_not_deepen() {
        let rename = ops(
            json!([{"op": "move", "from": "/a/b", "path": "/a/c"}, {"op": "move", "from": "/l/2", "path": "/l/0"}]),
        );
        assert_eq!(bound_after(10, &rename), Some(10));
    }

    #[test]
    fn chained_moves_into_new_containers_are_refused() {
        let mut frame = Vec::new();
        for _ in 0..200 {
            frame.extend(ops(json!([
                {"op": "add", "path": "/y", "value": {}},
                {"op": "move", "from": "/x", "path": "/y/x"},
                {"op": "move", "from": "/y", "path": "/x"},
            ])));
        }
        assert_eq!(bound_after(1, &frame), None);
        assert!(bound_after(1, &frame[..3 * 50]).is_some());
    }
}
