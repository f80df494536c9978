//! Load and fault tests: many concurrent clients, and a server shutdown in
//! the middle of traffic, over real sockets on 127.0.0.1, written once for
//! every runtime.
//!
//! They run in a test binary of their own (`tests/load.rs`), one at a
//! time ([`SERIAL`]): each saturates the machine, and beside each other or
//! beside other suites they would measure the scheduler, not the server.
//! Nothing here asserts speed; a limit on time only catches a hang.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use juggler_driver::{ClientOptions, CloseReason, Connection, Error, ServerOptions};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD, IMMEDIATE};
use crate::support::bench::{assert_no_runtime_panics, raw_connect, watch_runtime_panics};

/// Held by every load case while it runs: one at a time per process.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Clients of [`thousand_clients_exchange_messages_and_data`].
pub const CLIENTS: usize = 1_000;
/// Messages each of them sends (and gets echoed).
pub const MESSAGES: u64 = 50;

/// What a server-side connection saw, reported when it closed.
#[derive(Debug)]
struct ServerReport {
    /// The client id in its messages (`None` if it sent none).
    client: Option<u64>,
    /// Whether every message carried that same id.
    one_client: bool,
    /// The `seq` of every message, in arrival order.
    seqs: Vec<u64>,
    /// Its remote data at the close.
    remote: Value,
    /// Its local data at the close.
    local: Value,
    reason: CloseReason,
}

/// The server's side of the load tests: every message `{"client", "seq"}`
/// sets the local data `{"client", "seen": seq}`, then is echoed back.
async fn echo(connection: Connection, reports: mpsc::UnboundedSender<ServerReport>) {
    let mut client = None;
    let mut one_client = true;
    let mut seqs = Vec::new();
    while let Ok(message) = connection.receive().await {
        let id = message["client"].as_u64();
        if client.is_none() {
            client = id;
        }
        one_client &= id.is_some() && id == client;
        let seq = message["seq"].as_u64().unwrap_or(u64::MAX);
        seqs.push(seq);
        if connection
            .set_local_data(json!({"client": id, "seen": seq}))
            .is_err()
            || connection.send(&message).await.is_err()
        {
            break;
        }
    }
    let reason = connection.wait_closed().await;
    let _ = reports.send(ServerReport {
        client,
        one_client,
        seqs,
        remote: (*connection.remote_data()).clone(),
        local: (*connection.local_data()).clone(),
        reason,
    });
}

/// One client of the 1,000: sends its messages (setting its data on every
/// other one), then checks the echoes: all there, once each, in order, each
/// after the server's data change that preceded it.
async fn exchange(id: u64, connection: Connection) -> Result<(), String> {
    for seq in 0..MESSAGES {
        if seq % 2 == 0 {
            connection
                .set_local_data(json!({"client": id, "step": seq}))
                .map_err(|err| format!("set_local_data: {err}"))?;
        }
        connection
            .send(&json!({"client": id, "seq": seq}))
            .await
            .map_err(|err| format!("send: {err}"))?;
    }
    for seq in 0..MESSAGES {
        let echo = connection
            .receive()
            .await
            .map_err(|err| format!("receive {seq}: {err}"))?;
        if echo != json!({"client": id, "seq": seq}) {
            return Err(format!("echo {seq} was {echo}"));
        }
        // The data change went out before the echo; a later one may have
        // arrived too, never an earlier one.
        let remote = connection.remote_data();
        let seen = remote["seen"].as_u64();
        if remote["client"] != json!(id) || seen.is_none_or(|seen| seen < seq) {
            return Err(format!("remote data {remote} at echo {seq}"));
        }
    }
    if *connection.remote_data() != json!({"client": id, "seen": MESSAGES - 1}) {
        return Err(format!("final remote data {}", connection.remote_data()));
    }
    match connection.shutdown().await {
        CloseReason::Local => Ok(()),
        other => Err(format!("closed with {other:?}")),
    }
}

/// 1,000 concurrent clients against one server, each exchanging messages
/// and data: nothing lost, nothing duplicated, order kept per connection,
/// and every connection gone afterwards.
pub async fn thousand_clients_exchange_messages_and_data<B: Backend>() {
    watch_runtime_panics();
    let started = Instant::now();
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let server = B::listen(
        ServerOptions::default().autoflush_delay(IMMEDIATE),
        move |connection| B::spawn(echo(connection, reports_tx.clone())),
    )
    .await
    .expect("listen");
    let url = server.url();
    let options = ClientOptions::default().autoflush_delay(IMMEDIATE);
    // Connect all of them (at most 100 handshakes at a time), then let
    // all of them talk at once.
    let connect = futures_util::stream::iter(0..CLIENTS)
        .map(|_| B::connect(&url, options.clone()))
        .buffered(100)
        .collect::<Vec<_>>();
    let clients = within::<B, _>(HANG_GUARD * 3, "connecting 1,000 clients", connect).await;
    let connected = started.elapsed();
    let (results_tx, mut results) = mpsc::unbounded_channel();
    for (id, client) in clients.into_iter().enumerate() {
        let client = client.expect("every client connects");
        let results = results_tx.clone();
        B::spawn(async move {
            let _ = results.send((id as u64, exchange(id as u64, client).await));
        });
    }
    drop(results_tx);
    let collect = async {
        let mut failures = Vec::new();
        let mut done = 0;
        while let Some((id, result)) = results.recv().await {
            done += 1;
            if let Err(err) = result {
                failures.push(format!("client {id}: {err}"));
            }
        }
        (done, failures)
    };
    let (done, failures) = within::<B, _>(HANG_GUARD * 3, "the exchanges", collect).await;
    assert_eq!(done, CLIENTS);
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    let mut seen = vec![false; CLIENTS];
    let gather = async {
        for _ in 0..CLIENTS {
            let report = reports.recv().await.expect("the server reports");
            let id = report.client.expect("every connection sent messages") as usize;
            assert!(report.one_client, "mixed clients: {report:?}");
            assert!(!std::mem::replace(&mut seen[id], true), "client {id} twice");
            assert_eq!(
                report.seqs,
                (0..MESSAGES).collect::<Vec<_>>(),
                "client {id}"
            );
            assert_eq!(
                report.remote,
                json!({"client": id, "step": (MESSAGES - 1) / 2 * 2}),
                "client {id}"
            );
            assert_eq!(report.reason, CloseReason::Remote, "client {id}");
        }
    };
    within::<B, _>(HANG_GUARD, "the server's reports", gather).await;
    assert_eq!(server.connection_count(), 0, "connections left");
    let elapsed = started.elapsed();
    within::<B, _>(HANG_GUARD, "closing the server", server.close()).await;
    assert_no_runtime_panics();
    eprintln!(
        "{CLIENTS} clients x {MESSAGES} messages: connected in {connected:?}, done in {elapsed:?}"
    );
}

/// Closing the server in the middle of traffic: 200 clients echoing as fast
/// as they can, and 6 raw clients that never read, so never answer the
/// close (3 of them with 5 MiB of messages pending behind full socket
/// buffers, so that not even the close frame can be written).
///
/// What must hold, whatever the machine's load: the server closes every
/// connection at once, each bounded by its own deadline (the close plus
/// `shutdown_timeout`); it counts exactly the 6 silent ones as cut off at
/// their deadline and every reading client as closed cleanly, holding the
/// data the server had set, which only the close's flush sent (the
/// autoflush delay is a minute); no connection or task is left. The
/// shutdown timeout is long (5 s) so that a reading client answers the
/// close before its deadline even on a starved machine. The close takes at
/// least that long (the silent ones wait their deadline) and is checked
/// against a ceiling of six times that: closes that ran one after another
/// would take 30 s, and only a hang or a serialised close gets there.
/// That each deadline is exactly the close plus the timeout, for any
/// number of connections, is proved on a virtual clock in
/// `juggler-driver/tests/virtual_clock.rs`.
pub async fn shutdown_under_load<B: Backend>() {
    const GOOD: usize = 200;
    const SILENT: usize = 3;
    const STUCK: usize = 3;
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
    const CEILING: Duration = Duration::from_secs(30);
    watch_runtime_panics();

    // Every task of the test holds a clone of `alive`; when all are gone,
    // `all_ended` yields `None`.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    // The server's callback takes its clones from here, which is emptied
    // once the server is closed.
    let spawner = std::sync::Arc::new(std::sync::Mutex::new(Some(alive.clone())));
    let server = {
        let spawner = spawner.clone();
        B::listen(
            ServerOptions::default()
                .autoflush_delay(Some(Duration::from_secs(60)))
                .shutdown_timeout(SHUTDOWN_TIMEOUT),
            move |connection: Connection| {
                let alive = spawner.lock().unwrap().clone();
                let reports = reports_tx.clone();
                let served = connection.clone();
                B::spawn(async move {
                    echo(served, reports).await;
                    drop(alive);
                });
                let _ = accepted_tx.send(connection);
            },
        )
        .await
        .expect("listen")
    };

    let url = server.url();
    let options = ClientOptions::default().autoflush_delay(IMMEDIATE);
    let connect = futures_util::stream::iter(0..GOOD)
        .map(|_| B::connect(&url, options.clone()))
        .buffered(50)
        .collect::<Vec<_>>();
    let clients: Vec<Connection> = within::<B, _>(HANG_GUARD, "connecting", connect)
        .await
        .into_iter()
        .map(|client| client.expect("connect"))
        .collect();
    let mut server_sides = Vec::new();
    for _ in 0..GOOD {
        server_sides.push(
            within::<B, _>(HANG_GUARD, "accepting", accepted.recv())
                .await
                .unwrap(),
        );
    }

    let (warm_tx, mut warm) = mpsc::unbounded_channel();
    let (results_tx, mut results) = mpsc::unbounded_channel();
    for (id, client) in clients.iter().cloned().enumerate() {
        let (alive, warm, results) = (alive.clone(), warm_tx.clone(), results_tx.clone());
        B::spawn(async move {
            let mut last_echo = None;
            let mut failure = None;
            for seq in 0.. {
                if client
                    .send(&json!({"client": id, "seq": seq}))
                    .await
                    .is_err()
                {
                    break;
                }
                match client.receive().await {
                    Ok(echo) if echo == json!({"client": id, "seq": seq}) => {
                        last_echo = Some(seq);
                    }
                    Ok(echo) => {
                        failure = Some(format!("echo {seq} was {echo}"));
                        break;
                    }
                    Err(_) => break,
                }
                if seq == 5 {
                    let _ = warm.send(());
                }
            }
            let reason = client.wait_closed().await;
            let _ = results.send((
                id,
                failure,
                last_echo,
                reason,
                client.peer_close_frame(),
                (*client.remote_data()).clone(),
            ));
            drop(alive);
        });
    }
    drop((warm_tx, results_tx));

    // Raw clients that never read: the silent ones just never answer the
    // close; the stuck ones first get 5 MiB they do not read.
    let mut raw_clients = Vec::new();
    let big = json!("z".repeat(128 << 10));
    for n in 0..SILENT + STUCK {
        raw_clients.push(raw_connect::<B>(&server).await);
        let server_side = within::<B, _>(HANG_GUARD, "accepting", accepted.recv())
            .await
            .unwrap();
        if n >= SILENT {
            for _ in 0..40 {
                within::<B, _>(HANG_GUARD, "queueing", server_side.send(&big))
                    .await
                    .unwrap();
            }
        }
        server_sides.push(server_side);
    }
    for _ in 0..GOOD {
        within::<B, _>(HANG_GUARD, "every client echoing", warm.recv()).await;
    }

    let started = Instant::now();
    let summary = within::<B, _>(CEILING, "closing the server", server.close()).await;
    let took = started.elapsed();
    eprintln!(
        "shutdown of {} connections under load took {took:?}: {summary:?}",
        GOOD + SILENT + STUCK
    );
    assert_eq!(summary.closed, GOOD + SILENT + STUCK, "{summary:?}");
    assert_eq!(
        summary.timed_out,
        SILENT + STUCK,
        "only the silent clients are cut off: {summary:?}"
    );
    assert!(
        took >= SHUTDOWN_TIMEOUT,
        "closed after {took:?}, before the silent clients' deadline"
    );
    assert_eq!(server.connection_count(), 0, "connections left");
    for server_side in &server_sides {
        assert!(!server_side.is_open());
        assert_eq!(
            within::<B, _>(HANG_GUARD, "a closed connection", server_side.wait_closed()).await,
            CloseReason::Local
        );
    }

    let mut finals = std::collections::HashMap::new();
    for _ in 0..GOOD + SILENT + STUCK {
        let report = within::<B, _>(HANG_GUARD, "the server's reports", reports.recv())
            .await
            .unwrap();
        if let Some(id) = report.client {
            finals.insert(id as usize, report.local);
        }
    }
    let mut clean = 0;
    for _ in 0..GOOD {
        let (id, failure, last_echo, reason, close_frame, remote) =
            within::<B, _>(HANG_GUARD, "the clients ending", results.recv())
                .await
                .unwrap();
        assert_eq!(failure, None, "client {id}");
        assert!(last_echo >= Some(5), "client {id}");
        if reason == CloseReason::Remote && close_frame.as_ref().map(|frame| frame.0) == Some(1000)
        {
            clean += 1;
            assert_eq!(
                Some(&remote),
                finals.get(&id),
                "client {id}: data not flushed before the close"
            );
            assert!(remote["seen"].as_u64() >= last_echo, "client {id}");
        }
    }
    eprintln!("{clean} of {GOOD} clients saw a clean close");
    assert_eq!(clean, GOOD, "a client that reads saw no clean close");
    for client in &clients {
        within::<B, _>(HANG_GUARD, "a client closing", client.wait_closed()).await;
        assert!(matches!(client.send(&json!(1)).await, Err(Error::Closed)));
    }
    spawner.lock().unwrap().take();
    drop(alive);
    assert_eq!(
        within::<B, _>(HANG_GUARD, "every task ending", all_ended.recv()).await,
        None
    );
    drop(raw_clients);
    assert_no_runtime_panics();
}

/// Declares one `#[test]` per load case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! load_tests {
    ($backend:ty) => {
        $crate::load_tests!(@cases $backend;
            thousand_clients_exchange_messages_and_data,
            shutdown_under_load,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let _serial = $crate::cases::load::SERIAL
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                <$backend as $crate::Backend>::block_on($crate::cases::load::$case::<$backend>());
            }
        )*
    };
}
