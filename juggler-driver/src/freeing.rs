//! Freeing a replaced state a slice at a time, between a connection
//! writer's other work (both generations): freeing 100,000 entries takes as
//! long as diffing them (tens of milliseconds), and neither the caller of
//! `set_state` / `set_local_data` nor the connection's next frame should
//! wait for it.

use std::sync::Arc;

use serde_json::Value;

/// Entries freed per slice.
const SLICE: usize = 1024;

/// A replaced state waiting for the writer's next write, kept in the
/// connection's state.
#[derive(Default)]
pub(crate) struct Retired(Option<Arc<Value>>);

impl Retired {
    /// Holds `replaced` for the writer when it has frames to write now, or
    /// gives it back to free at once; also gives back the one held before
    /// (so at most one is ever held).
    pub(crate) fn hold(&mut self, replaced: Arc<Value>, frames_queued: bool) -> Option<Arc<Value>> {
        if !frames_queued {
            return Some(replaced);
        }
        self.0.replace(replaced)
    }

    /// The state to free, for the writer after a write.
    pub(crate) fn take(&mut self) -> Option<Arc<Value>> {
        self.0.take()
    }
}

/// Lets the executor run the other tasks it has ready before this one
/// goes on (any executor: the task wakes itself and yields once).
pub(crate) async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return std::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await;
}

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
    fn a_retired_state_is_held_only_while_frames_are_queued() {
        let mut retired = Retired::default();
        let first = Arc::new(json!({"first": 1}));
        assert!(retired.hold(first.clone(), false).is_some());
        assert!(retired.take().is_none());
        assert!(retired.hold(first.clone(), true).is_none());
        let given_back = retired.hold(Arc::new(json!({"second": 2})), true);
        assert!(given_back.is_some_and(|state| Arc::ptr_eq(&state, &first)));
        assert_eq!(retired.take(), Some(Arc::new(json!({"second": 2}))));
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
