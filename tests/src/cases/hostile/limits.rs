//! Limits under pressure: messages over the size limit, floods, and
//! clients that never read.

use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::Data;
use async_tungstenite::tungstenite::Message;
use futures_util::{AsyncWriteExt, SinkExt, StreamExt};
use juggler_driver::{CloseReason, ConnectionOptions, ProtocolError, ServerOptions};
use juggler_driver::{Connection, KeepAlive};
use serde_json::{json, Value};

use crate::support::backend::{within, Backend, HANG_GUARD};
use crate::support::bench::*;

/// Messages over `max_message_size`, whole or fragmented, or announced by
/// a frame header only: 1009, `FrameTooLarge`, nothing allocated for them.
pub async fn frame_over_the_size_limit<B: Backend>() {
    const LIMIT: usize = 1024;
    let options =
        ServerOptions::default().connection(ConnectionOptions::default().max_message_size(LIMIT));
    let mut bench = Bench::<B>::start(options).await;
    let big = json!({"type": "MESSAGE", "payload": "x".repeat(2 * LIMIT)}).to_string();
    let half = "y".repeat(LIMIT / 2 + 100);
    let cases: Vec<(&str, Vec<Message>)> = vec![
        ("one big text frame", vec![text(big.clone())]),
        (
            "one big binary frame",
            vec![Message::binary(big.into_bytes())],
        ),
        (
            "fragments over the limit together",
            vec![
                raw_frame(
                    format!(r#"{{"type":"MESSAGE","payload":"{half}"#).as_bytes(),
                    Data::Text,
                    false,
                ),
                raw_frame(half.as_bytes(), Data::Continue, false),
                raw_frame(br#""}"#, Data::Continue, true),
            ],
        ),
    ];
    let too_large = |err: &ProtocolError| matches!(err, ProtocolError::FrameTooLarge { limit, .. } if *limit == LIMIT);
    for (what, frames) in cases {
        bench
            .violation(what, &[], &Value::Null, frames, 1009, too_large)
            .await;
    }
    // A header that announces 2^62 bytes, and nothing after it.
    let (mut socket, server_side) = bench.raw().await;
    let mut header = vec![0x81, 0xff];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    socket.get_mut().write_all(&header).await.unwrap();
    socket.get_mut().flush().await.unwrap();
    let (code, _) = within::<B, _>(HANG_GUARD, "close frame", read_close(&mut socket)).await;
    assert_eq!(code, 1009);
    let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    assert!(
        matches!(&reason, CloseReason::Protocol(err) if too_large(err)),
        "{reason:?}"
    );
    bench.assert_connections(0);
    bench.finish().await;
}

/// Remote data grown by DATA frames, each small, past
/// `max_remote_data_size`: the frame that would pass it is refused whole
/// (1009, `RemoteDataTooLarge`), and the data is what the frames before it
/// made.
pub async fn remote_data_over_its_size_limit<B: Backend>() {
    const LIMIT: usize = 256 << 10;
    let options = ServerOptions::default()
        .connection(ConnectionOptions::default().max_remote_data_size(LIMIT));
    let mut bench = Bench::<B>::start(options).await;
    let mut setup = vec![juggler(
        "DATA",
        json!([{"op": "replace", "path": "", "value": {}}]),
    )];
    let mut remote = serde_json::Map::new();
    for n in 0..10 {
        let value = "s".repeat(20_000);
        setup.push(juggler(
            "DATA",
            json!([{"op": "add", "path": format!("/k{n}"), "value": value}]),
        ));
        remote.insert(format!("k{n}"), json!(value));
    }
    let hostile = juggler(
        "DATA",
        json!([{"op": "add", "path": "/k10", "value": "s".repeat(70_000)}]),
    );
    let too_large = |err: &ProtocolError| matches!(err, ProtocolError::RemoteDataTooLarge { limit, .. } if *limit == LIMIT);
    bench
        .violation(
            "remote data past its limit",
            &setup,
            &Value::Object(remote),
            vec![hostile],
            1009,
            too_large,
        )
        .await;
    bench.finish().await;
}

/// A flood of 100,000 tiny (valid) frames: every one arrives, in order,
/// while the well-behaved client keeps being served.
pub async fn flood_of_tiny_frames<B: Backend>() {
    const FRAMES: u64 = 100_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    let flood = async {
        for n in 0..FRAMES {
            socket
                .feed(text(format!(r#"{{"type":"MESSAGE","payload":{n}}}"#)))
                .await
                .expect("the server keeps reading");
        }
        socket.flush().await.expect("the server keeps reading");
    };
    let drain = async {
        for n in 0..FRAMES {
            let message = server_side.receive().await.expect("the flood is valid");
            assert_eq!(message, json!(n));
        }
    };
    let good = async {
        for _ in 0..5 {
            bench.check_good().await;
        }
    };
    let started = Instant::now();
    within::<B, _>(
        HANG_GUARD * 3,
        "the flood",
        futures_util::future::join3(flood, drain, good),
    )
    .await;
    eprintln!("{FRAMES} frames in {:?}", started.elapsed());
    socket.close(None).await.unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await,
        CloseReason::Remote
    );
    bench.assert_connections(0);
    bench.finish().await;
}

/// A state of about 32 KiB, different for every `n`.
fn bulky_state(n: usize) -> Value {
    json!({"n": n, "blob": format!("{n:08}").repeat(4096)})
}

/// Pushes state to a client that never reads until the socket is stuck:
/// the server keeps going (`set_local_data` never waits), and the
/// well-behaved client is served.
async fn push_to_stuck_client<B: Backend>(
    bench: &mut Bench<B>,
    server_side: &Connection,
    sets: usize,
) {
    let push = async {
        for n in 0..sets {
            match server_side.set_local_data(bulky_state(n)) {
                Ok(()) => {}
                // Keep-alive may close the stuck connection mid-push; the
                // caller asserts how it closed.
                Err(juggler_driver::Error::Closed) => break,
                Err(err) => panic!("set_local_data failed: {err}"),
            }
        }
    };
    within::<B, _>(HANG_GUARD, "pushing state to a stuck client", push).await;
    bench.check_good().await;
}

/// A client that never reads while the server pushes state: the server's
/// keep-alive closes the connection with a typed (transport) error, as it
/// closes any peer that answers no ping, even though (especially when) the
/// server's writes to it are stuck.
pub async fn non_reading_client_is_closed_by_keep_alive<B: Backend>() {
    // A long timeout: the well-behaved client beside the stuck one must
    // answer its pings in time even on a loaded machine. The exact
    // deadlines are checked on a virtual clock in juggler-driver.
    let keep_alive = KeepAlive {
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(3),
    };
    let options = ServerOptions::default()
        .connection(ConnectionOptions::default().keep_alive(Some(keep_alive)));
    let mut bench = Bench::<B>::start(options).await;
    let (socket, server_side) = bench.raw().await;
    // 2,000 sets of 32 KiB: 64 MiB, more than the socket buffers hold
    // (up to 32 MiB of receive and 4 MiB of send buffer on Linux).
    push_to_stuck_client(&mut bench, &server_side, 2_000).await;
    let reason = within::<B, _>(
        HANG_GUARD,
        "the stuck connection closing",
        server_side.wait_closed(),
    )
    .await;
    assert!(matches!(reason, CloseReason::Transport(_)), "{reason:?}");
    drop(socket);
    bench.assert_connections(0);
    bench.finish().await;
}

/// A client that never reads while the server pushes 2,000 states of
/// 32 KiB: what waits for it stays bounded. `try_send` reports
/// `QueueFull` once `max_send_queue` frames wait, and when the client
/// finally reads it gets the latest state in far fewer DATA frames than
/// there were sets (only what the socket buffers and one write batch held,
/// plus one coalesced change), in order.
pub async fn non_reading_client_queue_stays_bounded<B: Backend>() {
    const SETS: usize = 2_000;
    const MAX_SEND_QUEUE: usize = 16;
    let options = ServerOptions::default()
        .connection(ConnectionOptions::default().max_send_queue(MAX_SEND_QUEUE));
    let mut bench = Bench::<B>::start(options).await;
    let (mut socket, server_side) = bench.raw().await;
    push_to_stuck_client(&mut bench, &server_side, SETS).await;
    let mut sent = 0;
    let full = loop {
        match server_side.try_send(&json!(["queued", sent])) {
            Ok(()) if sent <= MAX_SEND_QUEUE => sent += 1,
            Ok(()) => break false,
            Err(juggler_driver::Error::QueueFull) => break true,
            Err(err) => panic!("try_send: {err}"),
        }
    };
    assert!(full, "try_send never reported QueueFull");
    // Now read: DATA frames up to the latest state, then the messages.
    let mut data_frames = 0;
    let mut last_n: Option<u64> = None;
    let read = async {
        while last_n != Some(SETS as u64 - 1) {
            let Some(Ok(Message::Text(frame))) = socket.next().await else {
                panic!("the stuck connection ended");
            };
            let frame: Value = serde_json::from_str(&frame).unwrap();
            if frame["type"] != "DATA" {
                continue;
            }
            data_frames += 1;
            for op in frame["payload"].as_array().unwrap() {
                let n = match op["path"].as_str() {
                    Some("") => op["value"]["n"].as_u64(),
                    Some("/n") => op["value"].as_u64(),
                    _ => None,
                };
                if let Some(n) = n {
                    assert!(last_n < Some(n), "state went back from {last_n:?} to {n}");
                    last_n = Some(n);
                }
            }
        }
    };
    within::<B, _>(HANG_GUARD, "reading what was queued", read).await;
    eprintln!("{SETS} sets reached the late reader in {data_frames} DATA frames");
    assert!(
        data_frames <= SETS / 2,
        "{data_frames} DATA frames were queued for a client that did not read"
    );
    socket.close(None).await.unwrap();
    within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}

/// A flood of 100,000 PING frames from a client that never reads, after
/// the server has filled its socket buffers: the PONGs waiting for it do
/// not pile up (one waiting PONG answers them all), so when it reads at
/// last it gets far fewer PONGs than it sent PINGs, and everything else in
/// order.
pub async fn ping_flood_from_a_non_reading_client<B: Backend>() {
    const PINGS: u64 = 100_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    push_to_stuck_client(&mut bench, &server_side, 2_000).await;
    let flood = async {
        for n in 0..PINGS {
            socket
                .feed(juggler("PING", json!(n)))
                .await
                .expect("the server keeps reading");
        }
        socket
            .send(juggler("MESSAGE", json!("after the pings")))
            .await
            .expect("the server keeps reading");
    };
    within::<B, _>(HANG_GUARD, "the ping flood", flood).await;
    // The marker comes after every PING, so all of them have been read.
    let marker = within::<B, _>(HANG_GUARD, "the marker", server_side.receive()).await;
    assert_eq!(marker.unwrap(), json!("after the pings"));
    server_side.send(&json!("the end")).await.unwrap();
    bench.check_good().await;
    let mut pongs = 0;
    let read = async {
        loop {
            let Some(Ok(Message::Text(frame))) = socket.next().await else {
                panic!("the connection ended");
            };
            let frame: Value = serde_json::from_str(&frame).unwrap();
            match frame["type"].as_str() {
                Some("PONG") => pongs += 1,
                Some("MESSAGE") => {
                    assert_eq!(frame["payload"], json!("the end"));
                    break;
                }
                _ => {}
            }
        }
    };
    within::<B, _>(HANG_GUARD, "reading what was queued", read).await;
    eprintln!("{PINGS} PINGs from a stuck client were answered by {pongs} PONGs");
    assert!(pongs >= 1, "no PONG at all");
    assert!(
        pongs <= 1_000,
        "{pongs} PONGs were queued for a client that did not read"
    );
    socket.close(None).await.unwrap();
    within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}
