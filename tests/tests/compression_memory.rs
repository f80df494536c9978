//! A default server's resident memory under decompression bombs, in a
//! process of its own (this binary holds one test), so that the peak is
//! the server's. Linux only: it reads `/proc/self/status`.
//!
//! Eight clients negotiate permessage-deflate and each sends 64 MiB of
//! one letter, compressed to about 64 KiB: four as one frame, four in 64
//! fragments, all at once, on tokio and then on smol. Each is closed with
//! 1009 when the inflated size passes `max_message_size` (4 MiB); the
//! layer holds at most 80 KiB of inflated output, tungstenite at most the
//! limit. The peak resident memory may rise by eight times the limit plus
//! a constant, far below the 512 MiB the bombs inflate to.

use futures_util::SinkExt;
use juggler_driver::ServerOptions;
use juggler_tests::cases::compression::{
    compressed_frames, deflate_raw_connect, letter_bomb, read_close_of,
};
use juggler_tests::support::backend::{within, Backend, HANG_GUARD};
use juggler_tests::support::resident;
use juggler_tests::support::runtimes::{Smol, Tokio};

/// What resident memory may rise by besides the limits: both runtimes,
/// sockets' buffers, the pools of zlib state.
const CONSTANT: usize = 64 << 20;
const CLIENTS: usize = 8;

async fn bombs_are_cut_off<B: Backend>(bomb: std::sync::Arc<Vec<u8>>) {
    let options = ServerOptions::default();
    let limit = options.connection.max_message_size;
    // A connection closes with its last handle: the server keeps them.
    let kept = std::sync::Mutex::new(Vec::new());
    let server = B::listen(options, move |connection| {
        kept.lock().unwrap().push(connection)
    })
    .await
    .expect("listen");
    let mut clients = Vec::new();
    for index in 0..CLIENTS {
        let mut socket = deflate_raw_connect::<B>(&server).await;
        let frames = compressed_frames(&bomb, if index % 2 == 0 { 1 } else { 64 });
        clients.push(async move {
            for frame in frames {
                if socket.feed(frame).await.is_err() {
                    break;
                }
            }
            let _ = socket.flush().await;
            within::<B, _>(HANG_GUARD, "the close frame", read_close_of(&mut socket)).await
        });
    }
    let closes = futures_util::future::join_all(clients).await;
    for (code, reason) in closes {
        assert_eq!(code, 1009, "{reason}");
    }
    eprintln!(
        "{}: limit {} MiB, resident peak {} MiB",
        std::any::type_name::<B>(),
        limit >> 20,
        resident("VmHWM:") >> 20
    );
    drop(server);
}

#[test]
fn decompression_bombs_stay_within_the_limits() {
    let bomb = std::sync::Arc::new(letter_bomb(64 << 20));
    assert!(bomb.len() < 128 << 10, "{}", bomb.len());
    let limit = ServerOptions::default().connection.max_message_size;
    let before = resident("VmRSS:");
    let bound = before + CLIENTS * limit + CONSTANT;
    let tokio_bomb = bomb.clone();
    Tokio::block_on(async move { bombs_are_cut_off::<Tokio>(tokio_bomb).await });
    Smol::block_on(async move { bombs_are_cut_off::<Smol>(bomb).await });
    let peak = resident("VmHWM:");
    eprintln!(
        "resident before {} MiB, peak {} MiB, bound {} MiB",
        before >> 20,
        peak >> 20,
        bound >> 20
    );
    assert!(
        peak <= bound,
        "peak {} MiB over {} MiB",
        peak >> 20,
        bound >> 20
    );
}
