//! The public connection handle and the state it shares with its driver.
//!
//! Wake-ups, in one place (docs/architecture.md says the same):
//! [`Shared::update`] compares what the writer watches ([`WakeSnapshot`])
//! before and after every change and wakes the writer when the application
//! or the reader changed it. From another thread that is `writer_notify`.
//! From the driver task's own thread while its reader runs
//! ([`READER_RUNNING`] holds that connection's address), it is the
//! `writer_kick` flag instead: `join` polls the writer right after the
//! reader, and waking the running task would reschedule it as a yield and
//! wake an idle worker. The writer's progress wakes application tasks
//! waiting for it; the reader's messages and changes wake theirs; a close
//! wakes everyone; room in the receive queue wakes the reader
//! (`reader_notify`), only when the queue had been full.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Instant;

use futures_util::future::select;
use juggler_core::{
    value_cost, CloseReason, EncodedMessage, Engine, Event, Liveness, PatchOperation,
    ProtocolError, SharedChange,
};
use serde_json::Value;
use tokio::sync::Notify;

use crate::admission::{Admitted, UpgradeRequest};
use crate::budget::{Charge, MemoryBudget};
use crate::change_stream::ChangeCursor;
use crate::diff_outside::{diff_base, diff_unsent};
use crate::freeing::Retired;
use crate::metrics::{role_label, ConnectionMetrics};
use crate::options::ConnectionOptions;
use crate::writer_wake::WriterWake;
use crate::{Error, Runtime};

type ChangeCallback = Arc<dyn Fn() + Send + Sync>;

/// Numbers connections in this process, for their spans.
static NEXT_CONNECTION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A new connection's number in this process, unique across
/// generations.
pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

/// Connections of this process whose state is still in memory.
static CONNECTIONS_IN_MEMORY: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// How many connections of this process still hold their state in memory:
/// open ones, closing ones, and closed ones that a handle, a task or a
/// callback still keeps. A number that only grows is a leak.
pub fn connections_in_memory() -> usize {
    CONNECTIONS_IN_MEMORY.load(Ordering::Relaxed)
}

pub(crate) type MessageFilter = Arc<dyn Fn(Value) -> Option<Value> + Send + Sync>;

/// What the handles and the driver task share. The engine lives here, behind
/// a mutex that is never held across an `.await` or a user callback.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// One queue of sleepers per thing they wait for, so that traffic wakes
    /// only those it concerns; a close wakes them all.
    waiters: [Notify; 4],
    /// Wakes the writer: frames queued, deadline moved, closed.
    pub(crate) writer: WriterWake,
    /// Wakes the reader: room in the receive queue.
    pub(crate) reader_notify: Notify,
    pub(crate) options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    /// The connection's span: the driver runs in it, its close is logged
    /// in it (see [`Connection::span`]).
    pub(crate) span: tracing::Span,
    /// The connection's number in this process (the span's `id`).
    id: u64,
    /// The request that opened a server connection, and the context its
    /// admission attached.
    admitted: Admitted,
    pub(crate) runtime: Arc<dyn Runtime>,
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
    received: VecDeque<(Value, usize)>,
    /// The cost of `received`.
    bytes: usize,
    /// The server's budget, which `bytes` are charged to (a client's own,
    /// unlimited one).
    budget: Arc<MemoryBudget>,
    /// The reader waits for room: `receive` wakes it.
    reader_waiting: bool,
    /// Messages were queued since receivers were last woken.
    unreported: bool,
    /// See [`Connection::set_message_filter`].
    filter: Option<MessageFilter>,
    /// Drained from the engine for the filter, in order, each with the
    /// charge for it.
    to_filter: Vec<(Value, Charge)>,
}

/// What the reader may take before it looks again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReaderRoom {
    /// Messages, by `max_receive_queue`.
    pub(crate) messages: usize,
    /// Decoded bytes, by `max_receive_bytes` and the server's budget; the
    /// reader takes at least one frame.
    pub(crate) bytes: usize,
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
    fn push_charged(&mut self, message: Value, cost: usize) {
        self.bytes += cost;
        self.received.push_back((message, cost));
        self.unreported = true;
    }

    fn pop(&mut self) -> Option<Value> {
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
    count: u64,
    /// Changes drained from the engine whose callbacks have not run yet.
    unreported: usize,
    callbacks: BTreeMap<u64, ChangeCallback>,
    next_callback_id: u64,
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
    fn writes_pending(&self) -> bool {
        !self.driver.done && matches!(self.engine.close_reason(), None | Some(CloseReason::Local))
    }
}

/// Bytes a layer above holds of what the peer sent; see
/// [`Connection::hold`]. Released when dropped.
#[must_use = "the bytes are released when the guard is dropped"]
pub struct HeldBytes {
    shared: Arc<Shared>,
    bytes: usize,
}

impl fmt::Debug for HeldBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldBytes")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl HeldBytes {
    /// How many bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        let reader_waiting = {
            let mut state = self.shared.lock();
            state.inbox.bytes -= self.bytes;
            state.inbox.budget.release(self.bytes);
            state.inbox.reader_waiting
        };
        if reader_waiting {
            self.shared.reader_notify.notify_one();
        }
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
                inbox: Inbox::new(budget),
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
            metrics: ConnectionMetrics::new(role),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
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
                    let charge = Charge::new(&budget, value_cost(&message));
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
    pub(crate) fn budget(&self) -> Arc<MemoryBudget> {
        self.lock().inbox.budget.clone()
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

/// Closes the connection when the last application handle goes away.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// A Juggler connection, client or server side (the protocol is
/// symmetric): local and remote data, change notification, messages.
///
/// A cheap `Clone + Send + Sync` handle. When the last clone is dropped the
/// connection closes itself (flushing unsent data under an automatic
/// autoflush policy) and its driver task ends.
///
/// `juggler_tokio::Connection` and `juggler_smol::Connection` are this
/// type: `listen`'s callback gets one, `connect` returns one, and code that
/// takes a `Connection` works on either runtime.
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::{Connection, Error};
/// use serde_json::json;
///
/// /// Shows the client a greeting, then answers its messages until it leaves.
/// async fn serve(connection: Connection) -> Result<(), Error> {
///     connection.set_local_data(json!({"greeting": "hello"}))?; // synced by autoflush
///     let mut changes = connection.remote_changes();
///     loop {
///         tokio::select! {
///             message = connection.receive() => {
///                 let message = message?; // Err(Error::Closed) once it is gone
///                 connection.send(&json!({"echo": message})).await?;
///             }
///             data = changes.changed() => println!("the peer's data: {}", data?),
///         }
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer_addr", &self.handle.shared.peer_addr)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    pub(crate) fn shared_arc(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The runtime the connection runs on, for libraries layered on top
    /// (such as `juggler-rpc`) that spawn tasks or need timers.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.shared().runtime.clone()
    }

    /// The connection's `tracing` span, `juggler_connection` with its
    /// `id`, `role` (`server` or `client`), `peer`, `path` and protocol
    /// `generation`. The connection's own task runs in it and its close is
    /// logged in it; instrument tasks of yours with it
    /// (`future.instrument(connection.span().clone())`) to give their
    /// events the same context. See docs/guide.md, "Observing it".
    pub fn span(&self) -> &tracing::Span {
        &self.shared().span
    }

    /// The protocol generation the connection speaks.
    pub fn generation(&self) -> juggler_core::Generation {
        juggler_core::Generation::V0_5
    }

    /// How many remote data changes the connection has seen, and the
    /// remote data after them.
    pub(crate) fn remote_changes_so_far(&self) -> (u64, Arc<Value>) {
        let state = self.shared().lock();
        (state.changes.count, state.engine.remote_data().clone())
    }

    /// The connection's number in this process, as its span shows it.
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    /// The address of the peer, when the transport has one (behind a
    /// reverse proxy, the proxy; see [`remote`](Self::remote)).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared().peer_addr
    }

    /// The HTTP request that opened this server-side connection: its URI
    /// with the query, its headers with the cookies. `None` on a client.
    pub fn upgrade_request(&self) -> Option<&UpgradeRequest> {
        self.handle.shared.admitted.request.as_deref()
    }

    /// The client's address: read from `Forwarded` / `X-Forwarded-For`
    /// when the server trusts them, else the peer's IP (the 0.7
    /// reference's `Connection.remote`). `None` on a client.
    pub fn remote(&self) -> Option<&str> {
        self.upgrade_request()?.remote.as_deref()
    }

    /// The certificate chain the client presented in a mutual TLS
    /// handshake, leaf first. `None` without one, and on a client.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        Some(&self.upgrade_request()?.peer_certificates.as_ref()?.0)
    }

    /// The context the server's admission hook attached to this
    /// connection, if it is a `T`.
    pub fn context<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.handle.shared.admitted.context.as_ref()?.downcast_ref()
    }

    /// The local data as last set: a shared snapshot, not a copy.
    pub fn local_data(&self) -> Arc<Value> {
        self.shared().lock().engine.local_data().clone()
    }

    /// The peer's data as last received: a shared snapshot, not a copy.
    #[doc(alias("remote_state", "state"))]
    pub fn remote_data(&self) -> Arc<Value> {
        self.shared().lock().engine.remote_data().clone()
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        !self.shared().lock().engine.is_closed()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared().lock().engine.close_reason().cloned()
    }

    /// The WebSocket close code and reason text the peer sent, if it closed
    /// with a close frame (for example 1009 when a message of ours was over
    /// its size limit).
    pub fn peer_close_frame(&self) -> Option<(u16, String)> {
        self.shared().lock().driver.peer_close.clone()
    }

    /// Sets a filter that every message from the peer passes before it
    /// is queued for [`receive`](Self::receive), replacing any earlier
    /// one: what it returns is queued, `None` drops the message. For
    /// layers such as `juggler-rpc` that consume some messages themselves
    /// and want to do so without a task switch.
    ///
    /// The filter runs on the connection's driver task, outside the
    /// connection's lock, once per message and in order. It must not block
    /// or wait: it may call this connection's non-waiting methods (such as
    /// [`try_send`](Self::try_send)), spawn tasks, or use a
    /// [`WeakConnection`]; a filter that owns a `Connection` keeps the
    /// connection from closing on drop.
    pub fn set_message_filter(
        &self,
        filter: impl Fn(Value) -> Option<Value> + Send + Sync + 'static,
    ) {
        self.shared().lock().inbox.filter = Some(Arc::new(filter));
    }

    /// A handle that does not keep the connection open (see
    /// [`WeakConnection`]).
    pub fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            handle: Arc::downgrade(&self.handle),
        }
    }

    /// Calls `callback` once for every change of the remote data. The
    /// callback runs on the driver task and must not block; it may read the
    /// connection. Dropping the returned handle unregisters it.
    #[must_use = "the callback is unregistered when the handle is dropped"]
    #[doc(alias("on_change", "subscribe"))]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> ChangeCallbackHandle {
        let mut state = self.shared().lock();
        let id = state.changes.next_callback_id;
        state.changes.next_callback_id += 1;
        state.changes.callbacks.insert(id, Arc::new(callback));
        ChangeCallbackHandle {
            shared: Arc::downgrade(&self.handle.shared),
            id,
        }
    }

    /// An async stream of remote data changes; see [`RemoteChanges`].
    #[doc(alias("watch", "changes"))]
    pub fn remote_changes(&self) -> RemoteChanges {
        RemoteChanges {
            shared: self.handle.shared.clone(),
            cursor: ChangeCursor::default(),
        }
    }

    /// Replaces the local data; it syncs by the autoflush policy.
    /// `local_data()` returns the new value at once.
    #[doc(alias("set_local", "set_state"))]
    ///
    /// When the peer is in sync and both versions are objects (or both
    /// arrays), the diff runs here, on the caller's thread, before the
    /// connection's lock is taken: a large state's diff does not hold up
    /// the connection's reader and writer. (Otherwise it runs when the
    /// change is sent, as for any pending change.) The replaced data is
    /// freed outside the lock: when the change went out at once (autoflush
    /// 0), by the connection's writer after writing it, a slice at a time
    /// between its other work; otherwise here.
    pub fn set_local_data(&self, data: impl Into<Arc<Value>>) -> Result<(), Error> {
        let data = data.into();
        let base = {
            let state = self.shared().lock();
            let engine = &state.engine;
            diff_base(
                engine.local_data(),
                !engine.has_unsent_changes() && !engine.is_closed(),
                &data,
            )
        };
        let ops = base.as_ref().map(|base| juggler_core::diff(base, &data));
        let now = self.shared().runtime.now();
        let (result, free_now) = self.shared().update(Wake::Application, |state| {
            let result = match (&base, ops) {
                (Some(base), Some(ops)) => state.engine.set_local_data_diffed(now, base, data, ops),
                _ => state.engine.set_local_data(now, data),
            };
            (result, base.and_then(|base| state.retire(base)))
        });
        drop(free_now);
        result.map_err(Error::from)
    }

    /// Sets the local data to a [`SharedState`](juggler_core::SharedState)'s
    /// new version: a connection that holds the previous version (with
    /// nothing else unsent) sends the change's pre-encoded frame as it is,
    /// by its autoflush policy, so one change reaches any number of
    /// connections with one diff and one encoding. Others sync it like
    /// [`set_local_data`](Self::set_local_data).
    pub fn set_local_data_shared(&self, change: &SharedChange) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.set_local_data_shared(now, change)
            })
            .map_err(Error::from)
    }

    /// Applies RFC 6902 operations to the local data and syncs them by the
    /// autoflush policy. The operations themselves go to the peer: no diff
    /// of the whole state, so the cost is that of the change. Applies whole
    /// or not at all.
    pub fn update_local_data(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.update_local_data(now, ops)
            })
            .map_err(Error::from)
    }

    /// Sends unsent local data changes now and waits until they, and every
    /// frame queued before them, are written to the socket. A change that
    /// needs a diff is diffed in this call, with no lock held.
    #[doc(alias = "flush")]
    pub async fn flush_local_data(&self) -> Result<(), Error> {
        diff_unsent(
            || self.shared().lock().engine.unsent_diff(),
            |base, local, ops| {
                self.shared().update(Wake::Application, |state| {
                    if state.engine.sync_diffed(&base, local, ops) {
                        state.retire(base)
                    } else {
                        Some(base)
                    }
                })
            },
        );
        let ticket = self
            .shared()
            .update(Wake::Application, |state| state.engine.flush_local_data())?;
        self.shared()
            .wait_for(Waiting::Progress, |state| {
                if ticket.is_complete(state.driver.written) {
                    Some(Ok(()))
                } else if !state.writes_pending() {
                    Some(Err(Error::Closed))
                } else {
                    None
                }
            })
            .await
    }

    /// Queues one message for the peer, waiting while the send queue is
    /// full. Messages go out in the order they are queued; to know that
    /// they were written, await [`flush_local_data`](Self::flush_local_data).
    /// The message is encoded before the connection's lock is taken.
    pub async fn send(&self, message: &Value) -> Result<(), Error> {
        self.send_encoded(EncodedMessage::new(message)).await
    }

    /// [`send`](Self::send) for a message encoded beforehand, for example
    /// once for many connections with [`EncodedMessage::shared`].
    pub async fn send_encoded(&self, message: EncodedMessage) -> Result<(), Error> {
        let options = &self.shared().options;
        let mut message = Some(message);
        self.shared()
            .wait_for(Waiting::Progress, |state| {
                if state.engine.is_closed() {
                    Some(Err(Error::Closed))
                } else if !state.send_queue_full(options) {
                    let message = message.take()?;
                    Some(
                        state
                            .engine
                            .send_encoded(message)
                            .map(drop)
                            .map_err(Error::from),
                    )
                } else {
                    None
                }
            })
            .await?;
        self.shared().wake_writer();
        Ok(())
    }

    /// Like [`send`](Self::send) but never waits: fails with
    /// [`Error::QueueFull`] when the send queue is full.
    pub fn try_send(&self, message: &Value) -> Result<(), Error> {
        let message = EncodedMessage::new(message);
        let options = &self.shared().options;
        self.shared().update(Wake::Application, |state| {
            if state.engine.is_closed() {
                Err(Error::Closed)
            } else if state.send_queue_full(options) {
                Err(Error::QueueFull)
            } else {
                state
                    .engine
                    .send_encoded(message)
                    .map(drop)
                    .map_err(Error::from)
            }
        })
    }

    /// Sends a Juggler `PING` frame; the peer answers `PONG`. Only for peers
    /// known to run hat-juggler 0.5.13 or later (older ones close on it);
    /// keep-alive uses WebSocket pings and needs no call.
    pub fn send_ping(&self) -> Result<(), Error> {
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.send_ping().map(drop)
            })
            .map_err(Error::from)
    }

    /// The next message from the peer, waiting if there is none. Messages
    /// that arrived before the close are still returned; after them, fails
    /// with [`Error::Closed`].
    #[doc(alias = "recv")]
    pub async fn receive(&self) -> Result<Value, Error> {
        let (message, reader_waiting) = self
            .shared()
            .wait_for(Waiting::Message, |state| match state.inbox.pop() {
                Some(message) => Some((Ok(message), state.inbox.reader_waiting)),
                None if state.engine.is_closed() => Some((Err(Error::Closed), false)),
                None => None,
            })
            .await;
        // The reader rechecks its room when woken.
        if reader_waiting {
            self.shared().reader_notify.notify_one();
        }
        message
    }

    /// Counts `bytes` that a layer above holds of what the peer sent (a
    /// queue of its own, a request's arguments while its handler runs)
    /// against this connection's
    /// [`max_receive_bytes`](ConnectionOptions::max_receive_bytes) and the
    /// server's budget, as if they still waited for `receive`, until the
    /// returned guard is dropped. juggler-rpc does so for its
    /// plain-message queue and its running requests.
    pub fn hold(&self, bytes: usize) -> HeldBytes {
        let shared = self.shared_arc().clone();
        {
            let mut state = shared.lock();
            state.inbox.bytes += bytes;
            state.inbox.budget.charge(bytes);
        }
        HeldBytes { shared, bytes }
    }

    /// The bytes of received messages that wait for
    /// [`receive`](Self::receive) (and that layers above
    /// [`hold`](Self::hold)), as counted against
    /// [`ConnectionOptions::max_receive_bytes`] (decoded size, see
    /// [`value_cost`](juggler_core::value_cost)).
    pub fn buffered_bytes(&self) -> usize {
        self.shared().lock().inbox.bytes
    }

    /// Starts closing: unsent data is flushed (unless the policy is
    /// manual), then the WebSocket closes. Returns at once; see
    /// [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.shared().close();
    }

    /// Closes the connection for a protocol violation found by a layer
    /// above Juggler (such as a malformed rpc object): the peer gets a
    /// close frame with the error's code and text, and `close_reason`
    /// reports it. Unsent frames are dropped, as for any protocol error.
    pub fn close_with_protocol_error(&self, err: ProtocolError) {
        self.shared().update(Wake::Application, |state| {
            state.engine.handle_protocol_error(err)
        });
    }

    /// Waits until the connection is closed and its socket released, and
    /// returns why it closed.
    #[doc(alias("closed", "join"))]
    pub async fn wait_closed(&self) -> CloseReason {
        self.shared().wait_done().await;
        self.close_reason()
            .expect("the driver closes the engine before it ends")
    }

    /// [`close`](Self::close), then [`wait_closed`](Self::wait_closed).
    pub async fn shutdown(&self) -> CloseReason {
        self.close();
        self.wait_closed().await
    }
}

/// A [`Connection`] handle that does not keep the connection open: the
/// connection closes when the last `Connection` goes away, however many
/// `WeakConnection`s remain. For callbacks and filters the connection
/// itself holds, which would otherwise keep it open forever.
#[derive(Clone, Debug)]
pub struct WeakConnection {
    handle: Weak<Handle>,
}

impl WeakConnection {
    /// The connection, unless every `Connection` handle is gone.
    pub fn upgrade(&self) -> Option<Connection> {
        self.handle.upgrade().map(|handle| Connection { handle })
    }
}

/// Registration of a change callback; dropping it (or calling
/// [`cancel`](Self::cancel)) unregisters the callback.
#[derive(Debug)]
pub struct ChangeCallbackHandle {
    shared: Weak<Shared>,
    id: u64,
}

impl ChangeCallbackHandle {
    /// Unregisters the callback.
    pub fn cancel(self) {}
}

impl Drop for ChangeCallbackHandle {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            // Drop the callback after the lock is released: it may own a
            // `Connection`, whose drop closes the connection, which locks.
            let callback = shared.lock().changes.callbacks.remove(&self.id);
            drop(callback);
        }
    }
}

/// Remote data changes as an async sequence: each
/// [`changed`](Self::changed) waits for changes not yet seen and returns
/// the remote data after them (several quick changes may be seen as one).
///
/// A new `RemoteChanges` has seen nothing: if the remote data has changed
/// since the connection opened, its first `changed` returns at once with
/// the current data, so a late subscriber never misses the state. It does
/// not keep the connection open.
///
/// It is also a [`Stream`](futures_util::Stream) of the remote data after
/// each change, which ends when the connection closes.
#[derive(Clone)]
pub struct RemoteChanges {
    shared: Arc<Shared>,
    cursor: ChangeCursor,
}

impl fmt::Debug for RemoteChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChanges")
            .field("seen", &self.cursor.seen)
            .finish()
    }
}

impl RemoteChanges {
    /// Waits for the next change and returns the remote data; fails with
    /// [`Error::Closed`] once the connection is closed.
    pub async fn changed(&mut self) -> Result<Arc<Value>, Error> {
        let (count, data) = next_change(&self.shared, self.cursor.seen).await?;
        self.cursor.seen = count;
        Ok(data)
    }
}

/// Waits for a change after the `seen`-th: the count and the data after it.
async fn next_change(shared: &Shared, seen: u64) -> Result<(u64, Arc<Value>), Error> {
    shared
        .wait_for(Waiting::Change, |state| {
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

impl futures_util::Stream for RemoteChanges {
    type Item = Arc<Value>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Arc<Value>>> {
        let this = &mut *self;
        let shared = &this.shared;
        this.cursor.poll_next(cx, |seen| {
            let shared = shared.clone();
            Box::pin(async move { next_change(&shared, seen).await })
        })
    }
}
