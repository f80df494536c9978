//! What a decoded JSON value costs in memory, for budgets in bytes.
//!
//! Text is a poor measure of it: `[0,0,0,…]` takes 2 bytes of text per
//! element and 32 bytes decoded (a `Value`), 16 times as much. Budgets
//! that hold decoded values therefore count this estimate instead.

use serde_json::Value;

/// An estimate of the bytes one entry of a JSON object takes besides its
/// key's text and its value's heap: the key `String` (24), the `Value`
/// (32), and the B-tree node around them at half fill.
pub(crate) const OBJECT_ENTRY: usize = 2 * (24 + std::mem::size_of::<Value>());

/// The bytes `value` holds: its own `Value` plus everything it owns on the
/// heap (strings and arrays by capacity, objects per entry). An estimate
/// that leaves out the allocator's own overhead, and never less than what
/// the data needs. Walks the whole value: O(size).
///
/// ```
/// use juggler_core::{value_cost, Value};
///
/// let zeros: Value = serde_json::from_str("[0,0,0,0]").unwrap();
/// assert!(value_cost(&zeros) >= 5 * std::mem::size_of::<Value>());
/// ```
pub fn value_cost(value: &Value) -> usize {
    cost_and_depth(value).0
}

/// [`value_cost`] and the levels of containers in `value` (0 for a
/// scalar, 1 for `[]` or `{}`), in one walk: a whole new document is
/// measured both ways, and it may be large.
pub(crate) fn cost_and_depth(value: &Value) -> (usize, usize) {
    // An explicit stack: a value nests as deep as the decoder allowed,
    // which must not become recursion depth here.
    let mut pending = vec![(value, 0)];
    let mut cost = std::mem::size_of::<Value>();
    let mut depth = 0;
    while let Some((value, level)) = pending.pop() {
        match value {
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
            Value::String(text) => cost += text.capacity(),
            Value::Array(items) => {
                depth = depth.max(level + 1);
                cost += items.capacity() * std::mem::size_of::<Value>();
                pending.extend(items.iter().map(|item| (item, level + 1)));
            }
            Value::Object(entries) => {
                depth = depth.max(level + 1);
                for (key, item) in entries {
                    cost += OBJECT_ENTRY + key.capacity();
                    pending.push((item, level + 1));
                }
            }
        }
    }
    (cost, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost_of(text: &str) -> usize {
        value_cost(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn small_values_cost_at_least_their_size() {
        let value = std::mem::size_of::<Value>();
        assert_eq!(cost_of("null"), value);
        assert_eq!(cost_of("12.5"), value);
        assert!(cost_of("\"abcdef\"") >= value + 6);
        assert!(cost_of("[1,2,3]") >= 4 * value);
        assert!(cost_of(r#"{"key":[true]}"#) >= OBJECT_ENTRY + 3 + 2 * value);
    }

    #[test]
    fn the_depth_is_the_one_depth_counts() {
        for text in [
            "1",
            "[]",
            "{}",
            r#"{"a": [1, {"b": []}], "c": 2}"#,
            "[[[[0]]], []]",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            let (cost, depth) = cost_and_depth(&value);
            assert_eq!(depth, crate::depth::depth(&value), "{text}");
            assert_eq!(cost, value_cost(&value), "{text}");
        }
    }

    #[test]
    fn dense_arrays_cost_sixteen_times_their_text() {
        let text = format!("[{}0]", "0,".repeat(99_999));
        let ratio = cost_of(&text) as f64 / text.len() as f64;
        assert!((16.0..40.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn deep_values_do_not_recurse() {
        let depth = 200_000;
        let mut value = Value::Null;
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        assert!(value_cost(&value) > depth * std::mem::size_of::<Value>());
        assert_eq!(cost_and_depth(&value).1, depth);
        // Dropping it would recurse; this test is about the cost walk.
        std::mem::forget(value);
    }
}
