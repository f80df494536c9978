//! The transport failing: TCP dropped in the middle of a frame, and TLS
//! clients that stall their handshake.

use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, AsyncWriteExt};
use juggler_driver::ClientOptions;
use juggler_driver::{CloseReason, ServerOptions};
use serde_json::json;

use crate::cases::web::{self_signed_pem, TempDir};
use crate::support::backend::IMMEDIATE;
use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};
use crate::support::bench::*;

/// The peer's TCP connection ends mid-frame (or between frames without a
/// close frame): the connection closes with a transport error, no panic.
pub async fn tcp_dropped_mid_frame<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let mut partial_payload = vec![0x81, 0xfe, 0x10, 0x00, 9, 9, 9, 9];
    partial_payload.extend_from_slice(&[b'x'; 100]);
    let mut fragment = Vec::new();
    // A whole masked non-final text frame "{" (mask 0), then nothing.
    fragment.extend_from_slice(&[0x01, 0x81, 0, 0, 0, 0, b'{']);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("in the payload", partial_payload),
        ("in the header", vec![0x81]),
        ("in the extended length", vec![0x81, 0xff, 0, 0]),
        ("in the mask", vec![0x81, 0x85, 1, 2]),
        ("inside a fragmented message", fragment),
        ("between frames", Vec::new()),
    ];
    for (what, bytes) in cases {
        let (mut socket, server_side) = bench.raw().await;
        socket
            .send(juggler(
                "DATA",
                json!([{"op": "add", "path": "", "value": {"kept": true}}]),
            ))
            .await
            .unwrap();
        let stream = socket.get_mut();
        stream.write_all(&bytes).await.unwrap();
        stream.flush().await.unwrap();
        drop(socket);
        let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
        assert!(
            matches!(reason, CloseReason::Transport(_)),
            "{what}: {reason:?}"
        );
        assert_eq!(*server_side.remote_data(), json!({"kept": true}), "{what}");
        bench.assert_connections(0);
        bench.check_good().await;
    }
    bench.finish().await;
}

/// TLS clients that stall the handshake are dropped after
/// `tls_handshake_timeout`, and meanwhile the server accepts and serves
/// others.
pub async fn stalled_tls_handshake<B: Backend>() {
    // Long enough for a good client's handshake on a loaded machine.
    const TLS_TIMEOUT: Duration = Duration::from_secs(3);
    let dir = TempDir::new("hostile-tls");
    let (server_pem, cert_pem) = self_signed_pem();
    let pem_file = dir.0.join("server.pem");
    std::fs::write(&pem_file, server_pem).unwrap();
    let mut options = ServerOptions::default().pem_file(&pem_file);
    options.tls_handshake_timeout = TLS_TIMEOUT;
    let trusting = ClientOptions::default()
        .trust_pem(cert_pem.as_bytes())
        .unwrap();
    let mut bench = Bench::<B>::start_with(options, trusting.clone()).await;
    let addr = bench.server.local_addr();

    let started = Instant::now();
    let mut silent = B::tcp_connect(addr).await.unwrap();
    let mut partial = B::tcp_connect(addr).await.unwrap();
    // A TLS record header announcing a 512-byte ClientHello, and 3 bytes of it.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    partial.flush().await.unwrap();

    // While they stall, a new client connects and both clients are served.
    let second = within::<B, _>(
        HANG_GUARD,
        "a TLS client during the stall",
        B::connect(&bench.server.url(), trusting.autoflush_delay(IMMEDIATE)),
    )
    .await
    .expect("connecting during the stall");
    let second_server = within::<B, _>(HANG_GUARD, "accepting", bench.incoming.next()).await;
    second.send(&json!("during the stall")).await.unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "a message", second_server.receive())
            .await
            .unwrap(),
        json!("during the stall")
    );
    bench.check_good().await;

    for (what, stalled) in [("silent", &mut silent), ("partial hello", &mut partial)] {
        let mut buffer = [0u8; 64];
        let read = within::<B, _>(
            HANG_GUARD,
            "the server dropping the staller",
            stalled.read(&mut buffer),
        )
        .await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{what}: the server answered {read:?}"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= TLS_TIMEOUT,
        "dropped after {waited:?}, before the timeout"
    );
    second.shutdown().await;
    within::<B, _>(HANG_GUARD, "closing", second_server.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}
