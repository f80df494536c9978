//! The read loop: frames from the socket into the engine.

use std::collections::VecDeque;

use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketReceiver;
use futures_io::{AsyncRead, AsyncWrite};
use futures_util::{FutureExt, StreamExt};

use super::{Host, StreamState};
use crate::reader_steps::frame_len;

/// Most frames the reader hands to the engine under one lock.
const READ_BATCH: usize = 64;

/// The reader takes no more buffered frames once its batch holds this much
/// text: a batch's memory stays near one large message, not 64 of them.
const READ_BATCH_BYTES: usize = 1 << 20;

/// Reads frames into the engine until the stream ends. Frames that are
/// already buffered are taken together, up to the host's room in items
/// and in bytes, [`READ_BATCH`] and [`READ_BATCH_BYTES`], decoded as they
/// are taken (outside the lock, which the application's calls take), and
/// handed to the engine under one lock.
pub(super) async fn read_loop<S, H>(
    mut stream: WebSocketReceiver<S>,
    host: &H,
    first_frame: Option<String>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Host,
{
    let mut first = first_frame.map(|text| Some(Ok(Message::text(text))));
    // Grown on use: an idle connection holds no batch buffers.
    let mut batch: VecDeque<H::Incoming> = VecDeque::new();
    loop {
        let room = host.reader_room().await;
        let most = room.messages.min(READ_BATCH);
        let mut item = match first.take() {
            Some(item) => item,
            None => stream.next().await,
        };
        let (mut text, mut cost, mut frames) = (0, 0, 0);
        loop {
            text += frame_len(&item);
            let incoming = host.decode(item);
            let weight = H::weigh(&incoming);
            frames += usize::from(weight.frame);
            cost += weight.cost;
            batch.push_back(incoming);
            if weight.ends_stream
                || batch.len() >= most
                || text >= READ_BATCH_BYTES
                || cost >= room.bytes
                || host.budget_is_full()
            {
                break;
            }
            // A poll that finds nothing registers a no-op waker; the next
            // `.await` on the stream registers the real one.
            match stream.next().now_or_never() {
                Some(next) => item = next,
                None => break,
            }
        }
        host.metrics().received(frames, text);
        while !batch.is_empty() {
            let stream_state = host.writer().as_reader(|| host.hand_over(&mut batch));
            if stream_state == StreamState::Ended {
                return;
            }
        }
    }
}
