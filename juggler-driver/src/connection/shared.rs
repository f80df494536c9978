//! The state a connection's handles share with its driver task, behind
//! one lock, and who is woken when it changes.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures_util::future::select;
use juggler_core::{value_cost, CloseReason, Engine, Event, Liveness};
use serde_json::Value;
use tokio::sync::Notify;

use super::{next_connection_id, CONNECTIONS_IN_MEMORY};
use crate::admission::Admitted;
use crate::budget::{Charge, MemoryBudget};
use crate::change_stream::ChangeSource;
use crate::driver::ReaderRoom;
use crate::freeing::Retired;
use crate::metrics::{role_label, ConnectionMetrics};
use crate::options::ConnectionOptions;
use crate::writer_wake::WriterWake;
use crate::{Error, Runtime};

type ChangeCallback = Arc<dyn Fn() + Send + Sync>;

pub(crate) type MessageFilter = Arc<dyn Fn(Value) -> Option<Value> + Send + Sync>;

/// What the handles and the driver task share. The engine lives here, behind
/// a mutex that is never held across an `.await` or a user callback.
pub struct Shared {
    pub(super) state: Mutex<State>,
    /// One queue of sleepers per thing they wait for, so that traffic wakes
    /// only those it concerns; a close wakes them all.
    pub(super) waiters: [Notify; 4],
    /// Wakes the writer: frames queued, deadline moved, closed.
    pub(crate) writer: WriterWake,
    /// Wakes the reader: room in the receive queue.
    pub(crate) reader_notify: Notify,
    pub(crate) options: ConnectionOptions,
    pub(super) peer_addr: Option<SocketAddr>,
    /// The connection's span: the driver runs in it, its close is logged
    /// in it (see [`Connection::span`]).
    pub(crate) span: tracing::Span,
    /// The connection's number in this process (the span's `id`).
    pub(super) id: u64,
    /// The request that opened a server connection, and the context its
    /// admission attached.
    pub(super) admitted: Admitted,
    pub(crate) runtime: Arc<dyn Runtime>,
    /// The byte budget its received messages are charged to (the
    /// server's, or a client's own unlimited one).
    budget: Arc<MemoryBudget>,
    /// Its metrics (nothing without the `metrics` feature).
    pub(crate) metrics: ConnectionMetrics,
}

/// Everything behind the connection's lock: the engine and what the driver
/// and the handles keep beside it.
pub(crate) struct State {
    pub(crate) engine: Engine,
    /// Messages on their way to `receive`.
    pub(crate) inbox: Inbox,
    /// Remote data changes and who is told of them.
    pub(crate) changes: ChangeLog,
    /// How far the driver task has got.
    pub(crate) driver: DriverProgress,
}

/// Messages from the peer on their way to the application, counted in
/// decoded bytes against the connection's and the server's budgets.
pub(crate) struct Inbox {
    /// Waiting for `receive`, each with its [`value_cost`].
    pub(super) received: VecDeque<(Value, usize)>,
    /// The cost of `received`.
    pub(super) bytes: usize,
    /// The server's budget, which `bytes` are charged to (a client's own,
    /// unlimited one).
    pub(super) budget: Arc<MemoryBudget>,
    /// The reader waits for room: `receive` wakes it.
    pub(super) reader_waiting: bool,
    /// Messages were queued since receivers were last woken.
    pub(super) unreported: bool,
    /// See [`Connection::set_message_filter`].
    pub(super) filter: Option<MessageFilter>,
    /// Drained from the engine for the filter, in order, each with the
    /// charge for it.
    pub(super) to_filter: Vec<(Value, Charge)>,
}

impl Inbox {
    fn new(budget: Arc<MemoryBudget>) -> Self {
        Inbox {
            received: VecDeque::new(),
            bytes: 0,
            budget,
            reader_waiting: false,
            unreported: false,
            filter: None,
            to_filter: Vec::new(),
        }
    }

    /// Queues a message whose `cost` the budget has been charged already.
    pub(super) fn push_charged(&mut self, message: Value, cost: usize) {
        self.bytes += cost;
        self.received.push_back((message, cost));
        self.unreported = true;
    }

    pub(super) fn pop(&mut self) -> Option<Value> {
        let (message, cost) = self.received.pop_front()?;
        self.bytes -= cost;
        self.budget.release(cost);
        Some(message)
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Remote data changes: how many there were, and the callbacks told of
/// them.
#[derive(Default)]
pub(crate) struct ChangeLog {
    /// Changes since the connection opened.
    pub(super) count: u64,
    /// Changes drained from the engine whose callbacks have not run yet.
    pub(super) unreported: usize,
    pub(super) callbacks: BTreeMap<u64, ChangeCallback>,
    pub(super) next_callback_id: u64,
}

/// What the driver task has done so far.
pub(crate) struct DriverProgress {
    /// How many frames it has written (the `seq` of the last one).
    pub(crate) written: u64,
    /// Keep-alive, when it is on: the reader tells it what arrived, the
    /// writer pings and closes by it.
    pub(crate) liveness: Option<Liveness>,
    /// The code and reason of the peer's close frame, if it sent one.
    pub(crate) peer_close: Option<(u16, String)>,
    /// When the engine closed, on the runtime's clock: the close timeout
    /// counts from here, not from when the driver task next runs, so a
    /// busy executor cannot stretch one connection's close.
    pub(crate) closed_at: Option<Instant>,
    /// The close timeout ran out before the socket was done with, so the
    /// driver dropped it.
    pub(crate) close_timed_out: bool,
    /// The task has ended and dropped the socket.
    pub(crate) done: bool,
    /// The engine's collapsed DATA frames already counted in the metrics.
    pub(crate) collapsed_reported: u64,
    /// Replaced local data for the writer to free after its next write.
    pub(crate) retired: Retired,
}

impl State {
    /// Hands replaced local data to the writer to free after it writes the
    /// frames queued now; with none queued (or the socket gone), gives it
    /// back to free at once, as it does the one held before.
    pub(crate) fn retire(&mut self, replaced: Arc<Value>) -> Option<Arc<Value>> {
        let frames_queued = self.engine.queued_transmits() > 0 && !self.driver.done;
        self.driver.retired.hold(replaced, frames_queued)
    }

    /// Whether the reader must wait before reading more: the receive
    /// queue is full in messages or in bytes, or the server's budget is
    /// full and this connection holds something. A connection that holds
    /// nothing always reads (one batch), so others' floods cannot stall it;
    /// a closed one reads on, to the peer's close.
    pub(crate) fn reader_must_wait(&self, options: &ConnectionOptions) -> bool {
        let inbox = &self.inbox;
        !self.engine.is_closed()
            && (inbox.received.len() >= options.max_receive_queue
                || (inbox.bytes > 0
                    && (inbox.bytes >= options.max_receive_bytes || inbox.budget.is_full())))
    }

    /// Whether `send` must wait: the send queue is full in frames, or in
    /// bytes (a message bigger than the byte bound still goes alone into
    /// an empty queue).
    pub(crate) fn send_queue_full(&self, options: &ConnectionOptions) -> bool {
        let engine = &self.engine;
        engine.queued_transmits() >= options.max_send_queue
            || engine.queued_transmit_bytes() >= options.max_send_queue_bytes
    }

    /// Moves the engine's events into the state: messages into the receive
    /// queue, changes into the counters.
    pub(crate) fn drain_events(&mut self) {
        self.drain_events_charged(None);
    }

    /// [`drain_events`](Self::drain_events) right after a MESSAGE frame
    /// whose payload the reader charged for: the message takes the charge
    /// over; if the engine made no message of it (it was closed), the
    /// charge is dropped, which releases it.
    pub(crate) fn drain_events_charged(&mut self, mut charge: Option<Charge>) {
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::RemoteDataChanged => {
                    self.changes.count += 1;
                    self.changes.unreported += 1;
                }
                Event::Message(message) => {
                    let charge = charge
                        .take()
                        .unwrap_or_else(|| Charge::new(&self.inbox.budget, value_cost(&message)));
                    if self.inbox.filter.is_some() {
                        self.inbox.to_filter.push((message, charge));
                    } else {
                        self.inbox.push_charged(message, charge.keep());
                    }
                }
                // Logged by `Shared::update`, which sees the close happen.
                Event::Closed(_) => {}
                _ => {}
            }
        }
    }

    /// Whether remote data changed since the last callbacks ran.
    pub(crate) fn has_unreported_changes(&self) -> bool {
        self.changes.unreported > 0
    }

    /// Removes the message filter: no message comes after the driver's
    /// end, and whatever the filter owns must not outlive the connection
    /// by a cycle through it.
    pub(crate) fn take_message_filter(&mut self) -> Option<MessageFilter> {
        self.inbox.filter.take()
    }

    /// Whether any change callback is registered.
    pub(crate) fn has_change_callbacks(&self) -> bool {
        !self.changes.callbacks.is_empty()
    }

    /// Whether frames still polled from the engine may yet be written.
    pub(super) fn writes_pending(&self) -> bool {
        !self.driver.done && matches!(self.engine.close_reason(), None | Some(CloseReason::Local))
    }
}

/// Who made a change, which decides whom [`Shared::update`] wakes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The application: the writer, if the change gave it work.
    Application,
    /// The reader: receivers of the messages and changes it queued, and
    /// the writer if the frames gave it work (a PONG, a close).
    Reader,
    /// The writer itself: those waiting for it to make progress (room in
    /// the send queue, frames written).
    Writer,
}

/// What an application task waits for.
#[derive(Clone, Copy)]
pub(crate) enum Waiting {
    /// A message in the receive queue.
    Message,
    /// A remote data change.
    Change,
    /// The writer's progress: room in the send queue, frames written.
    Progress,
    /// The engine's close or the driver's end.
    Close,
}

/// What an update leaves to do outside the lock.
struct Aftermath {
    /// Remote data changes to report: each runs every callback once.
    changes: usize,
    callbacks: Vec<ChangeCallback>,
    /// Messages were queued for `receive`.
    messages: bool,
    /// Messages for the message filter, in order.
    to_filter: Option<(MessageFilter, Vec<(Value, Charge)>)>,
    before: WakeSnapshot,
    after: WakeSnapshot,
}

/// A snapshot of what the writer and the close waiters act on, taken before
/// and after a change: a difference is what wakes them.
#[derive(Clone, Copy, PartialEq, Eq)]
struct WakeSnapshot {
    queued: usize,
    deadline: Option<Instant>,
    closed: bool,
    driver_done: bool,
}

impl WakeSnapshot {
    fn of(state: &State) -> Self {
        WakeSnapshot {
            queued: state.engine.queued_transmits(),
            deadline: state.engine.poll_timeout(),
            closed: state.engine.is_closed(),
            driver_done: state.driver.done,
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        CONNECTIONS_IN_MEMORY.fetch_sub(1, Ordering::Relaxed);
        // What never went out leaves the send queue gauge with it.
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        self.metrics
            .send_queue_moved(state.engine.queued_transmit_bytes(), 0);
    }
}

impl Shared {
    pub(crate) fn new(
        options: ConnectionOptions,
        peer_addr: Option<SocketAddr>,
        admitted: Admitted,
        runtime: Arc<dyn Runtime>,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        let id = next_connection_id();
        CONNECTIONS_IN_MEMORY.fetch_add(1, Ordering::Relaxed);
        let (role, path) = match &admitted.request {
            Some(request) => (role_label(true), request.uri.path().to_owned()),
            None => (role_label(false), String::new()),
        };
        let span = tracing::info_span!(
            "juggler_connection",
            id,
            role,
            peer = ?peer_addr,
            path = tracing::field::Empty,
            generation = juggler_core::Generation::V0_5.as_str(),
        );
        if !path.is_empty() {
            span.record("path", tracing::field::display(&path));
        }
        Shared {
            state: Mutex::new(State {
                engine: Engine::new(options.engine_config()),
                inbox: Inbox::new(budget.clone()),
                changes: ChangeLog::default(),
                driver: DriverProgress {
                    written: 0,
                    liveness: options
                        .keep_alive
                        .map(|k| Liveness::new(runtime.now(), k.interval, k.timeout)),
                    peer_close: None,
                    closed_at: None,
                    close_timed_out: false,
                    done: false,
                    collapsed_reported: 0,
                    retired: Retired::default(),
                },
            }),
            waiters: Default::default(),
            writer: WriterWake::default(),
            reader_notify: Notify::new(),
            options,
            peer_addr,
            span,
            id,
            admitted,
            runtime,
            budget,
            metrics: ConnectionMetrics::new(role),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // State stays consistent even if a thread panicked while holding the
        // lock: every critical section is a short, panic-free engine call.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state, then dispatches the engine's events: messages
    /// into the receive queue, change callbacks (outside the lock), wakeups
    /// of whoever has something new to act on (see [`Wake`]).
    pub(crate) fn update<R>(&self, wake: Wake, f: impl FnOnce(&mut State) -> R) -> R {
        let (result, aftermath) = {
            let mut state = self.lock();
            let before = WakeSnapshot::of(&state);
            #[cfg(feature = "metrics")]
            let queued_before = state.engine.queued_transmit_bytes();
            let result = f(&mut state);
            state.drain_events();
            #[cfg(feature = "metrics")]
            self.metrics
                .send_queue_moved(queued_before, state.engine.queued_transmit_bytes());
            (result, self.take_aftermath(&mut state, before))
        };
        self.run_aftermath(wake, aftermath);
        result
    }

    /// What an update leaves to do once the lock is released, taken under
    /// it.
    fn take_aftermath(&self, state: &mut State, before: WakeSnapshot) -> Aftermath {
        let changes = std::mem::take(&mut state.changes.unreported);
        let callbacks = match changes {
            0 => Vec::new(),
            _ => state.changes.callbacks.values().cloned().collect(),
        };
        let after = WakeSnapshot::of(state);
        if let (false, Some(reason)) = (before.closed, state.engine.close_reason()) {
            let _in_span = self.span.enter();
            log_close(reason, self.peer_addr);
            state.driver.closed_at = Some(self.runtime.now());
        }
        let to_filter = match &state.inbox.filter {
            Some(filter) if !state.inbox.to_filter.is_empty() => {
                Some((filter.clone(), std::mem::take(&mut state.inbox.to_filter)))
            }
            _ => None,
        };
        Aftermath {
            changes,
            callbacks,
            messages: std::mem::take(&mut state.inbox.unreported),
            to_filter,
            before,
            after,
        }
    }

    /// Runs the message filter and the change callbacks, then wakes whoever
    /// has something new to act on.
    fn run_aftermath(&self, wake: Wake, aftermath: Aftermath) {
        let Aftermath {
            changes,
            callbacks,
            mut messages,
            to_filter,
            before,
            after,
        } = aftermath;
        // Only the reader produces messages, and it waits for this call:
        // what the filter passes on is queued in the order received.
        if let Some((filter, to_filter)) = to_filter {
            // Each message's charge passes to what the filter makes of it
            // (which a layer above may hold, see `Connection::hold`), so
            // nothing is counted twice or not at all.
            let budget = self.budget();
            let mut passed = Vec::new();
            for (message, charge) in to_filter {
                drop(charge);
                if let Some(message) = filter(message) {
                    let charge = Charge::new(budget, value_cost(&message));
                    passed.push((message, charge));
                }
            }
            let mut state = self.lock();
            messages |= !passed.is_empty();
            for (message, charge) in passed {
                state.inbox.push_charged(message, charge.keep());
            }
        }
        for _ in 0..changes {
            for callback in &callbacks {
                callback();
            }
        }
        let closing = (before.closed, before.driver_done) != (after.closed, after.driver_done);
        if closing {
            for waiters in &self.waiters {
                waiters.notify_waiters();
            }
            // A closed engine no longer holds the reader back.
            self.reader_notify.notify_one();
        } else {
            if messages {
                self.waiters[Waiting::Message as usize].notify_waiters();
            }
            if changes > 0 {
                self.waiters[Waiting::Change as usize].notify_waiters();
            }
            if wake == Wake::Writer {
                self.waiters[Waiting::Progress as usize].notify_waiters();
            }
        }
        // The writer sleeps only with nothing queued, so a change of what
        // it watches is all it needs to hear about.
        if wake != Wake::Writer && before != after {
            self.wake_writer();
        }
    }

    /// Wakes the writer (see [`WriterWake::wake`]).
    pub(crate) fn wake_writer(&self) {
        self.writer.wake();
    }

    /// Waits until `check` returns a value; `check` runs under the lock
    /// first, then whenever `waiting` may have come about.
    pub(crate) async fn wait_for<T>(
        &self,
        waiting: Waiting,
        check: impl FnMut(&mut State) -> Option<T>,
    ) -> T {
        self.wait_on(&self.waiters[waiting as usize], check).await
    }

    /// Waits until the engine is closed and returns when it closed.
    pub(crate) async fn wait_engine_closed(&self) -> Instant {
        self.wait_for(Waiting::Close, |state| state.driver.closed_at)
            .await
    }

    async fn wait_on<T>(
        &self,
        notify: &Notify,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> T {
        // The common case, the condition already met, costs one lock and
        // no registration with `notify`.
        if let Some(value) = self.watched(&mut self.lock(), &mut check) {
            return value;
        }
        loop {
            let notified = std::pin::pin!(notify.notified());
            let mut notified = notified;
            notified.as_mut().enable();
            if let Some(value) = self.watched(&mut self.lock(), &mut check) {
                return value;
            }
            notified.await;
        }
    }

    /// Runs a waiter's `check`, which may queue frames (`send`), keeping
    /// the send queue gauge right.
    fn watched<T>(
        &self,
        state: &mut State,
        check: &mut impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        #[cfg(feature = "metrics")]
        let queued_before = state.engine.queued_transmit_bytes();
        let value = check(state);
        #[cfg(feature = "metrics")]
        self.metrics
            .send_queue_moved(queued_before, state.engine.queued_transmit_bytes());
        value
    }

    /// Waits while the receive queue is full (and the engine open), then
    /// returns how many more messages it has room for (at least 1).
    pub(crate) async fn wait_for_reader_room(&self) -> ReaderRoom {
        let budget = self.budget();
        loop {
            let own = self.reader_notify.notified();
            let server = budget.room();
            {
                let mut state = self.lock();
                if !state.reader_must_wait(&self.options) {
                    state.inbox.reader_waiting = false;
                    let inbox = &state.inbox;
                    let own_room = self.options.max_receive_bytes.saturating_sub(inbox.bytes);
                    let server_room = budget.limit().saturating_sub(budget.used());
                    return ReaderRoom {
                        messages: (self.options.max_receive_queue)
                            .saturating_sub(inbox.received.len())
                            .max(1),
                        bytes: own_room.min(server_room).max(1),
                    };
                }
                state.inbox.reader_waiting = true;
            }
            select(std::pin::pin!(own), std::pin::pin!(server)).await;
        }
    }

    /// The byte budget the connection's received messages are charged to.
    pub(crate) fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    pub(crate) fn close(&self) {
        self.update(Wake::Application, |state| state.engine.close());
    }

    /// Whether the driver task has ended.
    pub(crate) fn is_done(&self) -> bool {
        self.lock().driver.done
    }

    /// Whether the close timeout cut the connection off.
    pub(crate) fn close_timed_out(&self) -> bool {
        self.lock().driver.close_timed_out
    }

    /// Waits until the driver task has ended.
    pub(crate) async fn wait_done(&self) {
        self.wait_for(Waiting::Close, |state| state.driver.done.then_some(()))
            .await
    }
}

fn log_close(reason: &CloseReason, peer: Option<SocketAddr>) {
    match reason {
        // The peer's fault, and the peer's to repeat at will: at `warn` it
        // would be a way to flood our logs.
        CloseReason::Protocol(err) => {
            tracing::debug!(?peer, %err, "juggler protocol error from the peer; closing connection")
        }
        CloseReason::Transport(err) => tracing::debug!(?peer, %err, "juggler connection lost"),
        other => tracing::debug!(?peer, reason = %other, "juggler connection closed"),
    }
}

impl ChangeSource for Shared {
    const NAME: &'static str = "RemoteChanges";

    /// Waits for a change after the `seen`-th: the count and the data
    /// after it.
    async fn next_change(&self, seen: u64) -> Result<(u64, Arc<Value>), Error> {
        self.wait_for(Waiting::Change, |state| {
            if state.changes.count > seen {
                Some(Ok((
                    state.changes.count,
                    state.engine.remote_data().clone(),
                )))
            } else if state.engine.is_closed() {
                Some(Err(Error::Closed))
            } else {
                None
            }
        })
        .await
    }
}
