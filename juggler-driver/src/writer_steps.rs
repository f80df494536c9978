//! The writer's steps that every generation's driver takes the same way,
//! written once: take frames from the engine, write them within the stall
//! limit, keep-alive's turn, the due sync diffed outside the lock, the
//! wait for a wake-up or a deadline, and the close frame.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use async_tungstenite::WebSocketSender;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::{poll_fn, select, Either};
use futures_util::SinkExt;
use juggler_core::{CloseReason, Driven, FrameText, Liveness, LivenessAction, Transmit};
use serde_json::Value;
use tokio::sync::futures::Notified;

use crate::error::close_reason_of;
use crate::freeing::Freeing;
use crate::writer_wake::WriterWake;
use crate::{BoxFuture, Runtime};

/// Most frames the writer takes from the engine before one socket flush,
/// so one busy connection cannot hold its task forever.
pub(crate) const WRITE_BATCH: usize = 256;

/// How a generation words the closes keep-alive makes, in its
/// [`CloseReason::Transport`]s.
pub(crate) struct KeepAliveWords {
    /// The peer answered nothing within the timeout.
    pub(crate) dead: &'static str,
    /// A write made no progress for a whole keep-alive window.
    pub(crate) stalled: &'static str,
}

/// Takes the engine's frames into `batch`, up to [`WRITE_BATCH`].
pub(crate) fn take_frames(engine: &mut impl Driven, batch: &mut Vec<Transmit>) {
    while batch.len() < WRITE_BATCH {
        match engine.poll_transmit() {
            Some(transmit) => batch.push(transmit),
            None => break,
        }
    }
}

/// Keep-alive's turn at `now`: a silent peer closes the engine, a due
/// ping goes into the engine's own output when its generation has one
/// (and counts as sent). Whether a WebSocket ping is due instead.
pub(crate) fn keep_alive_turn(
    liveness: &mut Liveness,
    engine: &mut impl Driven,
    now: Instant,
    words: &KeepAliveWords,
) -> bool {
    match liveness.poll(now) {
        Some(LivenessAction::PeerDead) => {
            engine.handle_transport_closed(CloseReason::Transport(words.dead.into()));
            false
        }
        Some(LivenessAction::SendPing) => match engine.queue_keep_alive_ping() {
            Ok(true) => {
                liveness.handle_ping_sent(now);
                false
            }
            Ok(false) => true,
            Err(_) => false,
        },
        None => false,
    }
}

/// Writes the batch and flushes once. A write that makes no progress for
/// `stall_limit` (a whole keep-alive window) is a peer that stopped
/// reading: keep-alive cannot run meanwhile. On failure, why the
/// transport is closed. The batch is empty after.
pub(crate) async fn write_frames<S>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Vec<Transmit>,
    runtime: &dyn Runtime,
    stall_limit: Option<Duration>,
    words: &KeepAliveWords,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let outcome = {
        let write = std::pin::pin!(write_batch(sink, batch));
        match stall_limit {
            Some(limit) => {
                let stall = runtime.sleep_until(runtime.now() + limit);
                match select(write, stall).await {
                    Either::Left((result, _)) => Some(result),
                    Either::Right(_) => None,
                }
            }
            None => Some(write.await),
        }
    };
    batch.clear();
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(err)) => Err(close_reason_of(&err)),
        None => Err(CloseReason::Transport(words.stalled.into())),
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

/// The sync whose diff is due, diffed here on the writer's task with no
/// lock held, then handed to the engine by `hand_over` (under the lock):
/// the application's calls never wait for a large diff. The replaced
/// version goes to `freeing`.
pub(crate) fn diff_due_sync(
    runtime: &dyn Runtime,
    (base, current): (Arc<Value>, Arc<Value>),
    freeing: &mut Freeing,
    hand_over: impl FnOnce(Instant, &Arc<Value>, &Arc<Value>, Vec<juggler_core::PatchOperation>),
) {
    let ops = juggler_core::diff(&base, &current);
    hand_over(runtime.now(), &base, &current, ops);
    drop(current);
    freeing.push(base);
}

/// A keep-alive ping at the WebSocket layer; on failure, why the
/// transport is closed.
pub(crate) async fn send_websocket_ping<S>(sink: &mut WebSocketSender<S>) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match sink.send(Message::Ping(Default::default())).await {
        Ok(()) => Ok(()),
        Err(_) => Err(CloseReason::Transport("keep-alive ping failed".into())),
    }
}

/// Waits for the notify, the reader's flag (polled, not waited on: the
/// reader sets it only while the task runs, just before this poll), or
/// the deadline; `why` names the deadline in the trace when it fires.
pub(crate) async fn wait(
    writer: &WriterWake,
    mut notified: Pin<&mut Notified<'_>>,
    deadline: Option<(Instant, &'static str)>,
    timer: &mut DeadlineTimer,
    runtime: &dyn Runtime,
) {
    let woken = poll_fn(|cx| match writer.take_kick() {
        true => Poll::Ready(()),
        false => notified.as_mut().poll(cx),
    });
    match deadline {
        Some((at, why)) => {
            let sleep = timer.until(at, runtime);
            if let Either::Right(_) = select(std::pin::pin!(woken), sleep).await {
                tracing::trace!(reason = why, "writer deadline");
                timer.fired();
            }
        }
        None => woken.await,
    }
}

/// The writer's deadline timer, kept across its waits while the deadline
/// stays the same. Most waits end with a notify long before the deadline
/// (keep-alive's next ping is 20 s away), and arming a fresh timer for each
/// is not free everywhere: on smol (async-io) every armed timer wakes the
/// thread that polls the reactor.
#[derive(Default)]
pub(crate) struct DeadlineTimer {
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

/// Runs a connection's reader and writer (`io`) until both are done, or
/// until the close timeout has passed since the engine closed
/// (`engine_closed` gives when): a peer that stops reading cannot hold a
/// shutdown up. Whether the timeout cut them off.
pub(crate) async fn until_done_or_close_timeout(
    io: impl Future,
    engine_closed: impl Future<Output = Instant>,
    runtime: &dyn Runtime,
    close_timeout: Duration,
) -> bool {
    let bound = async {
        let closed_at = engine_closed.await;
        runtime.sleep_until(closed_at + close_timeout).await;
    };
    let (io, bound) = (std::pin::pin!(io), std::pin::pin!(bound));
    matches!(select(io, bound).await, Either::Right(_))
}

/// The last frame of a connection, by how it closed.
pub(crate) async fn send_close<S>(sink: &mut WebSocketSender<S>, reason: CloseReason)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match reason {
        // tungstenite queued its reply to the peer's close frame; closing
        // the sink sends it.
        CloseReason::Remote => {
            let _ = SinkExt::close(sink).await;
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
}
