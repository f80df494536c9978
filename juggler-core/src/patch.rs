//! The RFC 6902 diff and patch the engine uses.

use json_patch::{PatchError, PatchOperation};
use serde_json::Value;

/// The RFC 6902 operations that turn `from` into `to`.
///
/// Object members are visited in key order, so the output never depends on
/// hash iteration order; a change of the whole value is one `replace` at
/// path `""`. The reference peers (Python `jsonpatch`, JS `jiff`) apply it.
pub fn diff(from: &Value, to: &Value) -> Vec<PatchOperation> {
    json_patch::diff(from, to).0
}

/// Applies RFC 6902 operations (all six ops) to `doc`, whole or not at all:
/// on error `doc` is left exactly as it was.
pub fn apply(doc: &mut Value, ops: &[PatchOperation]) -> Result<(), PatchError> {
    json_patch::patch(doc, ops)
}
