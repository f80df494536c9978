//! The payloads and states every scenario uses. `python_peer_bench.py`
//! builds exactly the same ones; keep the two in step.

use serde_json::{json, Map, Value};

/// One benchmark message: a sequence number (checked by the receiver for
/// count and order) and padding.
pub fn message(seq: u64, padding: &str) -> Value {
    json!({"seq": seq, "data": padding})
}

/// Padding that makes [`message`]'s JSON text about `size` bytes long for
/// six-digit sequence numbers (the message, not the frame around it).
pub fn padding(size: usize) -> String {
    let overhead = message(100_000, "").to_string().len();
    "x".repeat(size.saturating_sub(overhead))
}

/// The JSON text of the MESSAGE frame that carries `message`, as the
/// Juggler wire format has it (for the raw baselines).
pub fn message_frame(message: &Value) -> String {
    json!({"type": "MESSAGE", "payload": message}).to_string()
}

/// The key of entry `index` in a benchmark state.
pub fn key(index: usize) -> String {
    format!("k{index:06}")
}

/// Entry `index` of a benchmark state at `version`.
pub fn entry(index: usize, version: u64) -> Value {
    json!({"id": index, "name": format!("item {index}"), "v": version})
}

/// A state of `keys` entries, all at version 0: an object of small
/// objects, `{"k000000": {"id": 0, "name": "item 0", "v": 0}, ...}`.
pub fn state(keys: usize) -> Value {
    let map: Map<String, Value> = (0..keys).map(|i| (key(i), entry(i, 0))).collect();
    Value::Object(map)
}

/// Which entry round `round` of a state scenario changes.
pub fn changed_index(round: u64, keys: usize) -> usize {
    (round.wrapping_mul(7919) % keys as u64) as usize
}

/// The version of entry `index` in `state`, if it has one.
pub fn version_of(state: &Value, index: usize) -> Option<u64> {
    state.get(key(index))?.get("v")?.as_u64()
}

/// The RFC 6902 op that sets entry `index`'s version to `version`: the
/// ops path's change.
pub fn version_op(index: usize, version: u64) -> Result<juggler_core::PatchOperation, String> {
    serde_json::from_value(json!({
        "op": "replace", "path": format!("/{}/v", key(index)), "value": version,
    }))
    .map_err(|err| format!("cannot build the operation: {err}"))
}

/// The fixed entry the fan-out scenarios change.
pub const FANOUT_INDEX: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes_are_close() {
        for size in [100, 10_240] {
            let text = message(123_456, &padding(size)).to_string();
            assert_eq!(text.len(), size);
        }
    }

    #[test]
    fn state_shape() {
        let s = state(3);
        assert_eq!(version_of(&s, 2), Some(0));
        assert_eq!(s.as_object().unwrap().len(), 3);
        assert!(changed_index(5, 1000) < 1000);
    }
}
