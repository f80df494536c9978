//! The driver of a 0.6/0.7 connection, the same for both roles: one task
//! that moves text frames and time between a WebSocket and the role's
//! engine, and keeps the transport's pings.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{join, select};
use futures_util::StreamExt;
use juggler_core::{CloseReason, Driven, FlushTicket, Liveness, Transmit};
use serde_json::Value;
use tokio::sync::Notify;

use super::Options;
use crate::freeing::{yield_once, Freeing, Retired};
use crate::reader_steps::{binary_frame, stream_ended, Received, StreamItem};
use crate::writer_steps::{
    diff_due_sync, keep_alive_turn, send_close, take_frames, until_done_or_close_timeout, wait,
    write_frames, DeadlineTimer, KeepAliveWords,
};
use crate::{Error, Runtime};

/// What the driver needs of an engine of either role: the core's engine
/// contract, and what crosses to the application's tasks.
pub(crate) trait LinkEngine: Driven<Event: Send + 'static> + Send + 'static {}

impl<E: Driven<Event: Send + 'static> + Send + 'static> LinkEngine for E {}

/// What the reader and the writer share with the application's handles.
pub(crate) struct Link<E, X> {
    state: Mutex<LinkState<E, X>>,
    /// Wakes the writer: frames to write, a close, a new deadline.
    writer: crate::writer_wake::WriterWake,
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
    metrics: crate::metrics::ConnectionMetrics,
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

/// Drives one connection until its socket is done with.
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
    let (sink, stream) = socket.split();
    let reader = std::pin::pin!(read_loop(stream, &link, &dispatch, first_frame));
    let writer = std::pin::pin!(write_loop(sink, &link, &dispatch));
    let io = join(reader, writer);
    let runtime = &*link.runtime;
    let closed_at = async {
        link.wait_engine_closed().await;
        runtime.now()
    };
    let close_timeout = link.options.close_timeout;
    let timed_out = until_done_or_close_timeout(io, closed_at, runtime, close_timeout).await;
    let events = link.update(|state| {
        state.close_timed_out = timed_out;
        state.engine.handle_transport_closed(CloseReason::Remote);
        state.done = true;
        if let Some(reason) = state.engine.close_reason() {
            link.metrics.closed(reason);
        }
        drain(&dispatch, state)
    });
    dispatch.dispatch(events);
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

/// Reads frames into the engine until the stream ends.
async fn read_loop<S, E, X, D>(
    mut stream: WebSocketReceiver<S>,
    link: &Link<E, X>,
    dispatch: &D,
    first_frame: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    E: LinkEngine,
    X: Send + 'static,
    D: Dispatch<E, X>,
{
    let mut first = first_frame.map(|text| Some(Ok(Message::text(text))));
    loop {
        wait_reader_room(link, dispatch).await;
        let item = match first.take() {
            Some(item) => item,
            None => stream.next().await,
        };
        if let Some(Ok(Message::Text(text))) = &item {
            link.metrics.received(1, text.len());
        }
        let ended = link.writer.as_reader(|| {
            let (ended, events) = link.update(|state| {
                let ended = handle_item(state, item);
                (ended, drain(dispatch, state))
            });
            dispatch.dispatch(events);
            ended
        });
        if ended {
            return;
        }
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

/// Hands one item of the stream to the engine; whether the stream ended.
fn handle_item<E: LinkEngine, X>(state: &mut LinkState<E, X>, item: StreamItem) -> bool {
    match Received::of(item) {
        Received::Text(text) => {
            // Only text frames count as the peer's activity, as in the
            // reference; WebSocket pongs do not.
            if let Some(liveness) = &mut state.liveness {
                liveness.handle_received();
            }
            // A violation closes the engine; reading goes on until the
            // peer's close ends the stream.
            let _ = state.engine.handle_text(&text);
            false
        }
        Received::Binary => {
            binary_frame(&mut state.engine);
            false
        }
        Received::Control => false,
        Received::Closed(_) => {
            stream_ended(&mut state.engine, None);
            true
        }
        Received::Failed(reason) => {
            stream_ended(&mut state.engine, Some(reason));
            true
        }
    }
}

/// What the writer found in one look at the state.
struct Turn {
    closed: Option<CloseReason>,
    deadline: Option<Instant>,
    /// The versions the due sync diffs, for the writer to diff outside
    /// the lock.
    due_diff: Option<(Arc<Value>, Arc<Value>)>,
}

/// How 0.6/0.7 word the closes keep-alive makes.
const KEEP_ALIVE_WORDS: KeepAliveWords = KeepAliveWords {
    dead: "ping timeout",
    stalled: "the peer stopped reading: a write stalled past the ping timeout",
};

/// Writes the engine's frames, fires its timers and the pings, and
/// finally sends the close frame. Each turn looks at the state once, then
/// does the first thing that applies: write frames, close, diff the due
/// sync, free a slice, or wait.
async fn write_loop<S, E, X, D>(mut sink: WebSocketSender<S>, link: &Link<E, X>, dispatch: &D)
where
    S: AsyncRead + AsyncWrite + Unpin,
    E: LinkEngine,
    X: Send + 'static,
    D: Dispatch<E, X>,
{
    let runtime = &*link.runtime;
    let stall_limit = link.options.pings().map(|(delay, timeout)| delay + timeout);
    let mut batch: Vec<Transmit> = Vec::new();
    let mut timer = DeadlineTimer::default();
    let mut freeing = Freeing::default();
    loop {
        let notified = link.writer.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        // Whatever the reader flagged, this look covers.
        link.writer.take_kick();
        let now = runtime.now();
        let (turn, events) = link.update_as_writer(|state| {
            let turn = look(state, now, &mut batch);
            (turn, drain(dispatch, state))
        });
        dispatch.dispatch(events);
        if !batch.is_empty() {
            if let Err(reason) =
                write_out(&mut sink, &mut batch, link, stall_limit, &mut freeing).await
            {
                let events = link.update_as_writer(|state| {
                    state.engine.handle_transport_closed(reason);
                    drain(dispatch, state)
                });
                dispatch.dispatch(events);
                return;
            }
            continue;
        }
        if let Some(reason) = turn.closed {
            send_close(&mut sink, reason).await;
            return;
        }
        if let Some(due) = turn.due_diff {
            diff_due_sync(runtime, due, &mut freeing, |now, base, state, ops| {
                let events = link.update_as_writer(|link_state| {
                    link_state
                        .engine
                        .handle_timeout_diffed(now, base, state, ops);
                    drain(dispatch, link_state)
                });
                dispatch.dispatch(events);
            });
            continue;
        }
        if !freeing.is_empty() {
            // A slice, then the other ready tasks (a local peer's reader),
            // then a new look: new frames go out before the next slice.
            freeing.free_slice();
            yield_once().await;
            continue;
        }
        let deadline = turn.deadline.map(|at| (at, "engine or ping"));
        wait(&link.writer, notified, deadline, &mut timer, runtime).await;
    }
}

/// Writes the batch within the stall limit ([`write_frames`]); once
/// written, the frames count for flush tickets and a retired state goes
/// to `freeing`.
async fn write_out<S, E: LinkEngine, X: Send + 'static>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Vec<Transmit>,
    link: &Link<E, X>,
    stall_limit: Option<Duration>,
    freeing: &mut Freeing,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let last = batch.iter().map(|frame| frame.seq).max().unwrap_or(0);
    for frame in batch.iter() {
        link.metrics.sent(frame.kind, frame.text.len());
    }
    write_frames(sink, batch, &*link.runtime, stall_limit, &KEEP_ALIVE_WORDS).await?;
    let retired = link.update_as_writer(|state| {
        state.written = state.written.max(last);
        state.retired.take()
    });
    if let Some(retired) = retired {
        freeing.push(retired);
    }
    Ok(())
}

/// Fires what is due at `now`, takes frames into `batch`.
fn look<E: LinkEngine, X>(
    state: &mut LinkState<E, X>,
    now: Instant,
    batch: &mut Vec<Transmit>,
) -> Turn {
    let due_diff = state.engine.due_diff(now);
    if due_diff.is_none() {
        state.engine.handle_timeout(now);
    }
    if let Some(liveness) = &mut state.liveness {
        // 0.7 pings in its own framing: no WebSocket ping is ever due.
        keep_alive_turn(liveness, &mut state.engine, now, &KEEP_ALIVE_WORDS);
    }
    take_frames(&mut state.engine, batch);
    state.writer_deadline = state.engine.poll_timeout();
    let keep_alive = state
        .liveness
        .as_ref()
        .filter(|_| state.engine.close_reason().is_none())
        .map(|liveness| liveness.poll_timeout().0);
    Turn {
        closed: state.engine.close_reason().cloned(),
        due_diff,
        deadline: [state.engine.poll_timeout(), keep_alive]
            .into_iter()
            .flatten()
            .min(),
    }
}
