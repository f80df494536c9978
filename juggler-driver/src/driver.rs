//! The connection driver: one task per connection that moves frames and
//! time between a WebSocket and the engine, following the engine's
//! documented contract.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{join, poll_fn, select, Either};
use futures_util::{FutureExt, SinkExt, StreamExt};
use juggler_core::{CloseReason, Frame, FrameText, ProtocolError, Transmit};

use crate::connection::{Shared, State, Wake};
use crate::error::close_reason_of;
use crate::{BoxFuture, Connection, ConnectionOptions, Runtime};

/// Most frames the writer takes from the engine before one socket flush,
/// so one busy connection cannot hold its task forever.
const WRITE_BATCH: usize = 256;

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
    let shared = Arc::new(Shared::new(options, peer_addr, runtime.clone()));
    let driver = run(socket, shared.clone(), runtime);
    (Connection::new(shared), Box::pin(driver))
}

/// Drives one connection until its socket is done with.
async fn run<S>(socket: WebSocketStream<S>, shared: Arc<Shared>, runtime: Arc<dyn Runtime>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = socket.split();
    let reader = std::pin::pin!(read_loop(stream, &shared));
    let writer = std::pin::pin!(write_loop(sink, &shared, &*runtime));
    // Reading and writing go on until both are done: the writer ends after
    // its close frame, the reader at the peer's. Once the engine is closed
    // for any reason, all of it gets `close_timeout`, then the socket is
    // dropped, so a peer that stops reading cannot hold a shutdown up.
    // `join` polls the reader first, then the writer, on every wake-up:
    // the writer sees at once what the reader's frames gave it to do.
    let io = join(reader, writer);
    let close_timeout = shared.options.close_timeout;
    let bound = async {
        let closed_at = shared.wait_engine_closed().await;
        runtime.sleep_until(closed_at + close_timeout).await;
        shared.update(Wake::Writer, |state| state.close_timed_out = true);
    };
    select(std::pin::pin!(io), std::pin::pin!(bound)).await;
    // Dropped outside the lock (it may own the last handle of something
    // whose drop locks again), and before the end is announced, so that
    // what it owns is free by the time `wait_closed` returns.
    let filter = shared.update(Wake::Writer, State::take_message_filter);
    drop(filter);
    shared.update(Wake::Writer, |state| {
        state.engine.handle_transport_closed(CloseReason::Remote);
        state.driver_done = true;
    });
}

/// Reads frames into the engine until the stream ends. Frames that are
/// already buffered are taken together, up to the receive queue's room,
/// [`READ_BATCH`] and [`READ_BATCH_BYTES`], decoded as they are taken, and
/// handed to the engine under one lock.
async fn read_loop<S>(mut stream: WebSocketReceiver<S>, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limit = shared.options.max_receive_queue;
    // Grown on use: an idle connection holds no batch buffers.
    let mut batch: VecDeque<Incoming> = VecDeque::new();
    loop {
        let room = shared.wait_for_reader_room(limit).await.min(READ_BATCH);
        let mut frame = stream.next().await;
        let mut bytes = 0;
        loop {
            bytes += frame_len(&frame);
            let incoming = Incoming::decode(frame);
            let last = incoming.ends_stream();
            batch.push_back(incoming);
            if last || batch.len() >= room || bytes >= READ_BATCH_BYTES {
                break;
            }
            // A poll that finds nothing registers a no-op waker; the next
            // `.await` on the stream registers the real one.
            match stream.next().now_or_never() {
                Some(next) => frame = next,
                None => break,
            }
        }
        let now = shared.runtime.now();
        while !batch.is_empty() {
            let ended = shared.as_reader(|| {
                shared.update(Wake::Reader, |state| {
                    state.last_received = now;
                    handle_frames(state, &mut batch)
                })
            });
            if ended {
                return;
            }
        }
    }
}

/// Hands frames from the front of `batch` to the engine; `true` if the
/// stream ended. Change callbacks read the remote data when they run, so
/// while any are registered a remote data change ends the turn: each
/// callback call then sees the data of its own change.
fn handle_frames(state: &mut State, batch: &mut VecDeque<Incoming>) -> bool {
    let one_change = state.has_change_callbacks();
    while let Some(frame) = batch.pop_front() {
        if handle_frame(state, frame) {
            return true;
        }
        if one_change {
            state.drain_events();
            if state.has_unreported_changes() {
                return false;
            }
        }
    }
    false
}

/// What the WebSocket stream yields.
type ReadFrame = Option<Result<Message, WsError>>;

/// A frame read, classified for the engine, text frames decoded: decoding
/// (JSON parsing) is most of a frame's cost, and done here it does not hold
/// the connection's lock, which the application's `send` and `receive`
/// take.
enum Incoming {
    /// A text frame decoded, or a frame the engine refuses (binary).
    Frame(Result<Frame, ProtocolError>),
    /// A ping, pong or raw frame: nothing for the engine.
    Control,
    /// The peer's close frame (its code and reason, if any) or the end of
    /// the stream.
    Closed(Option<(u16, String)>),
    /// Reading failed; nothing more is read.
    Failed(CloseReason),
}

impl Incoming {
    fn decode(frame: ReadFrame) -> Self {
        match frame {
            Some(Ok(Message::Text(text))) => Incoming::Frame(Frame::decode(&text)),
            Some(Ok(Message::Binary(_))) => Incoming::Frame(Err(ProtocolError::BinaryFrame)),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Incoming::Control,
            Some(Ok(Message::Close(frame))) => Incoming::Closed(
                frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
            ),
            None => Incoming::Closed(None),
            Some(Err(err)) => Incoming::Failed(close_reason_of(&err)),
        }
    }

    /// Whether nothing is read after it.
    fn ends_stream(&self) -> bool {
        matches!(self, Incoming::Closed(_) | Incoming::Failed(_))
    }
}

/// The payload size of a data frame, 0 for others.
fn frame_len(frame: &ReadFrame) -> usize {
    match frame {
        Some(Ok(Message::Text(text))) => text.len(),
        Some(Ok(Message::Binary(data))) => data.len(),
        _ => 0,
    }
}

/// Hands one frame to the engine; `true` if the stream ended with it.
fn handle_frame(state: &mut State, frame: Incoming) -> bool {
    match frame {
        // A violation closes the engine itself; reading goes on until the
        // peer's close frame ends the stream.
        Incoming::Frame(Ok(frame)) => {
            let _ = state.engine.handle_frame(frame);
            false
        }
        Incoming::Frame(Err(violation)) => {
            state.engine.handle_protocol_error(violation);
            false
        }
        Incoming::Control => false,
        Incoming::Closed(peer_close) => {
            state.peer_close = peer_close;
            state.engine.handle_transport_closed(CloseReason::Remote);
            true
        }
        Incoming::Failed(CloseReason::Protocol(violation)) => {
            state.engine.handle_protocol_error(violation);
            true
        }
        Incoming::Failed(reason) => {
            state.engine.handle_transport_closed(reason);
            true
        }
    }
}

/// What the writer found to do in one look at the state.
struct WriterWork {
    closed: Option<CloseReason>,
    wake_at: Option<Instant>,
}

/// Writes the engine's frames, fires its deadline, runs keep-alive and
/// finally sends the close frame.
async fn write_loop<S>(mut sink: WebSocketSender<S>, shared: &Shared, runtime: &dyn Runtime)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let keep_alive = shared.options.keep_alive;
    let mut next_ping = keep_alive.map(|k| runtime.now() + k.interval);
    let mut ping_sent: Option<Instant> = None;
    let mut batch: Vec<Transmit> = Vec::new();
    let mut deadline = DeadlineTimer::default();
    loop {
        let notified = shared.writer_notify.notified();
        // Whatever the reader flagged, this look at the state covers.
        shared.take_writer_kick();
        let now = runtime.now();
        let work = shared.update(Wake::Writer, |state| {
            state.engine.handle_timeout(now);
            if let (Some(k), Some(sent)) = (keep_alive, ping_sent) {
                if state.last_received >= sent {
                    ping_sent = None;
                } else if state.receive_queue_full(shared.options.max_receive_queue) {
                    // The application, not the peer, holds the reader back:
                    // the wait for an answer starts again from here (and
                    // the pong deadline, moved on, is not one already past
                    // that would wake this loop at once, again and again).
                    ping_sent = Some(now);
                } else if now >= sent + k.timeout {
                    state.engine.handle_transport_closed(CloseReason::Transport(
                        "keep-alive timeout".into(),
                    ));
                }
            }
            while batch.len() < WRITE_BATCH {
                match state.engine.poll_transmit() {
                    Some(transmit) => batch.push(transmit),
                    None => break,
                }
            }
            let pong_deadline = ping_sent.zip(keep_alive).map(|(sent, k)| sent + k.timeout);
            WriterWork {
                closed: state.engine.close_reason().cloned(),
                wake_at: [state.engine.poll_timeout(), next_ping, pong_deadline]
                    .into_iter()
                    .flatten()
                    .min(),
            }
        });

        if let Some(last) = batch.last().map(|transmit| transmit.seq) {
            // A write that makes no progress for a whole keep-alive period is
            // a peer that stopped reading: keep-alive cannot run meanwhile.
            let outcome = {
                let write = std::pin::pin!(write_batch(&mut sink, &mut batch));
                match keep_alive {
                    Some(k) => {
                        let stall = runtime.sleep_until(runtime.now() + k.interval + k.timeout);
                        match select(write, stall).await {
                            Either::Left((result, _)) => Some(result),
                            Either::Right(_) => None,
                        }
                    }
                    None => Some(write.await),
                }
            };
            let failure = match outcome {
                Some(Ok(())) => {
                    shared.update(Wake::Writer, |state| state.written = last);
                    continue;
                }
                Some(Err(err)) => close_reason_of(&err),
                None => CloseReason::Transport(
                    "the peer stopped reading: a write stalled past the keep-alive timeout".into(),
                ),
            };
            batch.clear();
            shared.update(Wake::Writer, |state| {
                state.engine.handle_transport_closed(failure)
            });
            return;
        }

        if let Some(reason) = work.closed {
            match reason {
                // tungstenite queued its reply to the peer's close frame;
                // closing the sink sends it.
                CloseReason::Remote => {
                    let _ = SinkExt::close(&mut sink).await;
                }
                CloseReason::Transport(_) => {}
                local_or_protocol => {
                    let (code, text) = local_or_protocol.close_frame();
                    let frame = CloseFrame {
                        code: code.into(),
                        reason: text.into(),
                    };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                }
            }
            return;
        }

        if let (Some(k), Some(at)) = (keep_alive, next_ping) {
            if now >= at {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    shared.update(Wake::Writer, |state| {
                        state.engine.handle_transport_closed(CloseReason::Transport(
                            "keep-alive ping failed".into(),
                        ))
                    });
                    return;
                }
                ping_sent = ping_sent.or(Some(now));
                next_ping = Some(now + k.interval);
                continue;
            }
        }

        // Woken by the notify, the reader's flag (polled, not waited on:
        // the reader sets it only while the task runs), or the deadline.
        let mut notified = std::pin::pin!(notified);
        let woken = poll_fn(|cx| match shared.take_writer_kick() {
            true => Poll::Ready(()),
            false => notified.as_mut().poll(cx),
        });
        match work.wake_at {
            Some(at) => {
                let sleep = deadline.until(at, runtime);
                if let Either::Right(_) = select(std::pin::pin!(woken), sleep).await {
                    deadline.fired();
                }
            }
            None => woken.await,
        }
    }
}

/// The writer's deadline timer, kept across its waits while the deadline
/// stays the same. Most waits end with a notify long before the deadline
/// (keep-alive's next ping is 20 s away), and arming a fresh timer for each
/// is not free everywhere: on smol (async-io) every armed timer wakes the
/// thread that polls the reactor.
#[derive(Default)]
struct DeadlineTimer {
    armed: Option<(Instant, BoxFuture)>,
}

impl DeadlineTimer {
    /// The timer for `at`: the armed one if it is for `at`, else a new one.
    fn until(&mut self, at: Instant, runtime: &dyn Runtime) -> &mut BoxFuture {
        if !matches!(&self.armed, Some((armed_at, _)) if *armed_at == at) {
            self.armed = None;
        }
        &mut self
            .armed
            .get_or_insert_with(|| (at, runtime.sleep_until(at)))
            .1
    }

    /// Forgets the timer that completed: a finished future is not polled
    /// again.
    fn fired(&mut self) {
        self.armed = None;
    }
}

/// Feeds every frame of `batch` to the socket, then flushes once.
async fn write_batch<S>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Vec<Transmit>,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for transmit in batch.drain(..) {
        sink.feed(Message::Text(utf8_bytes(transmit.text))).await?;
    }
    sink.flush().await
}

/// The frame text as tungstenite's text type, without a copy when owned.
fn utf8_bytes(text: FrameText) -> Utf8Bytes {
    match text.into_owned_or_shared() {
        Ok(owned) => Utf8Bytes::from(owned),
        Err(shared) => Utf8Bytes::from(&*shared),
    }
}
