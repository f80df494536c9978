//! How a connection's writer is woken, shared by the drivers of every
//! generation.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

thread_local! {
    /// The address of the [`WriterWake`] whose reader runs on this thread
    /// now, or 0.
    static READER_RUNNING: Cell<usize> = const { Cell::new(0) };
}

/// Wakes a writer that runs in the same task as its reader (the two
/// joined): from the reader, a flag the writer checks right after it in
/// the same poll; from anywhere else, a notify.
#[derive(Debug, Default)]
pub(crate) struct WriterWake {
    notify: Notify,
    kick: AtomicBool,
}

impl WriterWake {
    /// Wakes the writer. On the driver task's own thread, while its reader
    /// runs, a flag does: the writer is polled right after the reader in
    /// the same pass and checks it. Waking the running task instead would
    /// make the executor reschedule it as a yield, which wakes an idle
    /// worker thread, a cross-CPU wake-up per frame on a latency-bound
    /// connection.
    pub(crate) fn wake(&self) {
        if READER_RUNNING.get() == self.address() {
            self.kick.store(true, Ordering::Relaxed);
        } else {
            self.notify.notify_one();
        }
    }

    /// Runs `f` as the reader of this writer, on the driver task: wake-ups
    /// from this thread meanwhile set the flag.
    pub(crate) fn as_reader<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore(usize);
        impl Drop for Restore {
            fn drop(&mut self) {
                READER_RUNNING.set(self.0);
            }
        }
        let _restore = Restore(READER_RUNNING.replace(self.address()));
        f()
    }

    /// Takes the flag (see [`wake`](Self::wake)).
    pub(crate) fn take_kick(&self) -> bool {
        self.kick.swap(false, Ordering::Relaxed)
    }

    /// A future the next [`wake`](Self::wake) from elsewhere completes.
    pub(crate) fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }

    fn address(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }
}
