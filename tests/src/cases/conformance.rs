//! The conformance suite: every case of the reference implementation's own
//! test suite (hat-juggler's `test_juggler.py`), over real sockets on
//! 127.0.0.1, written once for every runtime.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use juggler_driver::{ClientOptions, Connection, Error, ServerOptions};
use serde_json::{json, Value};

use crate::support::backend::{
    expect_messages, listen, pair, record_changes, within, Backend, TestServer, HANG_GUARD,
    IMMEDIATE,
};

/// The data sequences of hat-juggler's own tests.
pub fn data_sequences() -> Vec<Vec<Value>> {
    vec![
        vec![json!(true), json!(false), json!(true), json!(false)],
        vec![json!(0), json!(1), json!(2), json!(3), json!(4), json!(5)],
        vec![
            json!({}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"a": 2, "b": null}),
            json!({"b": null}),
        ],
        vec![
            json!(0),
            json!(false),
            json!(""),
            json!([]),
            json!({}),
            json!(null),
        ],
    ]
}

/// The message sequences of hat-juggler's own tests.
pub fn message_sequences() -> Vec<Vec<Value>> {
    vec![
        vec![json!(false), json!(false), json!(true), json!(false)],
        vec![json!(0), json!(0), json!(1), json!(2), json!(0), json!(3)],
        vec![
            json!({}),
            json!({"a": 1}),
            json!({"a": 2}),
            json!({"a": 2, "b": null}),
            json!({"b": null}),
        ],
        vec![
            json!(0),
            json!(0.0),
            json!(false),
            json!(""),
            json!([]),
            json!({}),
            json!(null),
        ],
    ]
}

/// Connecting to a port nobody listens on fails.
pub async fn connect_before_listen_fails<B: Backend>() {
    // Bind and drop a listener to learn a port that is free now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let result = B::connect(
        &format!("ws://127.0.0.1:{port}/ws"),
        ClientOptions::default(),
    )
    .await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

/// 1, 2 and 5 clients connect, then close one by one; the server side of
/// each sees its close.
pub async fn clients_connect_and_close_one_by_one<B: Backend>() {
    for count in [1, 2, 5] {
        let (server, mut incoming) = listen::<B>(ServerOptions::default()).await;
        let mut pairs = Vec::new();
        for _ in 0..count {
            let client = B::connect(&server.url(), ClientOptions::default())
                .await
                .unwrap();
            pairs.push((client, incoming.next().await));
        }
        for (client, server_side) in pairs {
            assert!(server_side.is_open());
            client.close();
            let reason =
                within::<B, _>(HANG_GUARD, "server side closing", server_side.wait_closed()).await;
            assert_eq!(reason, juggler_driver::CloseReason::Remote);
            assert_eq!(
                client.wait_closed().await,
                juggler_driver::CloseReason::Local
            );
        }
        server.close().await;
    }
}

/// Closing the server with 1, 2 and 10 clients closes them all promptly.
pub async fn server_close_closes_every_client<B: Backend>() {
    for count in [1, 2, 10] {
        let (server, mut incoming) = listen::<B>(ServerOptions::default()).await;
        let mut clients = Vec::new();
        let mut server_sides = Vec::new();
        for _ in 0..count {
            clients.push(
                B::connect(&server.url(), ClientOptions::default())
                    .await
                    .unwrap(),
            );
            server_sides.push(incoming.next().await);
        }
        within::<B, _>(HANG_GUARD, "server close", server.close()).await;
        for (client, server_side) in clients.iter().zip(&server_sides) {
            assert!(!server_side.is_open());
            within::<B, _>(HANG_GUARD, "client seeing the close", client.wait_closed()).await;
        }
    }
}

/// `set_local_data` round trips both ways for each reference sequence.
pub async fn set_local_data_round_trips_both_ways<B: Backend>() {
    for sequence in data_sequences() {
        let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
        for (from, to) in [(&client, &server_side), (&server_side, &client)] {
            let mut changes = to.remote_changes();
            for value in &sequence {
                from.set_local_data(value.clone()).unwrap();
                assert_eq!(*from.local_data(), *value);
                let received = within::<B, _>(HANG_GUARD, "data change", changes.changed())
                    .await
                    .unwrap();
                assert_eq!(*received, *value);
            }
        }
        server.close().await;
    }
}

/// Under the manual policy nothing arrives before the flush, all after.
pub async fn manual_flush_sends_only_on_flush<B: Backend>() {
    for sequence in data_sequences() {
        let (server, server_side, client) = pair::<B>(None).await;
        let (seen, _registration) = record_changes(&server_side);
        for value in &sequence {
            client.set_local_data(value.clone()).unwrap();
        }
        // A message overtakes no DATA frame: when it arrives, every DATA
        // frame sent before it has arrived too.
        client.send(&json!("marker")).await.unwrap();
        assert_eq!(server_side.receive().await.unwrap(), json!("marker"));
        assert!(
            seen.lock().unwrap().is_empty(),
            "data arrived before the flush"
        );
        assert_eq!(*server_side.remote_data(), Value::Null);
        let mut changes = server_side.remote_changes();
        client.flush_local_data().await.unwrap();
        let last = sequence.last().unwrap();
        if *last != Value::Null {
            assert_eq!(
                *within::<B, _>(HANG_GUARD, "flushed data", changes.changed())
                    .await
                    .unwrap(),
                *last
            );
        }
        client.send(&json!("marker")).await.unwrap();
        server_side.receive().await.unwrap();
        assert_eq!(*server_side.remote_data(), *last);
        assert!(
            seen.lock().unwrap().len() <= 1,
            "one flush, at most one change"
        );
        server.close().await;
    }
}

/// Messages arrive in order, both ways, for each reference sequence.
pub async fn send_receive_both_ways<B: Backend>() {
    for sequence in message_sequences() {
        let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
        for (from, to) in [(&client, &server_side), (&server_side, &client)] {
            for message in &sequence {
                from.send(message).await.unwrap();
            }
            expect_messages::<B>(to, &sequence).await;
        }
        server.close().await;
    }
}

/// An 8 MiB string message goes from server to client once the client
/// raises `max_message_size` (default 4 MiB); with the default, the client
/// closes with 1009 (message too big), and the server learns it.
pub async fn big_message_server_to_client<B: Backend>() {
    let big = Value::String("x".repeat(8 << 20));
    let (server, mut incoming) = listen::<B>(ServerOptions::default()).await;
    let raised = ClientOptions::default()
        .connection(juggler_driver::ConnectionOptions::default().max_message_size(16 << 20));
    let client = B::connect(&server.url(), raised).await.unwrap();
    let server_side = incoming.next().await;
    server_side.send(&big).await.unwrap();
    let received = within::<B, _>(HANG_GUARD, "8 MiB message", client.receive())
        .await
        .unwrap();
    assert_eq!(received, big);

    let client = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let server_side = incoming.next().await;
    server_side.send(&big).await.unwrap();
    let refused = within::<B, _>(HANG_GUARD, "the client's close", client.wait_closed()).await;
    assert!(
        matches!(refused, juggler_driver::CloseReason::Protocol(_)),
        "{refused:?}"
    );
    let seen = within::<B, _>(HANG_GUARD, "the server's close", server_side.wait_closed()).await;
    assert!(
        !matches!(seen, juggler_driver::CloseReason::Local),
        "{seen:?}"
    );
    server.close().await;
}

/// Every operation on a connection whose peer closed fails with `Closed`,
/// and the data keeps its last values.
pub async fn operations_after_peer_close_fail<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let mut changes = client.remote_changes();
    server_side.set_local_data(json!({"last": 1})).unwrap();
    within::<B, _>(HANG_GUARD, "data change", changes.changed())
        .await
        .unwrap();
    client.set_local_data(json!("mine")).unwrap();
    server_side.close();
    within::<B, _>(HANG_GUARD, "client close", client.wait_closed()).await;
    assert!(!client.is_open());
    assert!(matches!(
        client.set_local_data(json!(1)),
        Err(Error::Closed)
    ));
    assert!(matches!(
        client.flush_local_data().await,
        Err(Error::Closed)
    ));
    assert!(matches!(client.send(&json!(1)).await, Err(Error::Closed)));
    assert!(matches!(client.receive().await, Err(Error::Closed)));
    assert!(matches!(changes.changed().await, Err(Error::Closed)));
    assert_eq!(*client.local_data(), json!("mine"));
    assert_eq!(*client.remote_data(), json!({"last": 1}));
    server.close().await;
}

/// Autoflush zero: three quick sets give three changes, in order.
pub async fn immediate_autoflush_delivers_every_change<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let (seen, _registration) = record_changes(&server_side);
    for value in [json!(123), json!("abc"), json!("xyz")] {
        client.set_local_data(value).unwrap();
    }
    client.send(&json!("marker")).await.unwrap();
    within::<B, _>(HANG_GUARD, "marker", server_side.receive())
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [json!(123), json!("abc"), json!("xyz")]
    );
    server.close().await;
}

/// Autoflush non-zero: three quick sets give one change, the latest value.
/// The delay is one that three back-to-back sets never outlast, even on a
/// loaded machine where a thread may wait a long while for a core.
pub async fn delayed_autoflush_delivers_the_latest_once<B: Backend>() {
    let (server, server_side, client) = pair::<B>(Some(Duration::from_secs(1))).await;
    let (seen, _registration) = record_changes(&server_side);
    let mut changes = server_side.remote_changes();
    for value in [json!(123), json!("abc"), json!("xyz")] {
        client.set_local_data(value).unwrap();
    }
    let received = within::<B, _>(HANG_GUARD, "delayed change", changes.changed())
        .await
        .unwrap();
    assert_eq!(*received, json!("xyz"));
    // Nothing else is pending; a marker shows nothing else was sent.
    client.send(&json!("marker")).await.unwrap();
    server_side.receive().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [json!("xyz")]);
    server.close().await;
}

/// Juggler PING is answered with PONG by our own peer, and nothing breaks.
pub async fn ping_is_answered<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    client.send_ping().unwrap();
    client.send(&json!("after ping")).await.unwrap();
    assert_eq!(server_side.receive().await.unwrap(), json!("after ping"));
    server_side.send(&json!("reply")).await.unwrap();
    assert_eq!(client.receive().await.unwrap(), json!("reply"));
    assert!(client.is_open() && server_side.is_open());
    server.close().await;
}

/// Dropping the last handle closes the connection.
pub async fn dropping_the_last_handle_closes<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let clone = client.clone();
    drop(client);
    assert!(clone.is_open(), "a clone keeps it open");
    drop(clone);
    within::<B, _>(HANG_GUARD, "server side closing", server_side.wait_closed()).await;
    server.close().await;
}

/// The reference README example: the server sees the client's 123.
pub async fn readme_example<B: Backend>() {
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().autoflush_delay(IMMEDIATE)).await;
    let client = B::connect(
        &server.url(),
        ClientOptions::default().autoflush_delay(IMMEDIATE),
    )
    .await
    .unwrap();
    let server_side = incoming.next().await;
    let mut changes = server_side.remote_changes();
    client.set_local_data(json!(123)).unwrap();
    assert_eq!(*changes.changed().await.unwrap(), json!(123));
    server.close().await;
    within::<B, _>(HANG_GUARD, "client close", client.wait_closed()).await;
    within::<B, _>(HANG_GUARD, "server side close", server_side.wait_closed()).await;
}

/// A change callback registered inside `on_connection` sees even the data
/// a client sets right after connecting: the server hands out the
/// connection before it reads the first frame.
pub async fn callback_registered_on_connection_misses_nothing<B: Backend>() {
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let registrations = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let registrations = registrations.clone();
        B::listen(ServerOptions::default(), move |connection: Connection| {
            let seen_tx = seen_tx.clone();
            let observed = connection.clone();
            let registration = connection
                .register_change_cb(move || drop(seen_tx.send((*observed.remote_data()).clone())));
            registrations
                .lock()
                .unwrap()
                .push((connection, registration));
        })
        .await
        .unwrap()
    };
    for n in 0..20 {
        let client = B::connect(
            &server.url(),
            ClientOptions::default().autoflush_delay(IMMEDIATE),
        )
        .await
        .unwrap();
        client.set_local_data(json!(n)).unwrap();
        let seen = within::<B, _>(HANG_GUARD, "the first change", seen_rx.recv())
            .await
            .unwrap();
        assert_eq!(seen, json!(n));
        client.shutdown().await;
    }
    server.close().await;
}

/// A `RemoteChanges` made after a change still reports it at once.
pub async fn late_subscriber_sees_current_data<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    client.set_local_data(json!({"early": true})).unwrap();
    client.send(&json!("marker")).await.unwrap();
    server_side.receive().await.unwrap();
    let mut late = server_side.remote_changes();
    let data = within::<B, _>(HANG_GUARD, "current data", late.changed())
        .await
        .unwrap();
    assert_eq!(*data, json!({"early": true}));
    server.close().await;
}

/// A protocol error closes with a close code and reason the peer reads.
pub async fn peer_reads_the_close_code_of_a_protocol_error<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    server_side.close_with_protocol_error(juggler_driver::ProtocolError::InvalidMessage(
        "bad rpc".into(),
    ));
    let reason = within::<B, _>(HANG_GUARD, "client close", client.wait_closed()).await;
    assert_eq!(reason, juggler_driver::CloseReason::Remote);
    assert_eq!(
        client.peer_close_frame(),
        Some((1002, "invalid message: bad rpc".to_owned()))
    );
    assert!(matches!(
        server_side.wait_closed().await,
        juggler_driver::CloseReason::Protocol(juggler_driver::ProtocolError::InvalidMessage(_))
    ));
    // A clean close says 1000.
    let (server2, server_side2, client2) = pair::<B>(IMMEDIATE).await;
    client2.shutdown().await;
    within::<B, _>(HANG_GUARD, "server side close", server_side2.wait_closed()).await;
    assert_eq!(
        server_side2.peer_close_frame().map(|(code, _)| code),
        Some(1000)
    );
    server.close().await;
    server2.close().await;
}

/// One shared state shown to many clients: every client sees every
/// change, whether it got the pre-encoded frame or (when it joined late)
/// a diff of its own.
pub async fn shared_state_fans_out_to_every_client<B: Backend>() {
    use juggler_driver::SharedState;
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().autoflush_delay(IMMEDIATE)).await;
    let mut state = SharedState::new(json!({"version": 0, "items": []}));
    let mut server_sides = Vec::new();
    let mut clients = Vec::new();
    for joined in 0..6 {
        let client = B::connect(&server.url(), ClientOptions::default())
            .await
            .unwrap();
        let server_side = incoming.next().await;
        server_side.set_local_data(state.data().clone()).unwrap();
        server_sides.push(server_side);
        clients.push((client.remote_changes(), client));
        // A change after each join: some clients are in sync, one is new.
        let ops = serde_json::from_value(json!([
            {"op": "replace", "path": "/version", "value": joined + 1},
            {"op": "add", "path": "/items/-", "value": {"joined": joined}},
        ]))
        .unwrap();
        let change = state.update(ops).unwrap();
        for server_side in &server_sides {
            server_side.set_local_data_shared(&change).unwrap();
        }
        for (changes, client) in &mut clients {
            let expected = state.data().clone();
            while *client.remote_data() != *expected {
                within::<B, _>(HANG_GUARD, "the shared change", changes.changed())
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(state.data()["items"].as_array().unwrap().len(), 6);
    server.close().await;
}

/// A message filter sees every message in order; what it returns is
/// queued for `receive`, what it drops is not, and it may send from the
/// driver task through a `WeakConnection`.
pub async fn message_filter_sees_every_message_in_order<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let weak = server_side.downgrade();
    let recorded = seen.clone();
    server_side.set_message_filter(move |message| {
        recorded.lock().unwrap().push(message.clone());
        match message["kind"].as_str() {
            Some("drop") => None,
            Some("echo") => {
                let connection = weak.upgrade()?;
                connection
                    .try_send(&json!({"echoed": message["n"]}))
                    .unwrap();
                None
            }
            _ => Some(json!({"passed": message["n"]})),
        }
    });
    let kinds = ["pass", "drop", "echo", "pass", "drop", "pass"];
    for (n, kind) in kinds.iter().enumerate() {
        client.send(&json!({"kind": kind, "n": n})).await.unwrap();
    }
    expect_messages::<B>(
        &server_side,
        &[
            json!({"passed": 0}),
            json!({"passed": 3}),
            json!({"passed": 5}),
        ],
    )
    .await;
    expect_messages::<B>(&client, &[json!({"echoed": 2})]).await;
    let seen: Vec<Value> = seen.lock().unwrap().clone();
    let expected: Vec<Value> = kinds
        .iter()
        .enumerate()
        .map(|(n, kind)| json!({"kind": kind, "n": n}))
        .collect();
    assert_eq!(seen, expected);
    server.close().await;
}

/// A filter that owns a `Connection` does not keep it alive past its end:
/// the driver drops the filter, so what it owns is freed.
pub async fn message_filter_is_released_when_the_connection_ends<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let owned = Arc::new(());
    let held = (owned.clone(), server_side.clone());
    server_side.set_message_filter(move |message| {
        let _ = &held;
        Some(message)
    });
    assert_eq!(Arc::strong_count(&owned), 2);
    client.close();
    within::<B, _>(HANG_GUARD, "server side closed", server_side.wait_closed()).await;
    assert_eq!(Arc::strong_count(&owned), 1, "the filter was not dropped");
    server.close().await;
}

/// A closed server has let go of its port: one restarted on it binds at
/// once, every time (the accept loop drops its listener before it tells
/// `close` it is done).
pub async fn a_closed_server_frees_its_port<B: Backend>() {
    let server = B::listen(ServerOptions::default(), drop).await.unwrap();
    let port = server.local_addr().port();
    server.close().await;
    for restart in 0..50 {
        let server = B::listen_on(port, ServerOptions::default(), drop)
            .await
            .unwrap_or_else(|err| panic!("restart {restart} on port {port}: {err}"));
        server.close().await;
    }
}

/// Declares one `#[test]` per conformance case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ty) => {
        $crate::conformance_tests!(@cases $backend;
            connect_before_listen_fails,
            a_closed_server_frees_its_port,
            clients_connect_and_close_one_by_one,
            server_close_closes_every_client,
            set_local_data_round_trips_both_ways,
            manual_flush_sends_only_on_flush,
            send_receive_both_ways,
            big_message_server_to_client,
            operations_after_peer_close_fail,
            immediate_autoflush_delivers_every_change,
            delayed_autoflush_delivers_the_latest_once,
            ping_is_answered,
            dropping_the_last_handle_closes,
            readme_example,
            callback_registered_on_connection_misses_nothing,
            late_subscriber_sees_current_data,
            peer_reads_the_close_code_of_a_protocol_error,
            shared_state_fans_out_to_every_client,
            message_filter_sees_every_message_in_order,
            message_filter_is_released_when_the_connection_ends,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::conformance::$case::<$backend>());
            }
        )*
    };
}
