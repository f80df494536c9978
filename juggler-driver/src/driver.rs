//! The connection driver: one task per connection that moves frames and
//! time between a WebSocket and the engine, following the engine's
//! documented contract.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::join;
use futures_util::{FutureExt, StreamExt};
use juggler_core::{value_cost, CloseReason, Frame, LivenessDeadline, ProtocolError, Transmit};
use tracing::Instrument;

use crate::admission::Admitted;
use crate::budget::{Charge, MemoryBudget};
use crate::connection::{Shared, State, Wake};
use crate::freeing::{yield_once, Freeing};
use crate::reader_steps::{binary_frame, frame_len, stream_ended, Received, StreamItem};
use crate::writer_steps::{
    diff_due_sync, keep_alive_turn, send_close, send_websocket_ping, take_frames,
    until_done_or_close_timeout, wait, write_frames, DeadlineTimer, KeepAliveWords,
};
use crate::{BoxFuture, Connection, ConnectionOptions, Runtime};

/// Most frames the reader hands to the engine under one lock.
const READ_BATCH: usize = 64;

/// The reader takes no more buffered frames once its batch holds this much
/// text: a batch's memory stays near one large message, not 64 of them.
const READ_BATCH_BYTES: usize = 1 << 20;

/// Starts driving an established WebSocket on `runtime` and returns the
/// application's handle to it. Runtime crates call this after their
/// handshake; applications use `connect` or `listen` instead.
pub fn start<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    runtime: Arc<dyn Runtime>,
) -> Connection
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (connection, driver) = prepare(socket, options, peer_addr, runtime.clone());
    runtime.spawn(driver);
    connection
}

/// Like [`start`], but hands back the driver instead of spawning it, so a
/// server can give the connection to the application before the first
/// frame is read: a change callback registered then misses nothing.
pub fn prepare<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    runtime: Arc<dyn Runtime>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let budget = MemoryBudget::new(None);
    drive(
        socket,
        options,
        peer_addr,
        Admitted::default(),
        runtime,
        budget,
        None,
    )
}

/// [`prepare`] for a server connection, keeping the request that opened it
/// and the context its admission attached.
pub(crate) fn prepare_admitted<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    admitted: Admitted,
    runtime: Arc<dyn Runtime>,
    budget: Arc<MemoryBudget>,
    first_frame: Option<String>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer_addr = admitted
        .request
        .as_ref()
        .and_then(|request| request.peer_addr);
    drive(
        socket,
        options,
        peer_addr,
        admitted,
        runtime,
        budget,
        first_frame,
    )
}

/// The connection's shared state and its driver, in the connection's span.
fn drive<S>(
    socket: WebSocketStream<S>,
    options: ConnectionOptions,
    peer_addr: Option<SocketAddr>,
    admitted: Admitted,
    runtime: Arc<dyn Runtime>,
    budget: Arc<MemoryBudget>,
    first_frame: Option<String>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared::new(
        options,
        peer_addr,
        admitted,
        runtime.clone(),
        budget,
    ));
    let span = shared.span.clone();
    let driver = run(socket, shared.clone(), runtime, first_frame).instrument(span);
    (Connection::new(shared), Box::pin(driver))
}

/// Drives one connection until its socket is done with.
async fn run<S>(
    socket: WebSocketStream<S>,
    shared: Arc<Shared>,
    runtime: Arc<dyn Runtime>,
    first_frame: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = socket.split();
    let reader = std::pin::pin!(read_loop(stream, &shared, first_frame));
    let writer = std::pin::pin!(write_loop(sink, &shared, &*runtime));
    // Reading and writing go on until both are done: the writer ends after
    // its close frame, the reader at the peer's. Once the engine is closed
    // for any reason, all of it gets `close_timeout`, then the socket is
    // dropped, so a peer that stops reading cannot hold a shutdown up.
    // `join` polls the reader first, then the writer, on every wake-up:
    // the writer sees at once what the reader's frames gave it to do.
    let io = join(reader, writer);
    let closed_at = shared.wait_engine_closed();
    let close_timeout = shared.options.close_timeout;
    if until_done_or_close_timeout(io, closed_at, &*runtime, close_timeout).await {
        shared.update(Wake::Writer, |state| state.driver.close_timed_out = true);
    }
    // Dropped outside the lock (it may own the last handle of something
    // whose drop locks again), and before the end is announced, so that
    // what it owns is free by the time `wait_closed` returns.
    let filter = shared.update(Wake::Writer, State::take_message_filter);
    drop(filter);
    shared.update(Wake::Writer, |state| {
        state.engine.handle_transport_closed(CloseReason::Remote);
        state.driver.done = true;
        report_collapsed(shared.as_ref(), state);
        if let Some(reason) = state.engine.close_reason() {
            shared.metrics.closed(reason);
        }
    });
}

/// Counts the DATA frames the engine collapsed since last counted.
fn report_collapsed(shared: &Shared, state: &mut State) {
    let collapsed = state.engine.collapsed_data_frames();
    shared
        .metrics
        .collapsed(collapsed - state.driver.collapsed_reported);
    state.driver.collapsed_reported = collapsed;
}

/// Reads frames into the engine until the stream ends. Frames that are
/// already buffered are taken together, up to the receive queue's room in
/// messages and in bytes, [`READ_BATCH`] and [`READ_BATCH_BYTES`], decoded
/// as they are taken, and handed to the engine under one lock. A message
/// is charged to the byte budget as soon as it is decoded, so readers of
/// other connections see it at once.
async fn read_loop<S>(
    mut stream: WebSocketReceiver<S>,
    shared: &Shared,
    first_frame: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The frame generation detection read comes first.
    let mut first = first_frame.map(|text| Some(Ok(Message::text(text))));
    // Grown on use: an idle connection holds no batch buffers.
    let mut batch: VecDeque<Incoming> = VecDeque::new();
    let budget = shared.budget();
    loop {
        let room = shared.wait_for_reader_room().await;
        let messages = room.messages.min(READ_BATCH);
        let mut frame = match first.take() {
            Some(frame) => frame,
            None => stream.next().await,
        };
        let (mut text, mut cost, mut frames) = (0, 0, 0);
        loop {
            text += frame_len(&frame);
            let incoming = Incoming::decode(frame, &budget);
            frames += usize::from(matches!(
                incoming,
                Incoming::Frame(_) | Incoming::Binary | Incoming::Message(..)
            ));
            cost += incoming.message_cost();
            let last = incoming.ends_stream();
            batch.push_back(incoming);
            if last
                || batch.len() >= messages
                || text >= READ_BATCH_BYTES
                || cost >= room.bytes
                || budget.is_full()
            {
                break;
            }
            // A poll that finds nothing registers a no-op waker; the next
            // `.await` on the stream registers the real one.
            match stream.next().now_or_never() {
                Some(next) => frame = next,
                None => break,
            }
        }
        shared.metrics.received(frames, text);
        while !batch.is_empty() {
            let stream_state = shared.writer.as_reader(|| {
                shared.update(Wake::Reader, |state| {
                    if let Some(liveness) = &mut state.driver.liveness {
                        liveness.handle_received();
                    }
                    handle_frames(state, &mut batch)
                })
            });
            if stream_state == StreamState::Ended {
                return;
            }
        }
    }
}

/// Whether the peer's stream goes on after what the reader handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    /// The peer closed, or reading failed: nothing more is read.
    Ended,
}

/// Hands frames from the front of `batch` to the engine. Change callbacks
/// read the remote data when they run, so while any are registered a
/// remote data change ends the turn: each callback call then sees the data
/// of its own change.
fn handle_frames(state: &mut State, batch: &mut VecDeque<Incoming>) -> StreamState {
    let one_change = state.has_change_callbacks();
    while let Some(frame) = batch.pop_front() {
        if handle_frame(state, frame) == StreamState::Ended {
            return StreamState::Ended;
        }
        if one_change {
            state.drain_events();
            if state.has_unreported_changes() {
                return StreamState::Open;
            }
        }
    }
    StreamState::Open
}

/// A frame read, classified for the engine, text frames decoded: decoding
/// (JSON parsing) is most of a frame's cost, and done here it does not hold
/// the connection's lock, which the application's `send` and `receive`
/// take.
enum Incoming {
    /// A text frame decoded.
    Frame(Result<Frame, ProtocolError>),
    /// A binary frame, which the engine refuses.
    Binary,
    /// A MESSAGE frame decoded, and what its payload costs
    /// ([`value_cost`]), charged to the byte budget (released if the frame
    /// is dropped unhandled, with its batch when the driver is).
    Message(Frame, Charge),
    /// A ping, pong or raw frame: nothing for the engine.
    Control,
    /// The peer's close frame (its code and reason, if any) or the end of
    /// the stream.
    Closed(Option<(u16, String)>),
    /// Reading failed; nothing more is read.
    Failed(CloseReason),
}

impl Incoming {
    fn decode(frame: StreamItem, budget: &Arc<MemoryBudget>) -> Self {
        match Received::of(frame) {
            Received::Text(text) => match Frame::decode(&text) {
                Ok(Frame::Message(message)) => {
                    let charge = Charge::new(budget, value_cost(&message));
                    Incoming::Message(Frame::Message(message), charge)
                }
                decoded => Incoming::Frame(decoded),
            },
            Received::Binary => Incoming::Binary,
            Received::Control => Incoming::Control,
            Received::Closed(peer_close) => Incoming::Closed(peer_close),
            Received::Failed(reason) => Incoming::Failed(reason),
        }
    }

    /// What it holds charged to the byte budget.
    fn message_cost(&self) -> usize {
        match self {
            Incoming::Message(_, charge) => charge.bytes(),
            _ => 0,
        }
    }

    /// Whether nothing is read after it.
    fn ends_stream(&self) -> bool {
        matches!(self, Incoming::Closed(_) | Incoming::Failed(_))
    }
}

/// Hands one frame to the engine.
fn handle_frame(state: &mut State, frame: Incoming) -> StreamState {
    match frame {
        // A violation closes the engine itself; reading goes on until the
        // peer's close frame ends the stream.
        Incoming::Frame(Ok(frame)) => {
            let _ = state.engine.handle_frame(frame);
            StreamState::Open
        }
        Incoming::Message(frame, charge) => {
            let _ = state.engine.handle_frame(frame);
            state.drain_events_charged(Some(charge));
            StreamState::Open
        }
        Incoming::Frame(Err(violation)) => {
            state.engine.handle_protocol_error(violation);
            StreamState::Open
        }
        Incoming::Binary => {
            binary_frame(&mut state.engine);
            StreamState::Open
        }
        Incoming::Control => StreamState::Open,
        Incoming::Closed(peer_close) => {
            state.driver.peer_close = peer_close;
            stream_ended(&mut state.engine, None);
            StreamState::Ended
        }
        Incoming::Failed(reason) => {
            stream_ended(&mut state.engine, Some(reason));
            StreamState::Ended
        }
    }
}

/// What the writer found to do in one look at the state, besides the
/// frames it took.
struct WriterTurn {
    /// The engine is closed: after the frames, the close frame, and done.
    closed: Option<CloseReason>,
    /// A keep-alive ping is due.
    ping_due: bool,
    /// When to look again if nothing wakes the writer before.
    deadline: Option<Deadline>,
    /// The versions the due sync diffs, for the writer to diff outside
    /// the lock ([`diff_due_sync`]).
    due_diff: Option<(Arc<serde_json::Value>, Arc<serde_json::Value>)>,
}

/// A moment the writer must look again at, and why.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    reason: DeadlineReason,
}

#[derive(Debug, Clone, Copy)]
enum DeadlineReason {
    /// The engine's (delayed autoflush).
    Engine,
    /// Keep-alive's: the next ping, or the answer to the last one.
    KeepAlive(LivenessDeadline),
}

impl DeadlineReason {
    fn describe(self) -> &'static str {
        match self {
            DeadlineReason::Engine => "autoflush",
            DeadlineReason::KeepAlive(LivenessDeadline::NextPing) => "keep-alive ping",
            DeadlineReason::KeepAlive(LivenessDeadline::AnswerDue) => "keep-alive answer due",
        }
    }
}

/// How 0.5 words the closes keep-alive makes.
const KEEP_ALIVE_WORDS: KeepAliveWords = KeepAliveWords {
    dead: "keep-alive timeout",
    stalled: "the peer stopped reading: a write stalled past the keep-alive timeout",
};

/// Writes the engine's frames, fires its deadline, runs keep-alive and
/// finally sends the close frame. Each turn looks at the state once, then
/// does the first thing that applies: write frames, close, ping, or wait.
async fn write_loop<S>(mut sink: WebSocketSender<S>, shared: &Shared, runtime: &dyn Runtime)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stall_limit = shared.options.keep_alive.map(|k| k.interval + k.timeout);
    let mut batch: Vec<Transmit> = Vec::new();
    let mut timer = DeadlineTimer::default();
    let mut freeing = Freeing::default();
    loop {
        let notified = shared.writer.notified();
        // Whatever the reader flagged, this look at the state covers.
        shared.writer.take_kick();
        let turn = look(shared, runtime.now(), &mut batch);
        if !batch.is_empty() {
            let written = write_out(
                &mut sink,
                &mut batch,
                shared,
                runtime,
                stall_limit,
                &mut freeing,
            )
            .await;
            if let Err(failure) = written {
                shared.update(Wake::Writer, |state| {
                    state.engine.handle_transport_closed(failure)
                });
                return;
            }
            continue;
        }
        if let Some(reason) = turn.closed {
            send_close(&mut sink, reason).await;
            return;
        }
        if let Some(due) = turn.due_diff {
            diff_due_sync(runtime, due, &mut freeing, |now, base, local, ops| {
                shared.update(Wake::Writer, |state| {
                    state.engine.handle_timeout_diffed(now, base, local, ops)
                })
            });
            continue;
        }
        if turn.ping_due {
            if let Err(failure) = send_ping(&mut sink, shared, runtime).await {
                shared.update(Wake::Writer, |state| {
                    state.engine.handle_transport_closed(failure)
                });
                return;
            }
            continue;
        }
        if !freeing.is_empty() {
            // A slice, then the other ready tasks (a local peer's reader),
            // then a new look: new frames go out before the next slice.
            freeing.free_slice();
            yield_once().await;
            continue;
        }
        let deadline = turn.deadline.map(|d| (d.at, d.reason.describe()));
        let notified = std::pin::pin!(notified);
        wait(&shared.writer, notified, deadline, &mut timer, runtime).await;
    }
}

/// One look at the state: the engine's and keep-alive's timers fired,
/// frames taken into `batch`, and what else there is to do.
fn look(shared: &Shared, now: Instant, batch: &mut Vec<Transmit>) -> WriterTurn {
    shared.update(Wake::Writer, |state| {
        let due_diff = state.engine.due_diff(now);
        if due_diff.is_none() {
            state.engine.handle_timeout(now);
        }
        let held = state.reader_must_wait(&shared.options);
        let mut ping_due = false;
        if let Some(liveness) = &mut state.driver.liveness {
            if held {
                liveness.handle_reader_held(now);
            }
            ping_due = keep_alive_turn(liveness, &mut state.engine, now, &KEEP_ALIVE_WORDS);
        }
        take_frames(&mut state.engine, batch);
        report_collapsed(shared, state);
        let engine = state.engine.poll_timeout().map(|at| Deadline {
            at,
            reason: DeadlineReason::Engine,
        });
        let keep_alive = state.driver.liveness.as_ref().map(|liveness| {
            let (at, why) = liveness.poll_timeout();
            Deadline {
                at,
                reason: DeadlineReason::KeepAlive(why),
            }
        });
        WriterTurn {
            closed: state.engine.close_reason().cloned(),
            ping_due,
            due_diff,
            deadline: [engine, keep_alive]
                .into_iter()
                .flatten()
                .min_by_key(|deadline| deadline.at),
        }
    })
}

/// Writes the batch within the stall limit ([`write_frames`]); once
/// written, replaced local data the application retired goes to
/// `freeing`.
async fn write_out<S>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Vec<Transmit>,
    shared: &Shared,
    runtime: &dyn Runtime,
    stall_limit: Option<Duration>,
    freeing: &mut Freeing,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let last = batch.last().map_or(0, |transmit| transmit.seq);
    for transmit in batch.iter() {
        shared.metrics.sent(transmit.kind, transmit.text.len());
    }
    write_frames(sink, batch, runtime, stall_limit, &KEEP_ALIVE_WORDS).await?;
    let retired = shared.update(Wake::Writer, |state| {
        state.driver.written = last;
        state.driver.retired.take()
    });
    if let Some(retired) = retired {
        freeing.push(retired);
    }
    Ok(())
}

/// A keep-alive ping, then keep-alive told when it went out.
async fn send_ping<S>(
    sink: &mut WebSocketSender<S>,
    shared: &Shared,
    runtime: &dyn Runtime,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    send_websocket_ping(sink).await?;
    let now = runtime.now();
    shared.update(Wake::Writer, |state| {
        if let Some(liveness) = &mut state.driver.liveness {
            liveness.handle_ping_sent(now);
        }
    });
    Ok(())
}
