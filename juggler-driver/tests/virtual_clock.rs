//! The driver's timers on a virtual clock: tokio's paused time, over
//! in-memory sockets. Time moves only when every task waits on a timer, so
//! each deadline is checked to the millisecond, with no sleeping and no
//! dependence on how busy the machine is.
//!
//! Covered: the close timeout (one deadline per connection, however many
//! close at once), keep-alive (a silent peer, and the pause while the
//! receive queue is full) and the write stall; and for 0.6/0.7, whose
//! driver takes the same writer steps, the transport's pings (a silent
//! peer, one that answers), the close timeout and the write stall.

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use juggler_driver::{
    prepare, v07, CloseReason, Connection, ConnectionOptions, KeepAlive, Registry, Runtime,
};
use serde_json::json;
use support::TokioClock;
use tokio::io::DuplexStream;

/// Room in each direction of an in-memory socket.
const SOCKET_BUFFER: usize = 64 << 10;

fn runtime() -> Arc<dyn Runtime> {
    Arc::new(TokioClock)
}

/// Options without keep-alive, so that only the timer under test runs.
fn quiet() -> ConnectionOptions {
    ConnectionOptions::default().keep_alive(None)
}

/// A server-side connection, driven, and the raw other end of its socket,
/// which nobody reads or writes unless the test does.
async fn with_silent_peer(options: ConnectionOptions) -> (Connection, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(SOCKET_BUFFER);
    let socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(ours), Role::Server, None).await;
    let (connection, driver) = prepare(socket, options, None, runtime());
    tokio::spawn(driver);
    (connection, theirs)
}

/// A server-side connection and a Juggler client on the other end.
async fn with_juggler_peer(
    server: ConnectionOptions,
    client: ConnectionOptions,
) -> (Connection, Connection) {
    let (ours, theirs) = tokio::io::duplex(SOCKET_BUFFER);
    let server_socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(ours), Role::Server, None).await;
    let client_socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(theirs), Role::Client, None).await;
    let (server_side, server_driver) = prepare(server_socket, server, None, runtime());
    let (client_side, client_driver) = prepare(client_socket, client, None, runtime());
    tokio::spawn(server_driver);
    tokio::spawn(client_driver);
    (server_side, client_side)
}

/// Ends the process if the test it guards runs past a minute of real time.
/// On a paused clock a task that never yields (a loop on a deadline already
/// past) stops time itself, so no timer of the test's own can catch it.
struct Watchdog {
    _alive: std::sync::mpsc::Sender<()>,
}

fn watchdog(test: &'static str) -> Watchdog {
    let (alive, watched) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            watched.recv_timeout(Duration::from_secs(60))
        {
            eprintln!("{test} hung: a task never yields (a busy loop?)");
            std::process::abort();
        }
    });
    Watchdog { _alive: alive }
}

fn elapsed_since(start: tokio::time::Instant) -> Duration {
    tokio::time::Instant::now() - start
}

#[tokio::test(start_paused = true)]
async fn every_connection_closing_at_once_gets_its_own_deadline() {
    let _watchdog = watchdog("every_connection_closing_at_once_gets_its_own_deadline");
    const CONNECTIONS: usize = 50;
    const TIMEOUT: Duration = Duration::from_millis(300);
    let registry = Registry::default();
    let mut peers = Vec::new();
    for _ in 0..CONNECTIONS {
        let (connection, peer) = with_silent_peer(quiet().close_timeout(TIMEOUT)).await;
        assert!(registry.add(&connection));
        peers.push((connection, peer));
    }
    let start = tokio::time::Instant::now();
    let summary = registry.close_all().await;
    // One after another they would take 50 x 300 ms.
    assert_eq!(elapsed_since(start), TIMEOUT);
    assert_eq!(summary.closed, CONNECTIONS);
    assert_eq!(summary.timed_out, CONNECTIONS);
    for (connection, _) in &peers {
        assert_eq!(connection.wait_closed().await, CloseReason::Local);
    }
    assert_eq!(registry.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_the_close_is_not_cut_off() {
    let _watchdog = watchdog("a_peer_that_answers_the_close_is_not_cut_off");
    let registry = Registry::default();
    let (server_side, client) = with_juggler_peer(
        quiet().close_timeout(Duration::from_secs(5)),
        quiet().autoflush_delay(Some(Duration::ZERO)),
    )
    .await;
    registry.add(&server_side);
    server_side
        .set_local_data(json!({"flushed": "by the close"}))
        .unwrap();
    let start = tokio::time::Instant::now();
    let summary = registry.close_all().await;
    assert_eq!(elapsed_since(start), Duration::ZERO, "no timer was needed");
    assert_eq!(summary.timed_out, 0);
    assert_eq!(client.wait_closed().await, CloseReason::Remote);
    assert_eq!(*client.remote_data(), json!({"flushed": "by the close"}));
}

#[tokio::test(start_paused = true)]
async fn a_connection_accepted_while_closing_is_closed_and_waited_for() {
    let _watchdog = watchdog("a_connection_accepted_while_closing_is_closed_and_waited_for");
    let registry = Registry::default();
    registry.start_closing();
    let (connection, _peer) =
        with_silent_peer(quiet().close_timeout(Duration::from_millis(100))).await;
    assert!(!registry.add(&connection), "refused for the application");
    let summary = registry.wait_all_done().await;
    assert_eq!(summary.closed, 1);
    assert!(!connection.is_open());
    assert_eq!(registry.live(), 0);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_closes_a_silent_peer_at_interval_plus_timeout() {
    let _watchdog = watchdog("keep_alive_closes_a_silent_peer_at_interval_plus_timeout");
    let keep_alive = KeepAlive {
        interval: Duration::from_secs(20),
        timeout: Duration::from_secs(7),
    };
    let start = tokio::time::Instant::now();
    let (connection, _peer) =
        with_silent_peer(ConnectionOptions::default().keep_alive(Some(keep_alive))).await;
    let reason = connection.wait_closed().await;
    assert_eq!(
        reason,
        CloseReason::Transport("keep-alive timeout".into()),
        "{reason:?}"
    );
    // The ping at 20 s, no answer by 27 s; then the close timeout (0.1 s)
    // for a close handshake the silent peer never answers.
    assert_eq!(
        elapsed_since(start),
        keep_alive.interval + keep_alive.timeout + Duration::from_millis(100)
    );
}

#[tokio::test(start_paused = true)]
async fn keep_alive_keeps_a_peer_that_answers() {
    let _watchdog = watchdog("keep_alive_keeps_a_peer_that_answers");
    let keep_alive = KeepAlive {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    let (server_side, client) = with_juggler_peer(
        ConnectionOptions::default().keep_alive(Some(keep_alive)),
        quiet(),
    )
    .await;
    // A hundred pings, each answered by the client's WebSocket layer.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(server_side.is_open() && client.is_open());
    assert_eq!(server_side.shutdown().await, CloseReason::Local);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_waits_while_the_receive_queue_is_full() {
    let _watchdog = watchdog("keep_alive_waits_while_the_receive_queue_is_full");
    const QUEUE: usize = 4;
    let keep_alive = KeepAlive {
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
    };
    let (server_side, client) = with_juggler_peer(
        quiet()
            .keep_alive(Some(keep_alive))
            .max_receive_queue(QUEUE),
        quiet(),
    )
    .await;
    // The server stops reading once QUEUE messages wait; the client's
    // further messages (and its pongs behind them) stay in the socket.
    for n in 0..QUEUE * 4 {
        client.send(&json!(n)).await.unwrap();
    }
    // Time moves only while every task waits on a timer: a writer that
    // spun on a past deadline would never let it get here.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(
        server_side.is_open(),
        "closed by keep-alive while it was the application not reading: {:?}",
        server_side.close_reason()
    );
    for n in 0..QUEUE * 4 {
        assert_eq!(server_side.receive().await.unwrap(), json!(n));
    }
    assert!(server_side.is_open());
}

#[tokio::test(start_paused = true)]
async fn a_write_stalled_past_the_keep_alive_window_closes() {
    let _watchdog = watchdog("a_write_stalled_past_the_keep_alive_window_closes");
    let keep_alive = KeepAlive {
        interval: Duration::from_secs(20),
        timeout: Duration::from_secs(20),
    };
    let (connection, _peer) =
        with_silent_peer(ConnectionOptions::default().keep_alive(Some(keep_alive))).await;
    // More than the socket holds, so the write blocks before any ping.
    connection
        .send(&json!("x".repeat(4 * SOCKET_BUFFER)))
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let reason = connection.wait_closed().await;
    assert!(
        matches!(&reason, CloseReason::Transport(text) if text.contains("stopped reading")),
        "{reason:?}"
    );
    // The stall found at 40 s, then the close timeout (0.1 s) for a close
    // handshake that cannot happen.
    assert_eq!(
        elapsed_since(start),
        keep_alive.interval + keep_alive.timeout + Duration::from_millis(100)
    );
}

// ---- 0.6/0.7: the same timers, run by the same writer steps ----------

/// A 0.7 client, driven, and the raw other end of its socket, which
/// nobody reads or writes unless the test does.
async fn v07_client_with_silent_peer(options: v07::Options) -> (v07::Client, DuplexStream) {
    let (ours, theirs) = tokio::io::duplex(SOCKET_BUFFER);
    let socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(ours), Role::Client, None).await;
    (v07::start_client(socket, options, runtime()), theirs)
}

#[tokio::test(start_paused = true)]
async fn v07_pings_close_a_silent_peer_at_delay_plus_timeout() {
    let _watchdog = watchdog("v07_pings_close_a_silent_peer_at_delay_plus_timeout");
    let (delay, timeout) = (Duration::from_secs(20), Duration::from_secs(7));
    let options = v07::Options::default().ping(Some(delay), timeout);
    let close_timeout = options.close_timeout;
    let start = tokio::time::Instant::now();
    let (client, _peer) = v07_client_with_silent_peer(options).await;
    client.wait_closed().await;
    assert_eq!(
        client.close_reason(),
        Some(CloseReason::Transport("ping timeout".into()))
    );
    // The `2` at 20 s, no answer by 27 s; then the close timeout for a
    // close handshake the silent peer never answers.
    assert_eq!(elapsed_since(start), delay + timeout + close_timeout);
}

#[tokio::test(start_paused = true)]
async fn v07_pings_keep_a_peer_that_answers() {
    use async_tungstenite::tungstenite::Message;
    use futures_util::StreamExt;

    let _watchdog = watchdog("v07_pings_keep_a_peer_that_answers");
    let second = Duration::from_secs(1);
    let (client, peer) =
        v07_client_with_silent_peer(v07::Options::default().ping(Some(second), second)).await;
    // The peer answers each transport ping `2…` with its pong `3…`
    // (SPEC-0.7.md), and does nothing else.
    let peer = WebSocketStream::from_raw_socket(TokioAdapter::new(peer), Role::Server, None).await;
    let (mut sink, mut stream) = peer.split();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                if let Some(payload) = text.strip_prefix('2') {
                    let pong = Message::text(format!("3{payload}"));
                    if sink.send(pong).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    // A hundred pings, each answered.
    tokio::time::sleep(Duration::from_secs(100)).await;
    assert!(client.is_open(), "{:?}", client.close_reason());
}

#[tokio::test(start_paused = true)]
async fn v07_a_close_the_peer_never_answers_is_cut_off_at_the_close_timeout() {
    let _watchdog = watchdog("v07_a_close_the_peer_never_answers_is_cut_off_at_the_close_timeout");
    let options = v07::Options::default().ping(None, Duration::from_secs(30));
    let close_timeout = options.close_timeout;
    let (client, _peer) = v07_client_with_silent_peer(options).await;
    let start = tokio::time::Instant::now();
    client.async_close().await;
    assert_eq!(client.close_reason(), Some(CloseReason::Local));
    assert_eq!(elapsed_since(start), close_timeout);
}

#[tokio::test(start_paused = true)]
async fn v07_a_write_stalled_past_the_ping_window_closes() {
    let _watchdog = watchdog("v07_a_write_stalled_past_the_ping_window_closes");
    let window = Duration::from_secs(20);
    let options = v07::Options::default()
        .ping(Some(window), window)
        .request_timeout(None);
    let close_timeout = options.close_timeout;
    let (client, _peer) = v07_client_with_silent_peer(options).await;
    let start = tokio::time::Instant::now();
    // More than the socket holds, so the write blocks before any ping.
    let request = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .send("big", json!("x".repeat(4 * SOCKET_BUFFER)))
                .await
        })
    };
    client.wait_closed().await;
    let reason = client.close_reason();
    assert!(
        matches!(&reason, Some(CloseReason::Transport(text)) if text.contains("stopped reading")),
        "{reason:?}"
    );
    // The stall found at 40 s, then the close timeout for a close
    // handshake that cannot happen.
    assert_eq!(elapsed_since(start), window + window + close_timeout);
    assert!(
        request.await.unwrap().is_err(),
        "the request fails with the close"
    );
}
