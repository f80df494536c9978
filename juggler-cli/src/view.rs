//! What `juggler watch` prints for each state it sees: the whole state,
//! the part at `--path`, or a patch from what it printed last.

use serde_json::{json, Value};

/// The printed view of the remote state.
#[derive(Debug, Default)]
pub struct View {
    /// After the first line, print patches.
    patch: bool,
    /// Only this part of the state (a JSON pointer).
    path: Option<String>,
    /// What the last line showed.
    last: Option<Value>,
}

impl View {
    /// A view printing patches or not, of the part at `path` or all.
    pub fn new(patch: bool, path: Option<String>) -> Self {
        View {
            patch,
            path,
            last: None,
        }
    }

    /// The line for `state`, or `None` when what the view shows did not
    /// change. A part missing from the state shows as `null`.
    pub fn next_line(&mut self, state: &Value) -> Option<Value> {
        let part = match &self.path {
            Some(pointer) => state.pointer(pointer).unwrap_or(&Value::Null),
            None => state,
        };
        if self.last.as_ref() == Some(part) {
            return None;
        }
        let line = match &self.last {
            Some(last) if self.patch => json!({ "patch": json_patch::diff(last, part) }),
            _ => json!({ "state": part }),
        };
        self.last = Some(part.clone());
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_the_whole_state() {
        let mut view = View::new(false, None);
        assert_eq!(
            view.next_line(&json!({"a": 1})),
            Some(json!({"state": {"a": 1}}))
        );
        assert_eq!(
            view.next_line(&json!({"a": 2})),
            Some(json!({"state": {"a": 2}}))
        );
        assert_eq!(view.next_line(&json!({"a": 2})), None);
    }

    #[test]
    fn patches_follow_the_first_state() {
        let mut view = View::new(true, None);
        assert_eq!(
            view.next_line(&json!({"a": 1})),
            Some(json!({"state": {"a": 1}}))
        );
        assert_eq!(
            view.next_line(&json!({"a": 2})),
            Some(json!({"patch": [{"op": "replace", "path": "/a", "value": 2}]}))
        );
    }

    #[test]
    fn a_path_shows_its_part_only_when_it_changes() {
        let mut view = View::new(false, Some("/a/b".into()));
        assert_eq!(
            view.next_line(&json!({"a": {"b": 1}, "c": 1})),
            Some(json!({"state": 1}))
        );
        assert_eq!(view.next_line(&json!({"a": {"b": 1}, "c": 2})), None);
        assert_eq!(
            view.next_line(&json!({"a": {"b": 2}, "c": 2})),
            Some(json!({"state": 2}))
        );
        assert_eq!(
            view.next_line(&json!({"c": 2})),
            Some(json!({"state": null}))
        );
    }
}
