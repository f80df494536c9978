//! A new state's diff, run on the caller's thread before the connection's
//! lock is taken (both generations' `set_state`, and their flushes).

use std::sync::Arc;

use juggler_core::PatchOperation;
use serde_json::Value;

/// How many times a flush diffs an unsent change outside the lock while
/// the application keeps changing the data, before the engine's flush
/// diffs the rest itself.
const FLUSH_DIFF_ROUNDS: usize = 3;

/// The state to diff `next` against outside the lock: the engine's
/// `current` state, when the peer holds it (`in_sync`: nothing unsent, and open) and both are
/// objects or both arrays. Otherwise `None`, and the engine diffs at the
/// sync: a change of the whole value has nothing to compare.
///
/// The caller keeps the returned `Arc` until after the lock is released,
/// so a replaced large state is freed there, not under the lock.
pub(crate) fn diff_base(current: &Arc<Value>, in_sync: bool, next: &Value) -> Option<Arc<Value>> {
    let diffable = matches!(
        (&**current, next),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    );
    (diffable && in_sync).then(|| current.clone())
}

/// A flush's diff outside the lock (both generations): while `unsent`
/// (under the lock) names the two versions an unsent change needs
/// diffed, diffs them here and hands the ops to `hand_back` (under the
/// lock again), which takes the replaced version or gives it back to be
/// freed here. Up to [`FLUSH_DIFF_ROUNDS`] rounds while the data keeps
/// changing; the engine's flush diffs what is left.
pub(crate) fn diff_unsent(
    unsent: impl Fn() -> Option<(Arc<Value>, Arc<Value>)>,
    mut hand_back: impl FnMut(Arc<Value>, &Arc<Value>, Vec<PatchOperation>) -> Option<Arc<Value>>,
) {
    for _ in 0..FLUSH_DIFF_ROUNDS {
        let Some((base, current)) = unsent() else {
            return;
        };
        let ops = juggler_core::diff(&base, &current);
        let free_now = hand_back(base, &current, ops);
        drop((current, free_now));
    }
}
