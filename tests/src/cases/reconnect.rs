//! The reconnecting client: a server restarted on its port, a relay that
//! cuts connections mid-stream, the policy for calls while disconnected,
//! and many reconnect cycles without growth.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use juggler_driver::{
    Backoff, ClientStatus, Connection, Error, ReconnectEvent, ReconnectEvents, ReconnectOptions,
    ReconnectingClient, ServerOptions, WhileDisconnected,
};
use serde_json::{json, Value};

mod v07;
pub use v07::*;

use crate::support::backend::{listen, within, HANG_GUARD, IMMEDIATE};
use crate::support::relay::CuttingRelay;
use crate::{Backend, TestServer};

/// Quick retries: these tests wait for reconnects, not for backoff.
fn quick_options() -> ReconnectOptions {
    ReconnectOptions::default()
        .client(juggler_driver::ClientOptions::default().autoflush_delay(IMMEDIATE))
        .backoff(
            Backoff::default()
                .initial_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(50)),
        )
}

fn server_options() -> ServerOptions {
    ServerOptions::default().autoflush_delay(IMMEDIATE)
}

/// The next event that `pick` accepts, skipping others.
async fn next_event<B: Backend, T>(
    events: &mut ReconnectEvents,
    what: &str,
    mut pick: impl FnMut(ReconnectEvent) -> Option<T>,
) -> T {
    within::<B, _>(HANG_GUARD, what, async {
        loop {
            let event = events.next().await.expect("the client is running");
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
}

/// Waits until the client's remote data is `expected`.
async fn remote_becomes<B: Backend>(client: &ReconnectingClient, expected: &Value) {
    let mut changes = client.remote_changes();
    within::<B, _>(HANG_GUARD, "the remote data", async {
        while *client.remote_data() != *expected {
            changes.changed().await.expect("the client is running");
        }
    })
    .await
}

/// Waits until a server-side connection's remote data is `expected`.
async fn server_sees<B: Backend>(connection: &Connection, expected: &Value) {
    let mut changes = connection.remote_changes();
    within::<B, _>(HANG_GUARD, "the client's local data", async {
        while *connection.remote_data() != *expected {
            changes.changed().await.expect("the connection is open");
        }
    })
    .await
}

/// Every remote data change a client's callback saw, in order.
struct ChangeRecord {
    seen: Arc<Mutex<Vec<Value>>>,
    arrivals: tokio::sync::mpsc::UnboundedReceiver<Value>,
    _callback: juggler_driver::ClientChangeCallbackHandle,
}

impl ChangeRecord {
    fn of(client: &ReconnectingClient) -> ChangeRecord {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
        let observed = client.clone();
        let recorder = seen.clone();
        let callback = client.register_change_cb(move || {
            let data = (*observed.remote_data()).clone();
            recorder.lock().unwrap().push(data.clone());
            let _ = arrived.send(data);
        });
        ChangeRecord {
            seen,
            arrivals,
            _callback: callback,
        }
    }

    /// Waits until the callback has seen `value` (the callbacks run just
    /// after the data changes, on the connection's task), then returns
    /// everything it saw.
    async fn until<B: Backend>(&mut self, value: &Value) -> Vec<Value> {
        within::<B, _>(HANG_GUARD, "the change callback", async {
            while self.arrivals.recv().await.as_ref() != Some(value) {}
        })
        .await;
        self.seen.lock().unwrap().clone()
    }
}

/// The server closes and a new one starts on the same port: the client
/// comes back by itself, sends its local data in full, and its remote
/// data goes from the old server's straight to the new one's.
pub async fn survives_a_server_restart_on_the_same_port<B: Backend>() {
    let (first, mut first_incoming) = listen::<B>(server_options()).await;
    let port = first.local_addr().port();
    let client = B::reconnecting(vec![first.url()], quick_options()).unwrap();
    let mut events = client.events();
    client.set_local_data(json!({"client": "a"})).unwrap();
    let mut record = ChangeRecord::of(&client);
    let mut stream = client.remote_changes();

    let address = next_event::<B, _>(&mut events, "connected", |event| match event {
        ReconnectEvent::Connected { address, .. } => Some(address),
        _ => None,
    })
    .await;
    assert_eq!(address, first.url());
    let first_side = first_incoming.next().await;
    first_side.set_local_data(json!({"server": 1})).unwrap();
    remote_becomes::<B>(&client, &json!({"server": 1})).await;
    let first_seen = within::<B, _>(HANG_GUARD, "the stream", stream.next()).await;
    assert_eq!(first_seen.as_deref(), Some(&json!({"server": 1})));
    server_sees::<B>(&first_side, &json!({"client": "a"})).await;

    within::<B, _>(HANG_GUARD, "the first server's close", first.close()).await;
    next_event::<B, _>(&mut events, "disconnected", |event| {
        matches!(event, ReconnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    assert_eq!(*client.remote_data(), json!({"server": 1}));
    // Changed while disconnected: kept for the next connection.
    client
        .update_local_data(vec![serde_json::from_value(
            json!({"op": "add", "path": "/while_away", "value": true}),
        )
        .unwrap()])
        .unwrap();
    assert!(matches!(
        client.send(&json!("lost")).await,
        Err(Error::Disconnected)
    ));

    let (second, mut second_incoming) = {
        let (accepted, incoming) = tokio::sync::mpsc::unbounded_channel();
        let server = B::listen_on(port, server_options(), move |connection| {
            connection.set_local_data(json!({"server": 2})).unwrap();
            let _ = accepted.send(connection);
        })
        .await
        .expect("listen again on the same port");
        (server, incoming)
    };
    let second_side = within::<B, _>(HANG_GUARD, "the reconnect", second_incoming.recv())
        .await
        .unwrap();
    remote_becomes::<B>(&client, &json!({"server": 2})).await;
    server_sees::<B>(&second_side, &json!({"client": "a", "while_away": true})).await;
    assert_eq!(client.status(), ClientStatus::Connected);
    assert_eq!(
        record.until::<B>(&json!({"server": 2})).await,
        [json!({"server": 1}), json!({"server": 2})],
        "subscribers see one change per new state, never null"
    );

    client.send(&json!("after")).await.unwrap();
    let message = within::<B, _>(HANG_GUARD, "the message", second_side.receive())
        .await
        .unwrap();
    assert_eq!(message, json!("after"));
    second_side.send(&json!("to client")).await.unwrap();
    let message = within::<B, _>(HANG_GUARD, "the reply", client.receive())
        .await
        .unwrap();
    assert_eq!(message, json!("to client"));

    let second_seen = within::<B, _>(HANG_GUARD, "the stream", stream.next()).await;
    assert_eq!(
        second_seen.as_deref(),
        Some(&json!({"server": 2})),
        "no null between"
    );
    within::<B, _>(HANG_GUARD, "the client's close", client.shutdown()).await;
    assert_eq!(client.status(), ClientStatus::Closed);
    assert!(matches!(client.receive().await, Err(Error::Closed)));
    assert_eq!(
        within::<B, _>(HANG_GUARD, "the stream's end", stream.next()).await,
        None
    );
    second.close().await;
}

/// Server state shared by the relay test's connections: every change to
/// it and to `latest` happens under one lock, so the test's final state
/// reaches whichever connection is current.
struct Ticking {
    ticking: bool,
    state: Value,
    latest: Option<Connection>,
}

/// A relay between client and server cuts connections at random points
/// while the server streams changes: the client reconnects every time,
/// never shows `null` or an older state, and converges once the cuts stop.
pub async fn survives_a_relay_that_cuts_mid_stream<B: Backend>() {
    const CUTS: usize = 12;
    let shared = Arc::new(Mutex::new(Ticking {
        ticking: true,
        state: json!({"counter": 0}),
        latest: None,
    }));
    let counter = Arc::new(AtomicU64::new(0));
    let on_connection = {
        let shared = shared.clone();
        move |connection: Connection| {
            {
                let mut guard = shared.lock().unwrap();
                guard.latest = Some(connection.clone());
                let _ = connection.set_local_data(guard.state.clone());
            }
            let (shared, counter) = (shared.clone(), counter.clone());
            B::spawn(async move {
                let padding = "x".repeat(200);
                loop {
                    {
                        let mut guard = shared.lock().unwrap();
                        if !guard.ticking {
                            break;
                        }
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        guard.state = json!({"counter": n, "padding": padding});
                        if connection.set_local_data(guard.state.clone()).is_err() {
                            break;
                        }
                    }
                    // Paces the stream; nothing waits on this.
                    B::sleep(Duration::from_millis(2)).await;
                }
            });
        }
    };
    let server = B::listen(server_options(), on_connection).await.unwrap();
    let relay = CuttingRelay::start(server.local_addr(), 0x5eed_cafe, 300, 30_000);
    let client =
        B::reconnecting(vec![format!("ws://{}/ws", relay.addr())], quick_options()).unwrap();
    let mut events = client.events();
    let mut record = ChangeRecord::of(&client);

    let mut connections = 0;
    let mut disconnects = 0;
    within::<B, _>(HANG_GUARD, "the cuts", async {
        while disconnects < CUTS {
            match events.next().await.expect("the client is running") {
                ReconnectEvent::Connected { .. } => {
                    connections += 1;
                    client
                        .set_local_data(json!({"connections": connections}))
                        .unwrap();
                }
                ReconnectEvent::Disconnected { .. } => disconnects += 1,
                _ => {}
            }
        }
    })
    .await;
    relay.stop_cutting();
    assert!(relay.cuts() >= 1, "the relay cut connections");

    let done = json!({"done": true});
    {
        let mut guard = shared.lock().unwrap();
        guard.ticking = false;
        guard.state = done.clone();
        if let Some(latest) = &guard.latest {
            let _ = latest.set_local_data(done.clone());
        }
    }
    remote_becomes::<B>(&client, &done).await;
    let expected_local = client.local_data();
    let latest = shared.lock().unwrap().latest.clone().unwrap();
    server_sees::<B>(&latest, &expected_local).await;

    let seen = record.until::<B>(&done).await;
    assert!(!seen.contains(&Value::Null), "no flash of null");
    let counters: Vec<u64> = seen
        .iter()
        .filter_map(|value| value.get("counter").and_then(Value::as_u64))
        .collect();
    assert!(
        counters.windows(2).all(|pair| pair[0] <= pair[1]),
        "the remote state never goes back: {counters:?}"
    );
    assert_eq!(seen.last(), Some(&done));

    within::<B, _>(HANG_GUARD, "the client's close", client.shutdown()).await;
    shared.lock().unwrap().latest = None;
    server.close().await;
}

/// Calls that need a connection fail at once by default, fail after their
/// wait, or go through once a server appears.
pub async fn calls_while_disconnected_fail_or_wait<B: Backend>() {
    // A port with nobody listening.
    let (gone, _) = listen::<B>(server_options()).await;
    let (port, url) = (gone.local_addr().port(), gone.url());
    gone.close().await;

    let failing = B::reconnecting(vec![url.clone()], quick_options()).unwrap();
    assert!(matches!(
        failing.send(&json!(1)).await,
        Err(Error::Disconnected)
    ));
    assert!(matches!(
        failing.flush_local_data().await,
        Err(Error::Disconnected)
    ));
    failing.set_local_data(json!("kept")).unwrap();
    assert_eq!(*failing.local_data(), json!("kept"));

    let short = B::reconnecting(
        vec![url.clone()],
        quick_options().while_disconnected(WhileDisconnected::Wait(Duration::from_millis(50))),
    )
    .unwrap();
    assert!(matches!(
        short.send(&json!(1)).await,
        Err(Error::Disconnected)
    ));

    let patient = B::reconnecting(
        vec![url],
        quick_options().while_disconnected(WhileDisconnected::Wait(HANG_GUARD)),
    )
    .unwrap();
    let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
    {
        let patient = patient.clone();
        B::spawn(async move {
            let _ = sent_tx.send(patient.send(&json!("waited")).await);
        });
    }
    // Every client connects; only `patient` sends anything.
    let (received, mut messages) = tokio::sync::mpsc::unbounded_channel();
    let server = B::listen_on(port, server_options(), move |connection| {
        let received = received.clone();
        B::spawn(async move {
            if let Ok(message) = connection.receive().await {
                let _ = received.send(message);
            }
        });
    })
    .await
    .expect("listen on the freed port");
    let sent = within::<B, _>(HANG_GUARD, "the waiting send", sent_rx)
        .await
        .unwrap();
    assert!(sent.is_ok(), "{sent:?}");
    let got = within::<B, _>(HANG_GUARD, "the waited message", messages.recv()).await;
    assert_eq!(got, Some(json!("waited")));

    for client in [failing, short, patient] {
        within::<B, _>(HANG_GUARD, "a client's close", client.shutdown()).await;
    }
    server.close().await;
}

/// With `max_failed_rounds`, a client that never connects gives up: one
/// failed attempt per address per round, then `GaveUp`, and its calls and
/// event stream end.
pub async fn gives_up_after_its_failed_rounds<B: Backend>() {
    let (gone, _) = listen::<B>(server_options()).await;
    let url = gone.url();
    gone.close().await;
    let client = B::reconnecting(
        vec![url.clone(), url],
        quick_options().max_failed_rounds(Some(3)),
    )
    .unwrap();
    let mut events = client.events();
    let mut failures = 0;
    let gave_up = within::<B, _>(HANG_GUARD, "giving up", async {
        loop {
            match events.next().await {
                Some(ReconnectEvent::ConnectFailed { .. }) => failures += 1,
                Some(ReconnectEvent::GaveUp { failed_rounds }) => break failed_rounds,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert_eq!((failures, gave_up), (6, 3));
    assert_eq!(
        within::<B, _>(HANG_GUARD, "the end", events.next()).await,
        None
    );
    within::<B, _>(HANG_GUARD, "the client's end", client.wait_closed()).await;
    assert_eq!(client.status(), ClientStatus::GaveUp);
    assert!(matches!(
        client.wait_connected().await,
        Err(Error::Disconnected)
    ));
    assert!(matches!(client.receive().await, Err(Error::Disconnected)));
}

/// `CYCLES` connections, each closed by the server at once: the client
/// reconnects every time, and the connections, tasks and budget in use
/// come back to where they were after the first few.
pub async fn many_reconnects_leave_nothing_behind<B: Backend>(cycles: usize) {
    let server = B::listen(server_options(), |connection| connection.close())
        .await
        .unwrap();
    let options = quick_options().backoff(Backoff::default().initial_delay(Duration::ZERO));
    let client = B::reconnecting(vec![server.url()], options).unwrap();
    client.set_local_data(json!({"client": "cycling"})).unwrap();
    let mut events = client.events();
    let mut disconnects = 0;
    let mut baseline = None;
    within::<B, _>(HANG_GUARD * 5, "the reconnect cycles", async {
        while disconnects < cycles {
            match events.next().await.expect("the client is running") {
                ReconnectEvent::Disconnected { .. } => disconnects += 1,
                ReconnectEvent::Missed(missed) => panic!("missed {missed} events"),
                _ => {}
            }
            if disconnects == 20 && baseline.is_none() {
                baseline = Some(footprint::<B, _>(&server));
            }
        }
    })
    .await;
    let after = footprint::<B, _>(&server);
    let baseline = baseline.unwrap();
    // A connection or two may be between open and closed at either
    // reading; a leak of one per cycle would be hundreds.
    assert!(
        after.connections <= baseline.connections + 4,
        "connections in memory grew from {} to {} over {cycles} cycles",
        baseline.connections,
        after.connections
    );
    if let (Some(before), Some(now)) = (baseline.tasks, after.tasks) {
        assert!(
            now <= before + 8,
            "tasks grew from {before} to {now} over {cycles} cycles"
        );
    }
    within::<B, _>(HANG_GUARD, "the client's close", client.shutdown()).await;
    server.close().await;
    assert_eq!(server.memory_budget().used(), 0);
}

struct Footprint {
    connections: usize,
    tasks: Option<usize>,
}

fn footprint<B: Backend, S: TestServer>(_server: &S) -> Footprint {
    Footprint {
        connections: juggler_driver::connections_in_memory(),
        tasks: B::alive_tasks(),
    }
}

/// Instantiates the reconnect cases (all but the cycles, which run in
/// their own binary) for a backend.
#[macro_export]
macro_rules! reconnect_tests {
    ($backend:ty) => {
        $crate::reconnect_tests!(@cases $backend;
            survives_a_server_restart_on_the_same_port,
            survives_a_relay_that_cuts_mid_stream,
            calls_while_disconnected_fail_or_wait,
            gives_up_after_its_failed_rounds,
            a_v07_client_fails_over_and_survives_a_restart,
            a_v07_client_survives_a_relay_cut,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::reconnect::$case::<$backend>());
            }
        )*
    };
}
