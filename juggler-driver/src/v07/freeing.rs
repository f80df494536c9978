//! Freeing a replaced state a slice at a time, between the writer's other
//! work: freeing 100,000 entries takes as long as diffing them (tens of
//! milliseconds), and neither the caller of `set_state` nor the next frame
//! of the connection should wait for it.

use std::sync::Arc;

use serde_json::Value;

/// Entries freed per slice.
const SLICE: usize = 1024;

/// The states the writer is freeing: at most one at a time.
#[derive(Default)]
pub(crate) struct Freeing {
    entries: Option<Entries>,
}

enum Entries {
    Object(serde_json::map::IntoIter),
    Array(std::vec::IntoIter<Value>),
}

impl Freeing {
    /// Takes `state` to free by slices. One still held elsewhere is only
    /// released; a scalar is freed at once, as is the state taken before
    /// when it is not done yet (so at most one is ever held here).
    pub(crate) fn push(&mut self, state: Arc<Value>) {
        self.entries = match Arc::try_unwrap(state) {
            Ok(Value::Object(map)) => Some(Entries::Object(map.into_iter())),
            Ok(Value::Array(items)) => Some(Entries::Array(items.into_iter())),
            Ok(_) | Err(_) => return,
        };
    }

    /// Whether something is left to free.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_none()
    }

    /// Frees the next slice of entries.
    pub(crate) fn free_slice(&mut self) {
        let freed = match &mut self.entries {
            Some(Entries::Object(entries)) => entries.take(SLICE).count(),
            Some(Entries::Array(items)) => items.take(SLICE).count(),
            None => return,
        };
        if freed < SLICE {
            self.entries = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn big_object(entries: usize) -> Value {
        Value::Object(
            (0..entries)
                .map(|i| (format!("k{i}"), json!({"v": i})))
                .collect(),
        )
    }

    #[test]
    fn a_large_state_is_freed_over_several_slices() {
        let mut freeing = Freeing::default();
        freeing.push(Arc::new(big_object(3 * SLICE)));
        let mut slices = 0;
        while !freeing.is_empty() {
            freeing.free_slice();
            slices += 1;
        }
        assert_eq!(slices, 4);
    }

    #[test]
    fn a_state_held_elsewhere_or_a_scalar_is_not_kept() {
        let mut freeing = Freeing::default();
        let shared = Arc::new(big_object(10));
        freeing.push(shared.clone());
        assert!(freeing.is_empty());
        assert_eq!(Arc::strong_count(&shared), 1);
        freeing.push(Arc::new(json!(1)));
        assert!(freeing.is_empty());
    }

    #[test]
    fn arrays_are_freed_by_slices_too() {
        let mut freeing = Freeing::default();
        freeing.push(Arc::new(Value::Array(vec![json!(1); SLICE + 1])));
        freeing.free_slice();
        assert!(!freeing.is_empty());
        freeing.free_slice();
        assert!(freeing.is_empty());
    }
}
