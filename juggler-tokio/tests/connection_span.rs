//! Every connection logs in a `juggler_connection` span carrying its id,
//! role, peer, path and protocol generation: here, the close of a server
//! and a client connection, captured through a `tracing-subscriber`
//! formatter (this binary holds one test, so the subscriber is its own).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use juggler_tokio::{connect, listen, ServerOptions};

/// Formatted log lines, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_events_carry_the_connection_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let server = listen(
        "127.0.0.1",
        0,
        move |connection| {
            let _ = accepted.send(connection);
        },
        ServerOptions::default(),
    )
    .await
    .unwrap();
    let client = connect(server.url()).await.unwrap();
    let server_side = incoming.recv().await.unwrap();
    assert_ne!(server_side.id(), client.id());
    server_side.close();
    let hang_guard = Duration::from_secs(60);
    tokio::time::timeout(hang_guard, server_side.wait_closed())
        .await
        .unwrap();
    tokio::time::timeout(hang_guard, client.wait_closed())
        .await
        .unwrap();
    server.close().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let span_of = |role: &str, id: u64| {
        logs.lines()
            .filter(|line| line.contains("juggler connection closed"))
            .any(|line| {
                line.contains(&format!("juggler_connection{{id={id} role=\"{role}\""))
                    && line.contains("path=/ws")
                    && line.contains("generation=\"0.5\"")
            })
    };
    assert!(
        span_of("server", server_side.id()),
        "no server close in its span:\n{logs}"
    );
    assert!(
        span_of("client", client.id()),
        "no client close in its span:\n{logs}"
    );
    assert!(
        logs.lines()
            .any(|line| line.contains("juggler connection accepted")
                && line.contains(&format!("id={}", server_side.id()))),
        "no accept in the span:\n{logs}"
    );
}
