//! Running the handlers of the peer's requests: the async part of
//! answering, shared by the 0.7 server (its `v07::RequestHandler`) and
//! juggler-rpc's actions.
//!
//! The bookkeeping (how many run, the bytes they hold, whose turn it is,
//! the answer of a handler that panicked) is
//! [`juggler_core::responder`]'s; this module only runs: a request's
//! handling is polled once where it arrived, and goes on in a task only if
//! it waits ([`answer_now_or_spawn`]); a handler that panics becomes
//! [`Panicked`] ([`catch_panic`]), which the caller answers with an error.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
pub use juggler_core::responder::Panicked;

use crate::{BoxFuture, Runtime};

/// Runs `answering` (a request's handling and the sending of its answer)
/// to its end: polled once right here, and if it waits (for I/O, a timer,
/// another call), on in a task of `runtime`'s. Most handlers answer at
/// once: answering those where the request arrived saves a task and its
/// wake-ups per request.
pub fn answer_now_or_spawn(
    runtime: &dyn Runtime,
    answering: impl Future<Output = ()> + Send + 'static,
) {
    let mut answering: BoxFuture = Box::pin(answering);
    // `now_or_never` polls with a waker that does nothing; the task's own
    // first poll registers its waker.
    if answering.as_mut().now_or_never().is_none() {
        runtime.spawn(answering);
    }
}

/// Runs a handler's future; a panic in it comes back as [`Panicked`]
/// instead of unwinding further, so the request can be answered with an
/// error and the connection go on.
pub async fn catch_panic<F: Future>(handling: F) -> Result<F::Output, Panicked> {
    AssertUnwindSafe(handling)
        .catch_unwind()
        .await
        .map_err(|_| Panicked)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A runtime that keeps what it is given to spawn.
    #[derive(Default)]
    struct Spawns(Mutex<Vec<BoxFuture>>);

    impl Runtime for Spawns {
        fn spawn(&self, future: BoxFuture) {
            self.0.lock().unwrap().push(future);
        }
        fn now(&self) -> std::time::Instant {
            unreachable!("answering reads no clock")
        }
        fn sleep_until(&self, _: std::time::Instant) -> BoxFuture {
            unreachable!("answering sets no timer")
        }
        fn unblock(&self, _: Box<dyn FnOnce() + Send + 'static>) -> BoxFuture {
            unreachable!("answering blocks nothing")
        }
        fn connect_tcp(&self, _: String, _: u16) -> crate::TcpConnecting {
            unreachable!("answering connects nowhere")
        }
    }

    #[test]
    fn an_answer_ready_at_once_is_given_here_and_spawns_nothing() {
        let runtime = Spawns::default();
        let answered = Arc::new(AtomicBool::new(false));
        let flag = answered.clone();
        answer_now_or_spawn(&runtime, async move { flag.store(true, Ordering::SeqCst) });
        assert!(answered.load(Ordering::SeqCst));
        assert!(runtime.0.lock().unwrap().is_empty());
    }

    #[test]
    fn an_answer_that_waits_goes_on_in_a_task() {
        let runtime = Spawns::default();
        let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        answer_now_or_spawn(&runtime, async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = receiver.await;
            counted.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        let task = runtime.0.lock().unwrap().pop().expect("spawned");
        sender.send(()).unwrap();
        futures_util::future::FutureExt::now_or_never(task).expect("finished");
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panic_comes_back_as_panicked() {
        let panicking = catch_panic(async {
            if true {
                panic!("handler bug");
            }
            1
        });
        assert_eq!(panicking.now_or_never(), Some(Err(Panicked)));
        assert_eq!(catch_panic(async { 2 }).now_or_never(), Some(Ok(2)));
    }
}
