//! Byte budget accounting as a property, over in-memory sockets: whatever
//! a peer sends (strings, dense arrays, of random sizes) and however the
//! application interleaves `receive` with bytes held by a layer above
//! (`Connection::hold`), every message arrives whole and in order, the
//! server budget never holds more than its limit plus one message plus
//! what is held, and once everything is received and released it holds
//! nothing. A release of more than was charged fails a debug assertion in
//! `MemoryBudget`, so the count never goes negative unnoticed.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use juggler_driver::{
    prepare, value_cost, Acceptor, Admitted, Connection, ConnectionOptions, Error, HeldBytes,
    MemoryBudget, Registry, ServerOptions,
};
use proptest::prelude::*;
use serde_json::{json, Value};
use support::TokioClock;

/// The connection's `max_receive_bytes`.
const MAX_RECEIVE: usize = 32 << 10;
/// The server's budget.
const LIMIT: usize = 48 << 10;
/// The most a test holds at once: under `MAX_RECEIVE`, so that what is
/// held never stops the reader of an empty queue.
const MAX_HELD: usize = 16 << 10;
/// A hang guard, never a claim about speed.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Op {
    /// The peer sends `[n, "x…"]` with a string of this length.
    SendString(usize),
    /// The peer sends `[n, 0, 0, …]` with this many zeros.
    SendArray(usize),
    /// The application receives the next message, if one was sent.
    Receive,
    /// A layer above holds this many bytes.
    Hold(usize),
    /// It releases the oldest of its holds.
    Release,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..20_000usize).prop_map(Op::SendString),
        (1..10_000usize).prop_map(Op::SendArray),
        Just(Op::Receive),
        Just(Op::Receive),
        (1..4_000usize).prop_map(Op::Hold),
        Just(Op::Release),
    ]
}

fn message(op: &Op, n: usize) -> Option<Value> {
    match op {
        Op::SendString(len) => Some(json!([n, "x".repeat(*len)])),
        Op::SendArray(zeros) => {
            let mut items = vec![json!(n)];
            items.extend(std::iter::repeat_n(json!(0), *zeros));
            Some(Value::Array(items))
        }
        _ => None,
    }
}

/// What the server's decoder makes of a message: its cost as decoded.
fn decoded_cost(message: &Value) -> usize {
    let decoded: Value = serde_json::from_str(&message.to_string()).unwrap();
    value_cost(&decoded)
}

/// A server connection accepted with a shared budget, and a client.
async fn accepted(budget: Arc<MemoryBudget>) -> (Connection, Connection) {
    let options = ServerOptions::default().connection(
        ConnectionOptions::default()
            .keep_alive(None)
            .max_receive_bytes(MAX_RECEIVE),
    );
    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let acceptor = Arc::new(Acceptor::new(
        move |connection| {
            let _ = accepted.send(connection);
        },
        Arc::new(Registry::new(budget)),
        &options,
        Arc::new(TokioClock),
    ));
    let (ours, theirs) = tokio::io::duplex(16 << 10);
    let server_socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(ours), Role::Server, None).await;
    acceptor.accept(server_socket, Admitted::default());
    let client_socket =
        WebSocketStream::from_raw_socket(TokioAdapter::new(theirs), Role::Client, None).await;
    let (client, driver) = prepare(
        client_socket,
        ConnectionOptions::default().keep_alive(None),
        None,
        Arc::new(TokioClock),
    );
    tokio::spawn(driver);
    (incoming.recv().await.unwrap(), client)
}

async fn receive(server: &Connection) -> Result<Value, Error> {
    tokio::time::timeout(HANG_GUARD, server.receive())
        .await
        .expect("receive hung")
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let budget = MemoryBudget::new(Some(LIMIT));
    let (server, client) = accepted(budget.clone()).await;
    let mut sent = Vec::new();
    let mut received = 0;
    let holds: Mutex<Vec<HeldBytes>> = Mutex::new(Vec::new());
    let (mut held, mut most_held) = (0, 0);
    let mut largest = 0;
    let check = |message: Value, sent: &[Value], received: usize| {
        prop_assert_eq!(
            &message,
            &sent[received],
            "message {} out of order",
            received
        );
        Ok(())
    };
    for op in &ops {
        if let Some(message) = message(op, sent.len()) {
            largest = largest.max(decoded_cost(&message));
            client.send(&message).await.unwrap();
            sent.push(message);
            continue;
        }
        match op {
            Op::Receive if received < sent.len() => {
                check(receive(&server).await.unwrap(), &sent, received)?;
                received += 1;
            }
            Op::Hold(bytes) if held + bytes <= MAX_HELD => {
                holds.lock().unwrap().push(server.hold(*bytes));
                held += bytes;
                most_held = most_held.max(held);
            }
            Op::Release if !holds.lock().unwrap().is_empty() => {
                let guard = holds.lock().unwrap().remove(0);
                drop(guard);
                held = holds.lock().unwrap().iter().map(HeldBytes::bytes).sum();
            }
            _ => {}
        }
    }
    client.close();
    loop {
        match receive(&server).await {
            Ok(message) => {
                check(message, &sent, received)?;
                received += 1;
            }
            Err(Error::Closed) => break,
            Err(err) => return Err(TestCaseError::fail(format!("receive: {err}"))),
        }
    }
    prop_assert_eq!(received, sent.len(), "messages lost");
    prop_assert_eq!(budget.used(), held, "only what is held is counted");
    prop_assert_eq!(server.buffered_bytes(), held);
    holds.lock().unwrap().clear();
    prop_assert_eq!(budget.used(), 0, "everything released");
    let bound = LIMIT + largest + most_held;
    prop_assert!(
        budget.peak() <= bound,
        "peak {} over {}",
        budget.peak(),
        bound
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn budgets_count_exactly_and_release_everything(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(ops))?;
    }
}
