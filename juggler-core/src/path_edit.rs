//! Edits of a state at a JSON pointer, each as one JSON Patch op: the
//! reference's `json.Storage` `set(path, value)` and `remove(path)`,
//! so that a change at a path goes to the peer as that one op.

use json_patch::jsonptr::{Pointer, PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

/// Why an edit at a pointer can't be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The pointer is not an RFC 6901 JSON pointer (`""`, `"/a/0"`).
    #[error("not a JSON pointer: {0:?}")]
    InvalidPointer(String),
    /// A value on the way is neither an object nor an array.
    #[error("{0:?} is inside a value that is not an object or an array")]
    NotAContainer(String),
    /// An array index on the way is not one of the array's, nor its end.
    #[error("{0:?} is not an index of its array")]
    BadIndex(String),
    /// The whole state can be replaced, not removed.
    #[error("the whole state cannot be removed")]
    RemoveRoot,
}

/// The value at `pointer` in `state`, if there is one.
pub fn get_at<'v>(state: &'v Value, pointer: &str) -> Result<Option<&'v Value>, PathError> {
    let pointer = parse(pointer)?;
    Ok(pointer.resolve(state).ok())
}

/// The one op that sets `pointer` in `state` to `value`, as
/// `json.Storage.set` does.
///
/// Missing objects on the way are created, inside the one op: the op adds
/// the first missing member with the rest nested in it. An array element
/// is replaced; the index one past the end (or `-`) appends.
///
/// ```
/// use juggler_core::path_edit::set_op;
/// use serde_json::json;
///
/// let state = json!({"plant": {}});
/// let op = set_op(&state, "/plant/3/level", json!(7)).unwrap();
/// assert_eq!(
///     serde_json::to_value(&op).unwrap(),
///     json!({"op": "add", "path": "/plant/3", "value": {"level": 7}})
/// );
/// ```
pub fn set_op(state: &Value, pointer: &str, value: Value) -> Result<PatchOperation, PathError> {
    let pointer = parse(pointer)?;
    let tokens: Vec<Token<'_>> = pointer.tokens().collect();
    let mut here = state;
    for (depth, token) in tokens.iter().enumerate() {
        let last = depth + 1 == tokens.len();
        let path = || PointerBuf::from_tokens(tokens[..=depth].iter().cloned());
        match here {
            Value::Object(members) => match members.get(token.decoded().as_ref()) {
                Some(next) if !last => here = next,
                _ => {
                    let value = nest(&tokens[depth + 1..], value);
                    return Ok(add(path(), value));
                }
            },
            Value::Array(items) => {
                let index = index_of(token, items.len()).ok_or_else(|| bad_index(&path()))?;
                match items.get(index) {
                    Some(next) if !last => here = next,
                    Some(_) => return Ok(replace(path(), value)),
                    None if last => return Ok(add(path(), value)),
                    // An element past the end can't hold the missing rest.
                    None => return Err(bad_index(&path())),
                }
            }
            _ => return Err(PathError::NotAContainer(pointer.to_string())),
        }
    }
    Ok(replace(PointerBuf::root(), value))
}

/// The one op that removes `pointer` from `state`, or `None` when there
/// is nothing there (nothing to send), as `json.Storage.remove`.
pub fn remove_op(state: &Value, pointer: &str) -> Result<Option<PatchOperation>, PathError> {
    let parsed = parse(pointer)?;
    if parsed.is_root() {
        return Err(PathError::RemoveRoot);
    }
    Ok(parsed.resolve(state).ok().map(|_| {
        PatchOperation::Remove(RemoveOperation {
            path: parsed.to_buf(),
        })
    }))
}

fn parse(pointer: &str) -> Result<&Pointer, PathError> {
    Pointer::parse(pointer).map_err(|_| PathError::InvalidPointer(pointer.to_owned()))
}

/// `value` inside objects keyed by `tokens`, outermost first.
pub(crate) fn nest(tokens: &[Token<'_>], value: Value) -> Value {
    tokens.iter().rev().fold(value, |value, token| {
        let mut members = Map::new();
        members.insert(token.decoded().into_owned(), value);
        Value::Object(members)
    })
}

/// The index `token` names in an array of `len`: one of its elements or
/// its end (`len`, or `-`).
fn index_of(token: &Token<'_>, len: usize) -> Option<usize> {
    match token.encoded() {
        "-" => Some(len),
        // RFC 6901: no leading zeros, no sign.
        digits if digits == "0" || !digits.starts_with('0') => {
            digits.parse().ok().filter(|index| *index <= len)
        }
        _ => None,
    }
}

fn bad_index(path: &PointerBuf) -> PathError {
    PathError::BadIndex(path.to_string())
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

pub(crate) fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(state: &Value, op: PatchOperation) -> Value {
        let mut state = state.clone();
        json_patch::patch(&mut state, &[op]).expect("the op applies");
        state
    }

    fn op_json(op: &PatchOperation) -> Value {
        serde_json::to_value(op).unwrap()
    }

    #[test]
    fn setting_an_existing_member_adds_over_it() {
        let state = json!({"counter": 1, "log": []});
        let op = set_op(&state, "/counter", json!(2)).unwrap();
        assert_eq!(
            op_json(&op),
            json!({"op": "add", "path": "/counter", "value": 2})
        );
        assert_eq!(applied(&state, op), json!({"counter": 2, "log": []}));
    }

    #[test]
    fn missing_objects_are_created_in_one_op() {
        let state = json!({"a": {}});
        let op = set_op(&state, "/a/b/c~1d", json!(true)).unwrap();
        assert_eq!(
            op_json(&op),
            json!({"op": "add", "path": "/a/b", "value": {"c/d": true}})
        );
        assert_eq!(applied(&state, op), json!({"a": {"b": {"c/d": true}}}));
    }

    #[test]
    fn array_elements_are_replaced_and_the_end_appends() {
        let state = json!({"log": ["x", "y"]});
        let replaced = set_op(&state, "/log/0", json!("z")).unwrap();
        assert_eq!(op_json(&replaced)["op"], "replace");
        assert_eq!(applied(&state, replaced), json!({"log": ["z", "y"]}));
        for end in ["/log/2", "/log/-"] {
            let appended = set_op(&state, end, json!("w")).unwrap();
            assert_eq!(applied(&state, appended), json!({"log": ["x", "y", "w"]}));
        }
    }

    #[test]
    fn the_empty_pointer_replaces_the_whole_state() {
        let op = set_op(&json!({"a": 1}), "", json!([1])).unwrap();
        assert_eq!(
            op_json(&op),
            json!({"op": "replace", "path": "", "value": [1]})
        );
    }

    #[test]
    fn impossible_edits_are_typed_errors() {
        let state = json!({"n": 1, "log": ["x"]});
        assert_eq!(
            set_op(&state, "n", json!(0)),
            Err(PathError::InvalidPointer("n".into()))
        );
        assert!(matches!(
            set_op(&state, "/n/m", json!(0)),
            Err(PathError::NotAContainer(_))
        ));
        for bad in ["/log/5", "/log/01", "/log/x", "/log/3/y"] {
            assert!(
                matches!(set_op(&state, bad, json!(0)), Err(PathError::BadIndex(_))),
                "{bad}"
            );
        }
        assert_eq!(remove_op(&state, ""), Err(PathError::RemoveRoot));
    }

    #[test]
    fn remove_is_one_op_or_nothing() {
        let state = json!({"a": {"b": 1}});
        let op = remove_op(&state, "/a/b").unwrap().expect("b is there");
        assert_eq!(applied(&state, op), json!({"a": {}}));
        assert_eq!(remove_op(&state, "/a/c"), Ok(None));
    }

    #[test]
    fn get_reads_at_the_pointer() {
        let state = json!({"a": [{"b": 2}]});
        assert_eq!(get_at(&state, "/a/0/b"), Ok(Some(&json!(2))));
        assert_eq!(get_at(&state, "/a/1"), Ok(None));
        assert_eq!(get_at(&state, ""), Ok(Some(&state)));
    }
}
