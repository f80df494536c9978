//! The bookkeeping of a side that answers its peer's requests, as a
//! deterministic machine: how many run, how many bytes they hold, which
//! waits for its turn when requests must not run in parallel, and what
//! answer a handler that panicked gives.
//!
//! The 0.7 server (requests of `juggler_driver::v07`) and juggler-rpc's
//! endpoint both keep one [`Responder`]; juggler-driver's `responder`
//! module runs the handlers (once at once, else in a task; a panic
//! caught). It runs nothing and reads no clock itself.
//!
//! Two ways to admit a request, for the two ways of holding a peer back:
//!
//! - [`take`](Responder::take) takes every request, and the caller stops
//!   reading while [`is_full`](Responder::is_full) (the 0.7 server: TCP
//!   backpressure);
//! - [`try_take`](Responder::try_take) refuses a request beyond
//!   the running limit, to be answered with an error at once (rpc).
//!
//! ```
//! use juggler_core::responder::{Limits, Responder};
//!
//! // One at a time, at most 2 taken, at most 100 bytes.
//! let mut responder = Responder::new(Limits { max_running: 2, max_bytes: 100, parallel: false });
//! assert_eq!(responder.take("a", 10), Some("a")); // runs now
//! assert_eq!(responder.take("b", 20), None); // waits for "a"
//! assert!(responder.is_full()); // two taken: read no more
//! // "a" answered: "b" runs next, and there is room again.
//! assert_eq!(responder.finish(10), Some(("b", 20)));
//! assert!(!responder.is_full());
//! assert_eq!(responder.finish(20), None);
//! assert_eq!((responder.running(), responder.bytes()), (0, 0));
//! ```

use std::collections::VecDeque;

/// What a [`Responder`] allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most requests taken and not finished (running or waiting their
    /// turn).
    pub max_running: usize,
    /// Most bytes those requests hold (`usize::MAX` for no limit).
    pub max_bytes: usize,
    /// Whether requests run at once (answered as each finishes), or one
    /// after another in the order they came.
    pub parallel: bool,
}

/// The requests of one connection's peer that are taken and not answered
/// yet; see the [module](self) docs.
///
/// `R` is what a request waiting for its turn is kept as.
#[derive(Debug)]
pub struct Responder<R> {
    limits: Limits,
    /// Taken and not finished, waiting ones included.
    running: usize,
    /// What those hold.
    bytes: usize,
    /// When not parallel: whether one runs now.
    busy: bool,
    /// When not parallel: the requests waiting for their turn, in order,
    /// each with its bytes.
    waiting: VecDeque<(R, usize)>,
}

impl<R> Responder<R> {
    /// A responder with nothing taken.
    pub fn new(limits: Limits) -> Self {
        Responder {
            limits,
            running: 0,
            bytes: 0,
            busy: false,
            waiting: VecDeque::new(),
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes `request`, holding `bytes`, whatever the limits (the caller
    /// holds the peer back while [`is_full`](Self::is_full)). Returns it
    /// if it is to start now; `None` if it waits behind the one running
    /// (not parallel): [`finish`](Self::finish) hands it out in its turn.
    pub fn take(&mut self, request: R, bytes: usize) -> Option<R> {
        self.running += 1;
        self.bytes = self.bytes.saturating_add(bytes);
        if self.limits.parallel {
            Some(request)
        } else if self.busy {
            self.waiting.push_back((request, bytes));
            None
        } else {
            self.busy = true;
            Some(request)
        }
    }

    /// [`take`](Self::take), unless [`max_running`](Limits::max_running)
    /// requests are taken already: then the request comes back as `Err`,
    /// to be refused.
    pub fn try_take(&mut self, request: R, bytes: usize) -> Result<Option<R>, R> {
        if self.at_running_limit() {
            Err(request)
        } else {
            Ok(self.take(request, bytes))
        }
    }

    /// Whether [`try_take`](Self::try_take) would refuse now.
    pub fn at_running_limit(&self) -> bool {
        self.running >= self.limits.max_running
    }

    /// Whether the running limit or the byte limit is reached: the peer
    /// must be held back.
    pub fn is_full(&self) -> bool {
        self.at_running_limit() || self.bytes >= self.limits.max_bytes
    }

    /// A request holding `bytes` is done: answered, or given up. Frees
    /// its place; returns the next request to start (not parallel), with
    /// its bytes.
    pub fn finish(&mut self, bytes: usize) -> Option<(R, usize)> {
        self.running = self.running.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if self.limits.parallel {
            return None;
        }
        let next = self.waiting.pop_front();
        self.busy = next.is_some();
        next
    }

    /// The one running (holding `bytes`) is given up, and every request
    /// waiting behind it too: they come back, to be dropped unanswered.
    pub fn abandon(&mut self, bytes: usize) -> VecDeque<(R, usize)> {
        let mut abandoned = std::mem::take(&mut self.waiting);
        self.finish(bytes);
        for (_, bytes) in &abandoned {
            self.running = self.running.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(*bytes);
        }
        abandoned.shrink_to_fit();
        abandoned
    }

    /// Requests taken and not finished, waiting ones included.
    pub fn running(&self) -> usize {
        self.running
    }

    /// The bytes those hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Requests waiting for their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// A request handler that panicked instead of returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panicked;

/// The answer to a request whose handler ended with `ended`: what it
/// returned, or the error `panicked` gives if it panicked (the connection
/// goes on).
///
/// ```
/// use juggler_core::responder::{answer, Panicked};
///
/// let returned: Result<Result<u8, &str>, Panicked> = Ok(Ok(1));
/// assert_eq!(answer(returned, || "panicked"), Ok(1));
/// assert_eq!(answer::<u8, _>(Err(Panicked), || "panicked"), Err("panicked"));
/// ```
pub fn answer<V, E>(
    ended: Result<Result<V, E>, Panicked>,
    panicked: impl FnOnce() -> E,
) -> Result<V, E> {
    ended.unwrap_or_else(|Panicked| Err(panicked()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_running: usize, max_bytes: usize, parallel: bool) -> Limits {
        Limits {
            max_running,
            max_bytes,
            parallel,
        }
    }

    #[test]
    fn parallel_requests_all_start_and_count_until_finished() {
        let mut responder = Responder::new(limits(3, usize::MAX, true));
        assert_eq!(responder.take(1, 5), Some(1));
        assert_eq!(responder.take(2, 7), Some(2));
        assert_eq!((responder.running(), responder.bytes()), (2, 12));
        assert!(!responder.is_full());
        assert_eq!(responder.take(3, 1), Some(3));
        assert!(responder.is_full());
        assert_eq!(responder.finish(7), None);
        assert_eq!((responder.running(), responder.bytes()), (2, 6));
        assert!(!responder.is_full());
    }

    #[test]
    fn beyond_the_running_limit_a_request_is_refused_until_one_finishes() {
        let mut responder = Responder::new(limits(2, usize::MAX, true));
        assert_eq!(responder.try_take('a', 0), Ok(Some('a')));
        assert!(!responder.at_running_limit());
        assert_eq!(responder.try_take('b', 0), Ok(Some('b')));
        assert!(responder.at_running_limit());
        assert_eq!(responder.try_take('c', 0), Err('c'));
        assert_eq!(responder.running(), 2);
        responder.finish(0);
        assert_eq!(responder.try_take('d', 0), Ok(Some('d')));
        // No limit: nothing is ever refused, and a finish too many does
        // not wrap.
        let mut responder = Responder::new(limits(0, usize::MAX, true));
        assert_eq!(responder.try_take('e', 0), Err('e'));
        responder.finish(3);
        assert_eq!((responder.running(), responder.bytes()), (0, 0));
    }

    #[test]
    fn the_byte_charge_fills_and_frees() {
        let mut responder = Responder::new(limits(100, 10, true));
        responder.take((), 6);
        assert!(!responder.is_full());
        responder.take((), 4);
        assert!(responder.is_full());
        // Over the limit by what one request brings, no more refused.
        responder.take((), 50);
        assert_eq!(responder.bytes(), 60);
        responder.finish(50);
        assert!(responder.is_full());
        responder.finish(6);
        assert!(!responder.is_full());
        assert_eq!(responder.bytes(), 4);
    }

    #[test]
    fn not_parallel_requests_run_one_after_another_in_order() {
        let mut responder = Responder::new(limits(10, usize::MAX, false));
        assert_eq!(responder.take("first", 1), Some("first"));
        assert_eq!(responder.take("second", 2), None);
        assert_eq!(responder.take("third", 3), None);
        assert_eq!(responder.waiting(), 2);
        assert_eq!((responder.running(), responder.bytes()), (3, 6));
        assert_eq!(responder.finish(1), Some(("second", 2)));
        // The turn is taken: a new request still waits.
        assert_eq!(responder.take("fourth", 4), None);
        assert_eq!(responder.finish(2), Some(("third", 3)));
        assert_eq!(responder.finish(3), Some(("fourth", 4)));
        assert_eq!(responder.finish(4), None);
        assert_eq!((responder.running(), responder.bytes()), (0, 0));
        // Idle again: the next one starts at once.
        assert_eq!(responder.take("fifth", 5), Some("fifth"));
    }

    #[test]
    fn abandoning_frees_the_running_and_the_waiting() {
        let mut responder = Responder::new(limits(10, usize::MAX, false));
        responder.take('a', 1);
        responder.take('b', 2);
        responder.take('c', 3);
        let abandoned: Vec<_> = responder.abandon(1).into_iter().collect();
        assert_eq!(abandoned, vec![('b', 2), ('c', 3)]);
        assert_eq!((responder.running(), responder.bytes()), (0, 0));
        assert_eq!(responder.take('d', 4), Some('d'));
    }

    #[test]
    fn a_panic_is_answered_with_the_error_given() {
        assert_eq!(
            answer::<i32, _>(Err(Panicked), || "it panicked"),
            Err("it panicked")
        );
        assert_eq!(
            answer::<i32, &str>(Ok(Err("failed")), || "it panicked"),
            Err("failed")
        );
        assert_eq!(answer::<i32, &str>(Ok(Ok(3)), || unreachable!()), Ok(3));
    }
}
