//! Change callbacks of the application (the reference's
//! `register_change_cb`), for 0.6/0.7 states: called outside every lock,
//! unregistered when their handle drops.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

type Callback = Arc<dyn Fn() + Send + Sync>;

/// The callbacks of one state.
#[derive(Default)]
pub(crate) struct Callbacks {
    /// How many are registered, so that a change with none takes no lock.
    count: AtomicUsize,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    by_id: BTreeMap<u64, Callback>,
}

impl Callbacks {
    pub(crate) fn register(
        self: &Arc<Self>,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> StateCallbackHandle {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let id = registry.next_id;
        registry.next_id += 1;
        registry.by_id.insert(id, Arc::new(callback));
        self.count.store(registry.by_id.len(), Ordering::Release);
        StateCallbackHandle {
            callbacks: Arc::downgrade(self),
            id,
        }
    }

    /// Calls every callback once, in the order they were registered. The
    /// caller holds no lock: a callback may read the state.
    pub(crate) fn call_all(&self) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let callbacks: Vec<Callback> = self
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .values()
            .cloned()
            .collect();
        for callback in callbacks {
            callback();
        }
    }

    fn unregister(&self, id: u64) {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        registry.by_id.remove(&id);
        self.count.store(registry.by_id.len(), Ordering::Release);
    }
}

/// Registration of a 0.6/0.7 `register_change_cb` callback; dropping it
/// unregisters the callback.
#[must_use = "the callback is unregistered when the handle is dropped"]
pub struct StateCallbackHandle {
    callbacks: Weak<Callbacks>,
    id: u64,
}

impl StateCallbackHandle {
    /// Unregisters the callback (as dropping the handle does).
    pub fn cancel(self) {}
}

impl fmt::Debug for StateCallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateCallbackHandle")
            .field("id", &self.id)
            .finish()
    }
}

impl Drop for StateCallbackHandle {
    fn drop(&mut self) {
        if let Some(callbacks) = self.callbacks.upgrade() {
            callbacks.unregister(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_run_until_their_handle_drops() {
        let callbacks = Arc::new(Callbacks::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let handle = callbacks.register(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        callbacks.call_all();
        callbacks.call_all();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        drop(handle);
        callbacks.call_all();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
