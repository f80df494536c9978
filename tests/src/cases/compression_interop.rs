//! permessage-deflate with real peers: Python `websockets` 17.4 as client
//! and as server, an `aiohttp` client with `compress=15`, and the
//! hat-juggler 0.7.6 server (aiohttp, `compress=True`) with our client
//! offering deflate. Every exchange goes through a recording relay, which
//! shows compressed frames (RSV1) both ways.

use serde_json::{json, Value};

use crate::support::backend::{echo, within, Backend, TestServer, HANG_GUARD, IMMEDIATE};
use crate::support::python::{PythonPeer, PEER_0_7, PEER_DEFLATE};
use crate::support::tap::{wire_frames, Recorded, WireTap};
use juggler_driver::{ClientOptions, Compression, ServerOptions};

/// JSON of about 16 KB that compresses well.
fn repetitive() -> Value {
    json!({"rows": (0..400).map(|i| json!({"key": format!("k{}", i % 7), "value": "juggler"})).collect::<Vec<_>>()})
}

/// The next event named `name`; an `error` event fails the test.
async fn event<B: Backend>(peer: &mut PythonPeer, name: &str) -> Value {
    loop {
        let event = within::<B, _>(HANG_GUARD, name, peer.next_event()).await;
        if event["event"] == "error" {
            panic!("the Python peer failed: {event}");
        }
        if event["event"] == name {
            return event;
        }
    }
}

/// Asserts that both directions of `connection` carried a compressed text
/// frame smaller than a fifth of `size`.
fn assert_compressed_both_ways(connection: &Recorded, size: usize) {
    for (side, bytes) in [
        ("client", &connection.from_client),
        ("server", &connection.from_server),
    ] {
        let frames = wire_frames(bytes);
        assert!(
            frames
                .iter()
                .any(|frame| frame.opcode == 1 && frame.rsv1 && frame.len * 5 < size),
            "the {side} sent no compressed text frame: {frames:?}"
        );
    }
}

/// Our default server, echoing MESSAGEs, behind a tap: (server, tap).
async fn echo_server<B: Backend>() -> (B::Server, WireTap) {
    let options = ServerOptions::default().autoflush_delay(IMMEDIATE);
    let server = B::listen(options, echo::<B>).await.expect("listen");
    let tap = WireTap::start(server.local_addr());
    (server, tap)
}

/// A `websockets` client (deflate on by default) against our server: it
/// names permessage-deflate among its extensions, and the echo works.
pub async fn python_websockets_client<B: Backend>() {
    let Some(mut peer) = PEER_DEFLATE.start() else {
        return;
    };
    let (server, tap) = echo_server::<B>().await;
    let payload = repetitive();
    peer.command(&json!({"cmd": "ws_client", "url": tap.url("/ws"), "payload": payload}));
    let result = event::<B>(&mut peer, "ws_client").await;
    assert_eq!(result["extensions"], json!(["permessage-deflate"]));
    assert_eq!(result["received"], payload);
    assert_compressed_both_ways(&tap.recorded()[0], payload.to_string().len());
    server.close().await;
}

/// An aiohttp client with `compress=15` against our server.
pub async fn aiohttp_client_with_compress_15<B: Backend>() {
    let Some(mut peer) = PEER_DEFLATE.start() else {
        return;
    };
    let (server, tap) = echo_server::<B>().await;
    let payload = repetitive();
    peer.command(&json!({"cmd": "aiohttp_client", "url": tap.url("/ws"), "payload": payload}));
    let result = event::<B>(&mut peer, "aiohttp_client").await;
    assert_eq!(result["compress"], json!(15));
    assert_eq!(result["received"], payload);
    assert_compressed_both_ways(&tap.recorded()[0], payload.to_string().len());
    server.close().await;
}

/// Our 0.5 client, offering deflate, against a `websockets` server that
/// echoes MESSAGEs.
pub async fn python_websockets_server<B: Backend>() {
    let Some(mut peer) = PEER_DEFLATE.start() else {
        return;
    };
    peer.command(&json!({"cmd": "ws_server"}));
    let port = event::<B>(&mut peer, "ws_server").await["port"]
        .as_u64()
        .unwrap();
    let tap = WireTap::start(([127, 0, 0, 1], port as u16).into());
    let client = B::connect(
        &tap.url("/"),
        ClientOptions::default()
            .autoflush_delay(IMMEDIATE)
            .compression(Compression::default()),
    )
    .await
    .expect("connect to the websockets server");
    let connected = event::<B>(&mut peer, "ws_connected").await;
    assert_eq!(connected["extensions"], json!(["permessage-deflate"]));
    let payload = repetitive();
    client.send(&payload).await.unwrap();
    let echo = within::<B, _>(HANG_GUARD, "echo", client.receive()).await;
    assert_eq!(echo.unwrap(), payload);
    assert_compressed_both_ways(&tap.recorded()[0], payload.to_string().len());
    client.close();
}

/// Our 0.7 client, offering deflate, against the hat-juggler 0.7.6 server
/// (aiohttp, `compress=True`): a request echoed both ways compressed.
pub async fn hat_juggler_server<B: Backend>() {
    let Some(mut peer) = PEER_0_7.start() else {
        return;
    };
    peer.command(&json!({"cmd": "listen", "autoflush_delay": 0}));
    let port = event::<B>(&mut peer, "listening").await["port"]
        .as_u64()
        .unwrap();
    let tap = WireTap::start(([127, 0, 0, 1], port as u16).into());
    let client = B::connect_v07_with(
        &tap.url("/ws"),
        juggler_driver::v07::Options::default(),
        ClientOptions::default().compression(Compression::default()),
    )
    .await
    .expect("connect to the hat-juggler server");
    event::<B>(&mut peer, "connected").await;
    let payload = repetitive();
    let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", payload.clone())).await;
    assert_eq!(echoed.unwrap(), payload);
    assert_compressed_both_ways(&tap.recorded()[0], payload.to_string().len());
    client.close();
}

/// Declares one `#[test]` per compression interop case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! compression_interop_tests {
    ($backend:ty) => {
        $crate::compression_interop_tests!(@cases $backend;
            python_websockets_client,
            aiohttp_client_with_compress_15,
            python_websockets_server,
            hat_juggler_server,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::compression_interop::$case::<$backend>());
            }
        )*
    };
}
