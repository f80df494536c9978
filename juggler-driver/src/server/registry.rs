//! [`Registry`]: the connections a server accepted, which closing the
//! server closes.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::budget::MemoryBudget;
use crate::connection::Shared;
use crate::Connection;

/// The connections a server accepted, so that closing the server closes
/// them all, and the byte budget they share. Holds no handle: it never
/// keeps a connection open.
pub struct Registry {
    inner: Mutex<RegistryInner>,
    budget: Arc<MemoryBudget>,
}

#[derive(Default)]
struct RegistryInner {
    /// Every connection added and not yet pruned: the live ones, and those
    /// that ended since the last prune.
    connections: Vec<Weak<dyn Registered>>,
    /// Prune when `connections` grows to this length: twice what the last
    /// prune left, so adding stays O(1) amortized however many are open.
    prune_at: usize,
    closing: bool,
}

/// The least `prune_at`.
const MIN_PRUNE_AT: usize = 64;

impl RegistryInner {
    /// Drops the connections that ended.
    fn prune(&mut self) {
        self.connections.retain(is_live);
        self.prune_at = (self.connections.len() * 2).max(MIN_PRUNE_AT);
    }
}

/// A server connection of any generation, as its server's [`Registry`]
/// sees it.
pub(crate) trait Registered: Send + Sync {
    /// Its socket is gone.
    fn is_done(&self) -> bool;
    /// Closes it.
    fn close(&self);
    /// Waits until its socket is gone.
    fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_>;
    /// Its close was cut off at the close timeout.
    fn close_timed_out(&self) -> bool;
}

impl Registered for Shared {
    fn is_done(&self) -> bool {
        Shared::is_done(self)
    }
    fn close(&self) {
        Shared::close(self)
    }
    fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_> {
        Box::pin(Shared::wait_done(self))
    }
    fn close_timed_out(&self) -> bool {
        Shared::close_timed_out(self)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(MemoryBudget::new(None))
    }
}

fn is_live(weak: &Weak<dyn Registered>) -> bool {
    weak.upgrade()
        .is_some_and(|connection| !connection.is_done())
}

impl Registry {
    /// A registry whose connections share `budget`.
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Registry {
            inner: Mutex::default(),
            budget,
        }
    }

    /// The byte budget its connections share.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// Adds an accepted connection; once the server is closing, closes it
    /// too and returns `false` (it is still waited for).
    pub fn add(&self, connection: &Connection) -> bool {
        let shared: Arc<dyn Registered> = connection.shared_arc().clone();
        self.add_registered(shared)
    }

    /// [`add`](Self::add) for a connection of any generation.
    pub(crate) fn add_registered(&self, connection: Arc<dyn Registered>) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.connections.len() >= inner.prune_at {
            inner.prune();
        }
        inner.connections.push(Arc::downgrade(&connection));
        if inner.closing {
            drop(inner);
            connection.close();
            return false;
        }
        true
    }

    /// How many accepted connections are still open or closing.
    pub fn live(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .connections
            .iter()
            .filter(|weak| is_live(weak))
            .count()
    }

    /// Whether fewer than `max` accepted connections are open or closing.
    /// Looks at each connection only when the ones added since the last
    /// look could make `max`, so a server with many open connections
    /// admits one in O(1) time.
    pub fn has_room(&self, max: usize) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.connections.len() < max {
            return true;
        }
        inner.prune();
        inner.connections.len() < max
    }

    /// Refuses new connections, closes every live one, and waits until all
    /// have released their sockets (each takes at most its close timeout).
    pub async fn close_all(&self) -> ShutdownSummary {
        self.start_closing();
        self.wait_all_done().await
    }

    /// Closes every live connection; from now on, connections added are
    /// closed on arrival (and still waited for by
    /// [`wait_all_done`](Self::wait_all_done)).
    pub fn start_closing(&self) {
        let live: Vec<Arc<dyn Registered>> = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner.closing = true;
            inner.connections.iter().filter_map(Weak::upgrade).collect()
        };
        for connection in &live {
            connection.close();
        }
    }

    /// Waits until every connection added so far has released its socket.
    pub async fn wait_all_done(&self) -> ShutdownSummary {
        let live: Vec<Arc<dyn Registered>> = {
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .connections
                .drain(..)
                .filter_map(|weak| weak.upgrade())
                .collect()
        };
        for connection in &live {
            connection.wait_done().await;
        }
        ShutdownSummary {
            closed: live.len(),
            timed_out: live
                .iter()
                .filter(|connection| connection.close_timed_out())
                .count(),
        }
    }
}

/// What closing a server did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownSummary {
    /// Connections that were open or closing when the close began.
    pub closed: usize,
    /// How many of them did not finish their close handshake within the
    /// shutdown timeout and were cut off at their deadline.
    pub timed_out: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered connection whose end the test decides.
    #[derive(Default)]
    struct Fake {
        done: std::sync::atomic::AtomicBool,
    }

    impl Registered for Fake {
        fn is_done(&self) -> bool {
            self.done.load(std::sync::atomic::Ordering::SeqCst)
        }
        fn close(&self) {}
        fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_> {
            Box::pin(std::future::ready(()))
        }
        fn close_timed_out(&self) -> bool {
            false
        }
    }

    fn held(registry: &Registry) -> usize {
        registry.inner.lock().unwrap().connections.len()
    }

    #[test]
    fn the_registry_forgets_ended_connections_as_it_grows() {
        let registry = Registry::default();
        let mut open: Vec<Arc<Fake>> = Vec::new();
        for number in 0..10_000 {
            let connection = Arc::new(Fake::default());
            registry.add_registered(connection.clone());
            // Nine in ten end at once (half of those dropped, half done).
            match number % 10 {
                0 => open.push(connection),
                1..=5 => drop(connection),
                _ => connection
                    .done
                    .store(true, std::sync::atomic::Ordering::SeqCst),
            }
        }
        assert_eq!(registry.live(), 1_000);
        // At most twice the live ones after the last prune, plus the
        // ones added since.
        assert!(held(&registry) < 4_000, "holds {}", held(&registry));
    }

    #[test]
    fn has_room_counts_only_open_connections() {
        let registry = Registry::default();
        let first: Vec<Arc<Fake>> = (0..3).map(|_| Arc::new(Fake::default())).collect();
        for connection in &first {
            registry.add_registered(connection.clone());
        }
        assert!(registry.has_room(4));
        assert!(!registry.has_room(3));
        first[0]
            .done
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(registry.has_room(3));
        drop(first);
        assert!(registry.has_room(1));
        assert!(!registry.has_room(0));
    }
}
