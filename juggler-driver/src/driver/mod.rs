//! The connection driver, one for every generation: a task per
//! connection that moves frames and time between a WebSocket and the
//! engine (juggler_core's [`Driven`](juggler_core::Driven) contract).
//!
//! The read loop ([`read`]) and the write loop ([`write`]) are written
//! once. What differs between generations, how the state shared with the
//! application is locked, where the engine's events go and what wakes
//! whom, is behind [`Host`]: the 0.5 connection's (`connection/host.rs`)
//! and the 0.6/0.7 link's (`v07/link.rs`).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::future::join;
use juggler_core::{CloseReason, PatchOperation, Transmit};
use serde_json::Value;

use crate::metrics::ConnectionMetrics;
use crate::reader_steps::StreamItem;
use crate::writer_steps::{until_done_or_close_timeout, KeepAliveWords};
use crate::writer_wake::WriterWake;
use crate::Runtime;

mod read;
mod write;

/// What the driver needs of a connection's shared state, one
/// implementation per generation. Every method that takes the lock takes
/// it once, and does the generation's wake-ups and event dispatch before
/// it returns.
pub(crate) trait Host: Sync {
    /// A stream item as the reader hands it to the engine, decoded
    /// outside the lock as far as the generation can.
    type Incoming: Send;

    /// How this generation words the closes keep-alive makes.
    const KEEP_ALIVE_WORDS: KeepAliveWords;

    fn runtime(&self) -> &dyn Runtime;
    fn writer(&self) -> &WriterWake;
    fn metrics(&self) -> &ConnectionMetrics;
    /// How long a write may make no progress before the peer counts as
    /// gone: a whole keep-alive window, when keep-alive is on.
    fn stall_limit(&self) -> Option<Duration>;
    /// How long the close may take once the engine is closed.
    fn close_timeout(&self) -> Duration;

    /// Waits while the application's queues or the byte budget are full,
    /// then says how much the reader may take before it looks again.
    fn reader_room(&self) -> impl Future<Output = ReaderRoom> + Send;
    /// Whether the shared byte budget is full: the reader's batch ends.
    fn budget_is_full(&self) -> bool;
    /// Decodes one item of the stream, outside the lock.
    fn decode(&self, item: StreamItem) -> Self::Incoming;
    /// What an item counts for in the reader's batch.
    fn weigh(incoming: &Self::Incoming) -> Weight;
    /// Hands items from the front of `batch` to the engine, under one
    /// lock; the reader calls it again while any are left.
    fn hand_over(&self, batch: &mut VecDeque<Self::Incoming>) -> StreamState;

    /// One look at the state at `now`: the engine's and keep-alive's
    /// timers fired, frames taken into `batch`, and what else there is.
    fn look(&self, now: Instant, batch: &mut Vec<Transmit>) -> WriterTurn;
    /// The frames up to `seq` are written: flush tickets complete, and
    /// the retired state the application replaced comes back to free.
    fn written(&self, seq: u64) -> Option<Arc<Value>>;
    /// The due sync's diff, made outside the lock, for the engine.
    fn hand_over_diff(
        &self,
        now: Instant,
        base: &Arc<Value>,
        local: &Arc<Value>,
        ops: Vec<PatchOperation>,
    );
    /// A WebSocket keep-alive ping went out at `now`.
    fn ping_sent(&self, now: Instant);
    /// Writing failed: the transport is closed for `reason`.
    fn transport_failed(&self, reason: CloseReason);

    /// Waits until the engine is closed; when it closed.
    fn engine_closed(&self) -> impl Future<Output = Instant> + Send;
    /// The socket is dropped; `close_timed_out` if the close timeout cut
    /// it off.
    fn finish(&self, close_timed_out: bool);
}

/// What the reader may take before it looks again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReaderRoom {
    /// Items, by the application's queue.
    pub(crate) messages: usize,
    /// Decoded bytes, by the connection's and the server's budgets; the
    /// reader takes at least one frame.
    pub(crate) bytes: usize,
}

/// What one item counts for in the reader's batch.
pub(crate) struct Weight {
    /// A data frame, for the metrics.
    pub(crate) frame: bool,
    /// Bytes charged to the budget.
    pub(crate) cost: usize,
    /// Nothing is read after it.
    pub(crate) ends_stream: bool,
}

/// Whether the peer's stream goes on after what the reader handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamState {
    Open,
    /// The peer closed, or reading failed: nothing more is read.
    Ended,
}

/// What the writer found to do in one look at the state, besides the
/// frames it took.
pub(crate) struct WriterTurn {
    /// The engine is closed: after the frames, the close frame, and done.
    pub(crate) closed: Option<CloseReason>,
    /// A WebSocket keep-alive ping is due.
    pub(crate) ping_due: bool,
    /// When to look again if nothing wakes the writer before, and why.
    pub(crate) deadline: Option<(Instant, &'static str)>,
    /// The versions the due sync diffs, for the writer to diff outside
    /// the lock.
    pub(crate) due_diff: Option<(Arc<Value>, Arc<Value>)>,
}

/// Drives one connection until its socket is done with. `first_frame` is
/// the frame generation detection read, handed to the engine first.
pub(crate) async fn run<S, H>(socket: WebSocketStream<S>, host: &H, first_frame: Option<String>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Host,
{
    let (sink, stream) = socket.split();
    let reader = std::pin::pin!(read::read_loop(stream, host, first_frame));
    let writer = std::pin::pin!(write::write_loop(sink, host));
    // Reading and writing go on until both are done: the writer ends after
    // its close frame, the reader at the peer's. Once the engine is closed
    // for any reason, all of it gets the close timeout, then the socket is
    // dropped, so a peer that stops reading cannot hold a shutdown up.
    // `join` polls the reader first, then the writer, on every wake-up:
    // the writer sees at once what the reader's frames gave it to do.
    let io = join(reader, writer);
    let timed_out = until_done_or_close_timeout(
        io,
        host.engine_closed(),
        host.runtime(),
        host.close_timeout(),
    )
    .await;
    host.finish(timed_out);
}
