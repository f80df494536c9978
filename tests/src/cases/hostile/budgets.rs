//! Byte budgets under floods: clients that send far more than the
//! application takes. What the server holds stays within its budgets (as
//! it counts them, decoded), new clients are served meanwhile, and every
//! message reaches the application, in order, once it receives.
//!
//! Two floods, as in the issue that asked for budgets, scaled down so the
//! suite stays quick: eight clients send messages carrying a 30 KB string,
//! four send `[0,0,0,…]` arrays of 10 KB of text, which decoded take about
//! 26 times that. The budgets are scaled down with them, and chosen so that
//! the connections' own budgets together (about 4 MB) are well over what the
//! server's allows (about 2.4 MB): each bound is tested by itself.

use std::sync::Arc;

use juggler_driver::{ClientOptions, Connection, ConnectionOptions, ServerOptions};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::support::backend::{
    expect_messages, listen, within, Backend, Incoming, TestServer, HANG_GUARD, IMMEDIATE,
};
use crate::support::bench::{raw_connect, text, RawClient};

/// Each connection's `max_receive_bytes`.
const MAX_RECEIVE: usize = 256 << 10;
/// The server's `max_buffered_bytes`.
const SERVER_LIMIT: usize = 1 << 20;
/// Clients that flood with strings.
const STRING_FLOODERS: usize = 8;
/// Clients that flood with arrays.
const ARRAY_FLOODERS: usize = 4;
/// Messages each string flooder sends.
const STRINGS: usize = 100;
/// Messages each array flooder sends.
const ARRAYS: usize = 10;
/// What one good client's messages may add past the limit.
const GOOD_CLIENT_SLACK: usize = 4 << 10;

fn options() -> ServerOptions {
    ServerOptions::default()
        .max_buffered_bytes(Some(SERVER_LIMIT))
        .connection(
            ConnectionOptions::default()
                .autoflush_delay(IMMEDIATE)
                .max_receive_bytes(MAX_RECEIVE)
                .max_message_size(64 << 10),
        )
}

/// One flood client's messages: `[kind, client, n, …]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flood {
    /// `["s", client, n, "xxx…"]`: a 30 KB string.
    Strings,
    /// `["d", client, n, 0, 0, …]`: 5,000 zeros.
    Arrays,
}

impl Flood {
    fn count(self) -> usize {
        match self {
            Flood::Strings => STRINGS,
            Flood::Arrays => ARRAYS,
        }
    }

    fn payload(self, client: usize, n: usize) -> String {
        match self {
            Flood::Strings => format!(r#"["s",{client},{n},"{}"]"#, "x".repeat(30_000)),
            Flood::Arrays => format!(r#"["d",{client},{n}{}]"#, ",0".repeat(5_000)),
        }
    }

    /// The most one message costs the server, decoded as it decodes it.
    fn message_cost(self) -> usize {
        let value: Value = serde_json::from_str(&self.payload(99, 999)).unwrap();
        juggler_driver::value_cost(&value)
    }

    fn check(self, message: &Value, client: usize, n: usize) {
        let kind = match self {
            Flood::Strings => "s",
            Flood::Arrays => "d",
        };
        assert_eq!(message[0], kind, "{self:?} client {client}");
        assert_eq!(message[1], client, "{self:?} client {client}");
        assert_eq!(
            message[2], n,
            "{self:?} client {client}: message {n} lost or late"
        );
        let len = message.as_array().unwrap().len();
        let expected = match self {
            Flood::Strings => 4,
            Flood::Arrays => 5_003,
        };
        assert_eq!(len, expected, "{self:?} client {client} message {n}");
    }
}

/// The flood clients, each on a task of its own that sends everything and
/// then hands its socket back (open).
struct Flooders {
    kinds: Vec<Flood>,
    /// Their server-side connections, in the same order.
    connections: Vec<Connection>,
    done: Vec<oneshot::Receiver<RawClient>>,
}

impl Flooders {
    async fn start<B: Backend>(server: &B::Server, incoming: &mut Incoming) -> Self {
        let mut flooders = Flooders {
            kinds: Vec::new(),
            connections: Vec::new(),
            done: Vec::new(),
        };
        for client in 0..STRING_FLOODERS + ARRAY_FLOODERS {
            let kind = if client < STRING_FLOODERS {
                Flood::Strings
            } else {
                Flood::Arrays
            };
            let mut socket = raw_connect::<B>(server).await;
            flooders.connections.push(incoming.next().await);
            let (done, finished) = oneshot::channel();
            B::spawn(async move {
                for n in 0..kind.count() {
                    let frame = format!(
                        r#"{{"type":"MESSAGE","payload":{}}}"#,
                        kind.payload(client, n)
                    );
                    socket.send(text(frame)).await.expect("the server reads on");
                }
                let _ = done.send(socket);
            });
            flooders.kinds.push(kind);
            flooders.done.push(finished);
        }
        flooders
    }

    /// The most the server may hold: the limit, plus one message per
    /// connection (each may read one while it holds nothing, and readers
    /// stop at the first message past the limit), plus the good clients'.
    fn server_bound(&self, good_clients: usize) -> usize {
        let flood: usize = self.kinds.iter().map(|kind| kind.message_cost()).sum();
        SERVER_LIMIT + flood + good_clients * GOOD_CLIENT_SLACK
    }

    /// Each connection holds at most its budget plus one message.
    fn assert_each_within_budget(&self) {
        for (kind, connection) in self.kinds.iter().zip(&self.connections) {
            let held = connection.buffered_bytes();
            assert!(
                held <= MAX_RECEIVE + kind.message_cost(),
                "a {kind:?} connection holds {held} bytes"
            );
        }
    }

    /// Receives every message of every flood connection and checks it,
    /// then waits for every flood client to have sent all.
    async fn drain<B: Backend>(self) -> Vec<RawClient> {
        for (client, (kind, connection)) in self.kinds.iter().zip(&self.connections).enumerate() {
            for n in 0..kind.count() {
                let message = within::<B, _>(HANG_GUARD, "a flood message", connection.receive())
                    .await
                    .unwrap();
                kind.check(&message, client, n);
            }
        }
        let mut sockets = Vec::new();
        for finished in self.done {
            let socket = within::<B, _>(HANG_GUARD, "a flood client finishing", finished).await;
            sockets.push(socket.expect("the flood client's task ended"));
        }
        sockets
    }
}

/// A well-behaved client connected now: a message each way and a data
/// change, exchanged correctly.
async fn good_client_round_trip<B: Backend>(server: &B::Server, incoming: &mut Incoming, tag: u64) {
    let client = within::<B, _>(
        HANG_GUARD,
        "a good client connecting",
        B::connect(
            &server.url(),
            ClientOptions::default().autoflush_delay(IMMEDIATE),
        ),
    )
    .await
    .unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    client.send(&json!({"good": tag})).await.unwrap();
    expect_messages::<B>(&server_side, &[json!({"good": tag})]).await;
    let mut changes = server_side.remote_changes();
    client.set_local_data(json!({"tag": tag})).unwrap();
    let data = within::<B, _>(HANG_GUARD, "the good client's data", async {
        loop {
            let data = changes.changed().await.unwrap();
            if *data == json!({"tag": tag}) {
                return data;
            }
        }
    })
    .await;
    assert_eq!(*data, json!({"tag": tag}));
    server_side.send(&json!({"back": tag})).await.unwrap();
    expect_messages::<B>(&client, &[json!({"back": tag})]).await;
    client.close();
    within::<B, _>(HANG_GUARD, "the good client closing", client.wait_closed()).await;
}

/// The floods against an application that never receives until the end:
/// the server's budget fills and stays near its limit, each connection
/// within its own, a new client is served meanwhile; then the application
/// receives everything, in order, and the budget is empty again.
pub async fn floods_against_an_application_that_never_receives<B: Backend>() {
    let (server, mut incoming) = listen::<B>(options()).await;
    let budget: Arc<_> = server.memory_budget();
    let flooders = Flooders::start::<B>(&server, &mut incoming).await;
    within::<B, _>(
        HANG_GUARD,
        "the server's budget filling",
        budget.until_full(),
    )
    .await;

    good_client_round_trip::<B>(&server, &mut incoming, 1).await;
    flooders.assert_each_within_budget();
    let bound = flooders.server_bound(1);
    assert!(
        budget.peak() <= bound,
        "the server held {} bytes, over {bound}",
        budget.peak()
    );

    let sockets = flooders.drain::<B>().await;
    assert!(
        budget.peak() <= bound,
        "the server held {} bytes, over {bound}",
        budget.peak()
    );
    assert_eq!(budget.used(), 0, "everything received, nothing is held");
    drop(sockets);
    server.close().await;
}

/// The floods against an application whose handler is slow (it waits a
/// little after each message), with good clients connecting throughout:
/// the same bounds, and nothing lost.
pub async fn floods_against_a_slow_handler<B: Backend>() {
    let (server, mut incoming) = listen::<B>(options()).await;
    let budget = server.memory_budget();
    let flooders = Flooders::start::<B>(&server, &mut incoming).await;
    let (handled, mut handlers_done) = tokio::sync::mpsc::unbounded_channel();
    for (client, (kind, connection)) in flooders.kinds.iter().zip(&flooders.connections).enumerate()
    {
        let (kind, connection, handled) = (*kind, connection.clone(), handled.clone());
        B::spawn(async move {
            for n in 0..kind.count() {
                let message = connection.receive().await.unwrap();
                kind.check(&message, client, n);
                // The slow part of the handler.
                B::sleep(std::time::Duration::from_millis(1)).await;
            }
            let _ = handled.send(client);
        });
    }
    drop(handled);
    for tag in 0..5 {
        good_client_round_trip::<B>(&server, &mut incoming, tag).await;
    }
    let mut finished = 0;
    while within::<B, _>(HANG_GUARD, "the slow handlers", handlers_done.recv())
        .await
        .is_some()
    {
        finished += 1;
    }
    assert_eq!(
        finished,
        STRING_FLOODERS + ARRAY_FLOODERS,
        "a handler failed"
    );
    let bound = flooders.server_bound(5);
    assert!(
        budget.peak() <= bound,
        "the server held {} bytes, over {bound}",
        budget.peak()
    );
    assert_eq!(budget.used(), 0);
    server.close().await;
}
