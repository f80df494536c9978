//! The write loop: the engine's frames, its deadlines and keep-alive out
//! to the socket, and finally the close frame.

use std::time::Duration;

use async_tungstenite::WebSocketSender;
use futures_io::{AsyncRead, AsyncWrite};
use juggler_core::{CloseReason, Transmit};

use super::Host;
use crate::freeing::{yield_once, Freeing};
use crate::writer_steps::{
    diff_due_sync, send_close, send_websocket_ping, wait, write_frames, DeadlineTimer,
};

/// Writes the engine's frames, fires its deadlines, runs keep-alive and
/// finally sends the close frame. Each turn looks at the state once, then
/// does the first thing that applies: write frames, close, diff the due
/// sync, ping, free a slice, or wait.
pub(super) async fn write_loop<S, H>(mut sink: WebSocketSender<S>, host: &H)
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Host,
{
    let runtime = host.runtime();
    let stall_limit = host.stall_limit();
    let mut batch: Vec<Transmit> = Vec::new();
    let mut timer = DeadlineTimer::default();
    let mut freeing = Freeing::default();
    loop {
        let notified = host.writer().notified();
        // Whatever the reader flagged, this look at the state covers.
        host.writer().take_kick();
        let turn = host.look(runtime.now(), &mut batch);
        if !batch.is_empty() {
            let written = write_out(&mut sink, &mut batch, host, stall_limit, &mut freeing);
            if let Err(failure) = written.await {
                host.transport_failed(failure);
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
                host.hand_over_diff(now, base, local, ops)
            });
            continue;
        }
        if turn.ping_due {
            if let Err(failure) = send_websocket_ping(&mut sink).await {
                host.transport_failed(failure);
                return;
            }
            host.ping_sent(runtime.now());
            continue;
        }
        if !freeing.is_empty() {
            // A slice, then the other ready tasks (a local peer's reader),
            // then a new look: new frames go out before the next slice.
            freeing.free_slice();
            yield_once().await;
            continue;
        }
        let notified = std::pin::pin!(notified);
        wait(host.writer(), notified, turn.deadline, &mut timer, runtime).await;
    }
}

/// Writes the batch within the stall limit ([`write_frames`]); once
/// written, the frames count for flush tickets and a retired state goes
/// to `freeing`.
async fn write_out<S, H>(
    sink: &mut WebSocketSender<S>,
    batch: &mut Vec<Transmit>,
    host: &H,
    stall_limit: Option<Duration>,
    freeing: &mut Freeing,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Host,
{
    // Control frames (0.7's pings) jump the queue: the highest `seq` is
    // the last message frame.
    let last = batch.iter().map(|transmit| transmit.seq).max().unwrap_or(0);
    for transmit in batch.iter() {
        host.metrics().sent(transmit.kind, transmit.text.len());
    }
    let words = &H::KEEP_ALIVE_WORDS;
    write_frames(sink, batch, host.runtime(), stall_limit, words).await?;
    if let Some(retired) = host.written(last) {
        freeing.push(retired);
    }
    Ok(())
}
