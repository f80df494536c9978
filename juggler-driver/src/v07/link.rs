//! The state a 0.6/0.7 connection shares with its driver (crate::driver),
//! the same for both roles, and what the driver needs of it: the engine
//! and the role's part behind one lock, and the role's dispatch of the
//! engine's events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::select;
use juggler_core::{CloseReason, Driven, FlushTicket, Liveness, PatchOperation, Transmit};
use serde_json::Value;
use tokio::sync::Notify;

use super::Options;
use crate::driver::{Host, ReaderRoom, StreamState, Weight, WriterTurn};
use crate::freeing::Retired;
use crate::metrics::ConnectionMetrics;
use crate::reader_steps::{Received, StreamItem};
use crate::writer_steps::{keep_alive_turn, take_frames, KeepAliveWords};
use crate::writer_wake::WriterWake;
use crate::{Error, Runtime};

/// How 0.6/0.7 word the closes keep-alive makes.
const KEEP_ALIVE_WORDS_07: KeepAliveWords = KeepAliveWords {
    dead: "ping timeout",
    stalled: "the peer stopped reading: a write stalled past the ping timeout",
};

/// What the driver needs of an engine of either role: the core's engine
/// contract, and what crosses to the application's tasks.
pub(crate) trait LinkEngine: Driven<Event: Send + 'static> + Send + 'static {}

impl<E: Driven<Event: Send + 'static> + Send + 'static> LinkEngine for E {}

/// What the reader and the writer share with the application's handles.
pub(crate) struct Link<E, X> {
    state: Mutex<LinkState<E, X>>,
    /// Wakes the writer: frames to write, a close, a new deadline.
    writer: WriterWake,
    /// Wakes everyone waiting on progress: frames written, room in a
    /// queue, the close, the end.
    progress: Notify,
    /// Wakes those waiting for the end: the engine closed, the socket gone.
    /// Apart from `progress`, so that the driver's own wait for the close
    /// is not woken by every frame (a wake of the running task is a yield,
    /// and wakes another worker thread).
    ended: Notify,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) options: Options,
    pub(crate) span: tracing::Span,
    metrics: ConnectionMetrics,
}

/// The connection's state under the link's lock: the engine, the role's
/// own part `extra`, and the driver's.
pub(crate) struct LinkState<E, X> {
    pub(crate) engine: E,
    pub(crate) extra: X,
    liveness: Option<Liveness>,
    /// Message frames written so far (their `seq`), for flush tickets.
    written: u64,
    /// The driver is done: the socket is gone.
    pub(crate) done: bool,
    /// The close was cut off at the close timeout.
    pub(crate) close_timed_out: bool,
    /// The engine deadline the writer waits for, as of its last look.
    writer_deadline: Option<Instant>,
    /// A replaced state the writer frees after its next write, by slices
    /// between its other work ([`Freeing`]).
    retired: Retired,
}

impl<E: LinkEngine, X> LinkState<E, X> {
    /// Hands `replaced` to the writer to free after it writes the frames
    /// queued now; with none queued, gives it back to free at once. Also
    /// gives back the state retired before, not yet freed.
    pub(crate) fn retire(
        &mut self,
        replaced: Arc<serde_json::Value>,
    ) -> Option<Arc<serde_json::Value>> {
        let frames_queued = self.engine.queued_frames() > 0 && !self.done;
        self.retired.hold(replaced, frames_queued)
    }

    /// Whether the engine is closed or the socket gone.
    fn has_ended(&self) -> bool {
        self.done || self.engine.close_reason().is_some()
    }

    /// Whether the writer has something to do it has not seen.
    fn writer_has_work(&self) -> bool {
        self.engine.queued_frames() > 0
            || self.engine.close_reason().is_some()
            || match (self.engine.poll_timeout(), self.writer_deadline) {
                (Some(due), Some(waited)) => due < waited,
                (Some(_), None) => true,
                (None, _) => false,
            }
    }
}

/// What the driver does with the events the engine had after a frame or
/// a timeout; and whether the reader may read on.
pub(crate) trait Dispatch<E: LinkEngine, X>: Send + Sync + 'static {
    /// Takes an event under the lock, into the role's part of the state;
    /// what it returns goes to [`dispatch`](Self::dispatch).
    fn take(&self, extra: &mut X, event: E::Event) -> Option<E::Event>;
    /// Handles the events `take` left, outside the lock.
    fn dispatch(&self, events: Vec<E::Event>);
    /// Whether the reader must wait before reading more (a queue of the
    /// application's is full).
    fn reader_must_wait(&self, state: &LinkState<E, X>) -> bool;
    /// A byte budget shared with other connections: while it is full the
    /// reader waits too.
    fn budget(&self) -> Option<&Arc<crate::MemoryBudget>> {
        None
    }
}

impl<E: LinkEngine, X: Send + 'static> Link<E, X> {
    pub(crate) fn new(
        engine: E,
        extra: X,
        options: Options,
        runtime: Arc<dyn Runtime>,
        span: tracing::Span,
        server: bool,
    ) -> Arc<Self> {
        let liveness = options
            .pings()
            .map(|(delay, timeout)| Liveness::new(runtime.now(), delay, timeout));
        Arc::new(Link {
            state: Mutex::new(LinkState {
                engine,
                extra,
                liveness,
                written: 0,
                done: false,
                close_timed_out: false,
                writer_deadline: None,
                retired: Retired::default(),
            }),
            writer: Default::default(),
            progress: Notify::new(),
            ended: Notify::new(),
            runtime,
            options,
            span,
            metrics: crate::metrics::ConnectionMetrics::new(crate::metrics::role_label(server)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, LinkState<E, X>> {
        // A panic under the lock leaves nothing half-done that matters
        // more than keeping the connection's handles usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the state, then wakes the waiters, and the writer if
    /// it has something new to do: frames to write, the close, or an
    /// engine deadline before the one it waits for. (Waking it for nothing
    /// would cost a task switch per frame read.)
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut LinkState<E, X>) -> R) -> R {
        let (result, wake, ended) = {
            let mut state = self.lock();
            let result = f(&mut state);
            (result, state.writer_has_work(), state.has_ended())
        };
        self.wake_waiters(ended);
        if wake {
            self.writer.wake();
        }
        result
    }

    /// [`update`](Self::update) from the writer itself, which is awake:
    /// wakes only the waiters.
    fn update_as_writer<R>(&self, f: impl FnOnce(&mut LinkState<E, X>) -> R) -> R {
        let (result, ended) = {
            let mut state = self.lock();
            let result = f(&mut state);
            (result, state.has_ended())
        };
        self.wake_waiters(ended);
        result
    }

    fn wake_waiters(&self, ended: bool) {
        self.progress.notify_waiters();
        if ended {
            self.ended.notify_waiters();
        }
    }

    /// Whether the connection is open.
    pub(crate) fn is_open(&self) -> bool {
        self.read(|state| state.engine.close_reason().is_none())
    }

    /// Why the connection closed, once it has.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.read(|state| state.engine.close_reason().cloned())
    }

    /// Closes the connection; queued frames go first.
    pub(crate) fn close(&self) {
        self.update(|state| state.engine.close());
    }

    /// Reads the state without waking anyone.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&LinkState<E, X>) -> R) -> R {
        f(&self.lock())
    }

    /// Waits until `ready` holds of the state, and returns what it gave.
    pub(crate) async fn wait_for<R>(
        &self,
        mut ready: impl FnMut(&mut LinkState<E, X>) -> Option<R>,
    ) -> R {
        loop {
            let notified = self.progress.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = ready(&mut self.lock()) {
                return result;
            }
            notified.await;
        }
    }

    /// Waits until the frames of `ticket` are written; fails when the
    /// connection ends first.
    pub(crate) async fn written(&self, ticket: FlushTicket) -> Result<(), Error> {
        self.wait_for(|state| {
            if ticket.is_complete(state.written) {
                Some(Ok(()))
            } else if state.done || state.engine.close_reason().is_some() {
                Some(Err(Error::Closed))
            } else {
                None
            }
        })
        .await
    }

    /// Waits for room in the send queue, then runs `push` on the state
    /// (and wakes the writer).
    pub(crate) async fn push<R>(
        &self,
        mut push: impl FnMut(&mut LinkState<E, X>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let limit = self.options.send_queue_size;
        let result = self
            .wait_for(|state| {
                if state.engine.close_reason().is_some() {
                    Some(Err(Error::Closed))
                } else if state.engine.queued_frames() < limit {
                    Some(push(state))
                } else {
                    None
                }
            })
            .await;
        self.writer.wake();
        result
    }

    /// [`push`](Self::push) that never waits: [`Error::QueueFull`] when
    /// the send queue is.
    pub(crate) fn try_push<R>(
        &self,
        push: impl FnOnce(&mut LinkState<E, X>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let limit = self.options.send_queue_size;
        let result = self.update(|state| {
            if state.engine.close_reason().is_some() {
                Err(Error::Closed)
            } else if state.engine.queued_frames() < limit {
                push(state)
            } else {
                Err(Error::QueueFull)
            }
        });
        self.writer.wake();
        result
    }

    /// Waits until the driver is done.
    pub(crate) async fn wait_done(&self) {
        self.wait_ended(|state| state.done).await
    }

    /// Waits until the engine is closed.
    async fn wait_engine_closed(&self) {
        self.wait_ended(|state| state.engine.close_reason().is_some())
            .await
    }

    /// Waits until `ended` holds, looking again at each step of the end.
    async fn wait_ended(&self, ended: impl Fn(&LinkState<E, X>) -> bool) {
        loop {
            let notified = self.ended.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if ended(&self.lock()) {
                return;
            }
            notified.await;
        }
    }
}

/// Drives one connection until its socket is done with (crate::driver).
pub(crate) async fn run<S, E, X, D>(
    socket: WebSocketStream<S>,
    link: Arc<Link<E, X>>,
    dispatch: D,
    first_frame: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: LinkEngine,
    X: Send + 'static,
    D: Dispatch<E, X>,
{
    let host = LinkHost { link, dispatch };
    crate::driver::run(socket, &host, first_frame).await
}

/// A link and its role's dispatch, as the driver's host.
struct LinkHost<E, X, D> {
    link: Arc<Link<E, X>>,
    dispatch: D,
}

impl<E: LinkEngine, X: Send + 'static, D: Dispatch<E, X>> LinkHost<E, X, D> {
    /// [`Link::update_as_writer`], then the events dispatched.
    fn update_as_writer<R>(&self, f: impl FnOnce(&mut LinkState<E, X>) -> R) -> R {
        let (result, events) = self.link.update_as_writer(|state| {
            let result = f(state);
            (result, drain(&self.dispatch, state))
        });
        self.dispatch.dispatch(events);
        result
    }
}

/// The engine's events, past the role's [`Dispatch::take`].
fn drain<E: LinkEngine, X, D: Dispatch<E, X>>(
    dispatch: &D,
    state: &mut LinkState<E, X>,
) -> Vec<E::Event> {
    let mut left = Vec::new();
    while let Some(event) = state.engine.poll_event() {
        left.extend(dispatch.take(&mut state.extra, event));
    }
    left
}

impl<E, X, D> Host for LinkHost<E, X, D>
where
    E: LinkEngine,
    X: Send + 'static,
    D: Dispatch<E, X>,
{
    /// 0.6/0.7 engines parse their own text, under the lock.
    type Incoming = Received;

    const KEEP_ALIVE_WORDS: KeepAliveWords = KEEP_ALIVE_WORDS_07;

    fn runtime(&self) -> &dyn Runtime {
        &*self.link.runtime
    }

    fn writer(&self) -> &WriterWake {
        &self.link.writer
    }

    fn metrics(&self) -> &ConnectionMetrics {
        &self.link.metrics
    }

    fn stall_limit(&self) -> Option<Duration> {
        self.link
            .options
            .pings()
            .map(|(delay, timeout)| delay + timeout)
    }

    fn close_timeout(&self) -> Duration {
        self.link.options.close_timeout
    }

    /// One frame at a time: the role's queues are checked before each.
    async fn reader_room(&self) -> ReaderRoom {
        wait_reader_room(&self.link, &self.dispatch).await;
        ReaderRoom {
            messages: 1,
            bytes: usize::MAX,
        }
    }

    fn budget_is_full(&self) -> bool {
        self.dispatch
            .budget()
            .is_some_and(|budget| budget.is_full())
    }

    fn decode(&self, item: StreamItem) -> Received {
        Received::within(item, self.link.options.max_frame_size)
    }

    fn weigh(incoming: &Received) -> Weight {
        Weight {
            frame: match incoming {
                Received::Text(_) => true,
                Received::NotText(other) => other.is_frame(),
            },
            cost: 0,
            ends_stream: matches!(incoming, Received::NotText(other) if other.ends_stream()),
        }
    }

    fn hand_over(&self, batch: &mut VecDeque<Received>) -> StreamState {
        let (ended, events) = self.link.update(|state| {
            let mut ended = StreamState::Open;
            while let (StreamState::Open, Some(item)) = (ended, batch.pop_front()) {
                ended = handle_item(state, item);
            }
            (ended, drain(&self.dispatch, state))
        });
        self.dispatch.dispatch(events);
        ended
    }

    fn look(&self, now: Instant, batch: &mut Vec<Transmit>) -> WriterTurn {
        self.update_as_writer(|state| look(state, now, batch))
    }

    fn written(&self, seq: u64) -> Option<Arc<Value>> {
        self.link.update_as_writer(|state| {
            state.written = state.written.max(seq);
            state.retired.take()
        })
    }

    fn hand_over_diff(
        &self,
        now: Instant,
        base: &Arc<Value>,
        local: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        self.update_as_writer(|state| state.engine.handle_timeout_diffed(now, base, local, ops));
    }

    /// 0.6/0.7 ping in their own frames: no WebSocket ping is ever due.
    fn ping_sent(&self, _now: Instant) {}

    fn transport_failed(&self, reason: CloseReason) {
        self.update_as_writer(|state| state.engine.handle_transport_closed(reason));
    }

    async fn engine_closed(&self) -> Instant {
        self.link.wait_engine_closed().await;
        self.link.runtime.now()
    }

    fn finish(&self, close_timed_out: bool) {
        let events = self.link.update(|state| {
            state.close_timed_out = close_timed_out;
            state.engine.handle_transport_closed(CloseReason::Remote);
            state.done = true;
            if let Some(reason) = state.engine.close_reason() {
                self.link.metrics.closed(reason);
            }
            drain(&self.dispatch, state)
        });
        self.dispatch.dispatch(events);
    }
}

/// Waits while the role's queues or the shared budget are full.
async fn wait_reader_room<E, X, D>(link: &Link<E, X>, dispatch: &D)
where
    E: LinkEngine,
    X: Send + 'static,
    D: Dispatch<E, X>,
{
    loop {
        let progress = link.progress.notified();
        let mut progress = std::pin::pin!(progress);
        progress.as_mut().enable();
        let room = dispatch.budget().map(|budget| budget.room());
        let mut room = std::pin::pin!(room);
        if let Some(room) = room.as_mut().as_pin_mut() {
            room.enable();
        }
        let budget_full = dispatch.budget().is_some_and(|budget| budget.is_full());
        if !budget_full && !link.read(|state| dispatch.reader_must_wait(state)) {
            return;
        }
        match room.as_pin_mut() {
            Some(room) => {
                select(progress, room).await;
            }
            None => progress.await,
        }
    }
}

/// Hands one item of the stream to the engine.
fn handle_item<E: LinkEngine, X>(state: &mut LinkState<E, X>, item: Received) -> StreamState {
    match item {
        Received::Text(text) => {
            // Only text frames count as the peer's activity, as in the
            // reference; WebSocket pongs do not.
            if let Some(liveness) = &mut state.liveness {
                liveness.handle_received();
            }
            // A violation closes the engine; reading goes on until the
            // peer's close ends the stream.
            let _ = state.engine.handle_text(&text);
            StreamState::Open
        }
        Received::NotText(other) => other.hand_to(&mut state.engine),
    }
}

/// The writer's look: what is due at `now` fired, frames taken into
/// `batch`.
fn look<E: LinkEngine, X>(
    state: &mut LinkState<E, X>,
    now: Instant,
    batch: &mut Vec<Transmit>,
) -> WriterTurn {
    let due_diff = state.engine.due_diff(now);
    if due_diff.is_none() {
        state.engine.handle_timeout(now);
    }
    if let Some(liveness) = &mut state.liveness {
        // 0.7 pings in its own framing: no WebSocket ping is ever due.
        keep_alive_turn(liveness, &mut state.engine, now, &KEEP_ALIVE_WORDS_07);
    }
    take_frames(&mut state.engine, batch);
    state.writer_deadline = state.engine.poll_timeout();
    let keep_alive = state
        .liveness
        .as_ref()
        .filter(|_| state.engine.close_reason().is_none())
        .map(|liveness| liveness.poll_timeout().0);
    WriterTurn {
        closed: state.engine.close_reason().cloned(),
        ping_due: false,
        due_diff,
        deadline: [state.engine.poll_timeout(), keep_alive]
            .into_iter()
            .flatten()
            .min()
            .map(|at| (at, "engine or ping")),
    }
}
