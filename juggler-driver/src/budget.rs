//! Byte budgets for what connections hold for the application.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// A byte budget that many connections share: a server's bound on what all
/// its connections together hold of the peers' messages that the
/// application has not received yet (counted as [`value_cost`], the decoded
/// size).
///
/// While it is full, a connection that already holds anything stops reading
/// its socket (TCP backpressure) until the application receives; one that
/// holds nothing still reads, so well-behaved clients are served while
/// others flood. The largest holders are thus the ones paused. Over the
/// limit by at most one read batch per connection (see docs/security.md).
///
/// [`value_cost`]: juggler_core::value_cost
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    /// The most `used` has been.
    peak: AtomicUsize,
    /// Woken when use falls below the limit.
    room: Notify,
    /// Woken when use reaches the limit.
    filled: Notify,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("used", &self.used())
            .field("limit", &self.limit)
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes; `None` for no limit (use is still
    /// counted).
    pub fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit: limit.unwrap_or(usize::MAX),
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            room: Notify::new(),
            filled: Notify::new(),
        })
    }

    /// The limit in bytes (`usize::MAX` for none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The most bytes it has held at once: how close to the limit (or how
    /// far past it, by the reads it allows) use has come.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Whether use has reached the limit.
    pub fn is_full(&self) -> bool {
        self.used() >= self.limit
    }

    /// Completes once use reaches the limit (at once if it has): for
    /// alerts and tests.
    pub async fn until_full(&self) {
        loop {
            let filled = self.filled.notified();
            if self.is_full() {
                return;
            }
            filled.await;
        }
    }

    pub(crate) fn charge(&self, bytes: usize) {
        crate::metrics::receive_buffer_moved(bytes, 0);
        let before = self.used.fetch_add(bytes, Ordering::AcqRel);
        self.peak.fetch_max(before + bytes, Ordering::AcqRel);
        if before < self.limit && before + bytes >= self.limit {
            self.filled.notify_waiters();
        }
    }

    pub(crate) fn release(&self, bytes: usize) {
        // Saturating: a miscount must not wrap to "full" and stall every
        // reader; tests catch it with the assertion.
        let before = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            })
            .unwrap_or_else(|used| used);
        debug_assert!(before >= bytes, "released more than was charged");
        let after = before.saturating_sub(bytes);
        crate::metrics::receive_buffer_moved(0, before - after);
        if before >= self.limit && after < self.limit {
            self.room.notify_waiters();
        }
    }

    /// A future woken when use falls below the limit; create it before
    /// checking, so no release between the check and the wait is missed.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.room.notified()
    }
}

/// Bytes charged to a budget that nobody keeps yet: released when dropped
/// (a read batch dropped with its connection, a filter that panicked),
/// kept by whoever takes it over with [`keep`](Self::keep).
pub(crate) struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Charge {
    pub(crate) fn new(budget: &Arc<MemoryBudget>, bytes: usize) -> Self {
        budget.charge(bytes);
        Charge {
            budget: budget.clone(),
            bytes,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Hands the bytes over: the caller accounts for them from now on.
    pub(crate) fn keep(mut self) -> usize {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_releases_cross_the_limit_both_ways() {
        let budget = MemoryBudget::new(Some(100));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let room = budget.room();
            let full = std::pin::pin!(budget.until_full());
            budget.charge(60);
            assert!(!budget.is_full());
            budget.charge(40);
            assert!(budget.is_full());
            full.await;
            budget.release(1);
            room.await;
            assert_eq!(budget.used(), 99);
            budget.release(99);
            assert_eq!(budget.used(), 0);
            assert_eq!(budget.peak(), 100);
        });
    }
}
