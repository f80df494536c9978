//! A default server's resident memory under the floods that once took
//! 12.7 GB, in a process of its own (this binary holds one test), so that
//! the peak is the server's. Linux only: it reads `/proc/self/status`.
//!
//! Sixteen clients on raw sockets, against an application that receives
//! nothing until the end:
//! - the issue's floods: four send messages of a 16 MB string, four
//!   `[0,0,…]` arrays of 8 MB of text; both are over the 4 MiB
//!   `max_message_size` and get closed (1009);
//! - the same floods at the largest size the defaults take: four send
//!   4 MB strings, four 4 MB arrays (64 MiB each, decoded).
//!
//! The budgets hold what is buffered to their limit plus one message per
//! connection. The peak RSS must stay within that plus a constant, and
//! under 1 GiB. A new client is served while the floods are held, and at
//! the end every message is received, in order.

use juggler_tests::support::resident;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;

use juggler_driver::{value_cost, ClientOptions, Connection, Error, ServerOptions};
use juggler_tests::support::backend::{
    expect_messages, listen, within, Backend, Incoming, HANG_GUARD,
};
use juggler_tests::support::runtimes::{Smol, Tokio};
use juggler_tests::TestServer;
use serde_json::json;

/// What resident memory may exceed the budgets' bound by: the test binary,
/// both runtimes, the sockets' and decoders' buffers.
const CONSTANT: usize = 256 << 20;
/// The issue's goal.
const ONE_GIB: usize = 1 << 30;

#[derive(Clone, Copy, Debug)]
enum Flood {
    /// 16 MB strings: over `max_message_size`.
    HugeStrings,
    /// 8 MB arrays: over `max_message_size`.
    HugeArrays,
    /// 4 MB strings, 10 of them.
    Strings,
    /// 4 MB arrays (2,000,000 zeros), 3 of them.
    Arrays,
}

impl Flood {
    fn all() -> impl Iterator<Item = (usize, Flood)> {
        [
            Flood::HugeStrings,
            Flood::HugeArrays,
            Flood::Strings,
            Flood::Arrays,
        ]
        .into_iter()
        .flat_map(|kind| std::iter::repeat_n(kind, 4))
        .enumerate()
    }

    fn count(self) -> usize {
        match self {
            Flood::HugeStrings => 200,
            Flood::HugeArrays => 10,
            Flood::Strings => 10,
            Flood::Arrays => 3,
        }
    }

    fn accepted(self) -> bool {
        matches!(self, Flood::Strings | Flood::Arrays)
    }

    /// The payload is `[client, n, …filler…]`: the filler's unit, how
    /// many times it repeats, and what opens and closes it.
    fn filler(self) -> (&'static str, usize, &'static str, &'static str) {
        match self {
            Flood::HugeStrings => ("x", 16_000_000, ",\"", "\""),
            Flood::HugeArrays => (",0", 4_000_000, "", ""),
            Flood::Strings => ("x", 4_000_000, ",\"", "\""),
            Flood::Arrays => (",0", 2_000_000, "", ""),
        }
    }

    /// What one of its messages costs the server, decoded: the cost of its
    /// payload, parsed as the server parses it.
    fn message_cost(self) -> usize {
        if !self.accepted() {
            return 0;
        }
        let (unit, count, open, close) = self.filler();
        let payload = format!("[99,9{open}{}{close}]", unit.repeat(count));
        value_cost(&serde_json::from_str(&payload).unwrap())
    }
}

/// Writes one MESSAGE frame of `kind` for `[client, n, …]`, masked (with
/// key 0, which RFC 6455 allows), streaming its filler from a small
/// buffer: the flood clients, in this same process, hold next to nothing.
fn write_message(
    socket: &mut TcpStream,
    kind: Flood,
    client: usize,
    n: usize,
) -> std::io::Result<()> {
    let (unit, count, open, close) = kind.filler();
    let head = format!(r#"{{"type":"MESSAGE","payload":[{client},{n}{open}"#);
    let tail = format!("{close}]}}");
    let len = head.len() + unit.len() * count + tail.len();
    let mut frame = vec![0x81, 0x80 | 127];
    frame.extend_from_slice(&(len as u64).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(head.as_bytes());
    socket.write_all(&frame)?;
    const PER_CHUNK: usize = 32_768;
    let chunk = unit.repeat(PER_CHUNK);
    let mut left = count;
    while left > 0 {
        let units = left.min(PER_CHUNK);
        socket.write_all(&chunk.as_bytes()[..units * unit.len()])?;
        left -= units;
    }
    socket.write_all(tail.as_bytes())
}

/// A flood client on a thread: the upgrade, then its frames, written until
/// done or refused; then the socket is dropped. Returns how many frames
/// it wrote whole.
fn flood(addr: SocketAddr, client: usize, kind: Flood) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut socket = TcpStream::connect(addr).unwrap();
        let upgrade = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        socket.write_all(upgrade.as_bytes()).unwrap();
        let mut head = Vec::new();
        let mut byte = [0];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
        let mut written = 0;
        for n in 0..kind.count() {
            if write_message(&mut socket, kind, client, n).is_err() {
                break;
            }
            written += 1;
        }
        written
    })
}

async fn floods_stay_within_the_budgets<B: Backend>() {
    // Parsed before the server starts, so that this test's own parse is
    // not part of the peak.
    let one_message_each: usize = Flood::all().map(|(_, kind)| kind.message_cost()).sum();
    let (server, mut incoming) = listen::<B>(ServerOptions::default()).await;
    let budget = server.memory_budget();
    let addr = server.local_addr();
    let clients: Vec<_> = Flood::all()
        .map(|(client, kind)| (client, kind, flood(addr, client, kind)))
        .collect();
    let mut connections = Vec::new();
    for _ in 0..clients.len() {
        connections.push(within::<B, _>(HANG_GUARD, "accepting a flood", incoming.next()).await);
    }
    within::<B, _>(HANG_GUARD, "the budget filling", budget.until_full()).await;

    served_meanwhile::<B>(&server, &mut incoming).await;

    let bound = budget.limit() + one_message_each;
    assert!(budget.peak() <= bound, "held {} > {bound}", budget.peak());
    let peak = resident("VmHWM:");
    eprintln!(
        "{}: budget peak {} MiB (bound {} MiB), resident peak {} MiB",
        std::any::type_name::<B>(),
        budget.peak() >> 20,
        bound >> 20,
        peak >> 20
    );
    assert!(
        peak <= bound + CONSTANT,
        "resident peak {peak} over {bound} + {CONSTANT}"
    );
    assert!(peak <= ONE_GIB, "resident peak {peak} over 1 GiB");

    drain::<B>(connections).await;
    for (client, kind, thread) in clients {
        let written = thread.join().unwrap();
        if kind.accepted() {
            assert_eq!(written, kind.count(), "client {client} ({kind:?})");
        }
    }
    assert_eq!(budget.used(), 0);
    server.close().await;
}

/// A new client, connected while the floods are held: served.
async fn served_meanwhile<B: Backend>(server: &B::Server, incoming: &mut Incoming) {
    let client = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    client.send(&json!("still served")).await.unwrap();
    expect_messages::<B>(&server_side, &[json!("still served")]).await;
    server_side.send(&json!("yes")).await.unwrap();
    expect_messages::<B>(&client, &[json!("yes")]).await;
}

/// Receives every flood connection's messages until it closes: each
/// accepted client's, all of them, in order; none of the refused ones'.
async fn drain<B: Backend>(connections: Vec<Connection>) {
    let kinds: Vec<Flood> = Flood::all().map(|(_, kind)| kind).collect();
    let mut received = vec![0; kinds.len()];
    for connection in connections {
        loop {
            let message = match within::<B, _>(HANG_GUARD, "draining", connection.receive()).await {
                Ok(message) => message,
                Err(Error::Closed) => break,
                Err(err) => panic!("receive: {err}"),
            };
            let client = message[0].as_u64().unwrap() as usize;
            assert_eq!(
                message[1], received[client],
                "client {client}: out of order"
            );
            received[client] += 1;
        }
    }
    for (client, kind) in kinds.iter().enumerate() {
        let expected = if kind.accepted() { kind.count() } else { 0 };
        assert_eq!(received[client], expected, "client {client} ({kind:?})");
    }
}

#[test]
fn floods_against_a_default_server_stay_within_budget_and_memory() {
    if !cfg!(target_os = "linux") {
        return;
    }
    Tokio::block_on(floods_stay_within_the_budgets::<Tokio>());
    Smol::block_on(floods_stay_within_the_budgets::<Smol>());
    // The whole run's peak, for the record.
    eprintln!("process resident peak: {} MiB", resident("VmHWM:") >> 20);
}
