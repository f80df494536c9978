//! The 0.6/0.7 reconnecting client: failover along its addresses,
//! headers made anew for every attempt, its state kept across a server
//! restart with no `null` between, calls while disconnected, and a relay
//! that cuts it off.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use juggler_driver::http::{HeaderMap, HeaderValue};
use juggler_driver::v07::{Handlers, Notifications, Options, ReconnectingClient, RequestError};
use juggler_driver::{
    Error, Generation, Generations, ReconnectEvent, ReconnectEvents, ServerOptions,
};
use serde_json::{json, Value};

use super::{next_event, quick_options};
use crate::support::backend::{within, HANG_GUARD, IMMEDIATE};
use crate::support::relay::CuttingRelay;
use crate::{Backend, TestServer};

/// A 0.6/0.7 server whose state names it (`server`) and the `x-token`
/// header its client sent; `echo` answers the data, `notify` notifies it.
async fn token_server<B: Backend>(generation: Generation, port: u16, name: u32) -> B::Server {
    let handlers = Handlers::new()
        .on_connection(move |connection| {
            let token = connection
                .upgrade_request()
                .and_then(|request| request.headers.get("x-token"))
                .and_then(|token| token.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            connection.set_state(json!({"server": name, "token": token}));
        })
        .request("echo", |_connection, data: Value| async move {
            Ok::<_, RequestError>(data)
        })
        .request("notify", |connection, data: Value| async move {
            connection.notify("notified", &data).await?;
            Ok::<_, RequestError>(())
        });
    let options = ServerOptions::default()
        .generations(Generations::Only(generation))
        .v07(
            Options::default()
                .generation(generation)
                .autoflush_delay(IMMEDIATE),
        )
        .v07_handlers(handlers);
    B::listen_on(port, options, drop).await.expect("listen")
}

fn client_options(generation: Generation) -> Options {
    Options::default()
        .generation(generation)
        .notifications(Notifications::Queue)
}

/// An address where nothing listens.
fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("its address").port();
    format!("ws://127.0.0.1:{port}/ws")
}

/// Waits until the client's state is `expected`.
async fn state_becomes<B: Backend>(client: &ReconnectingClient, expected: &Value) {
    within::<B, _>(HANG_GUARD, "the state", async {
        let mut seen = 0;
        while *client.state() != *expected {
            seen = client.state_changed(seen).await.expect("running").0;
        }
    })
    .await;
}

/// Counts the attempts (failed or not) among the events until the next
/// connection, and returns them with its address.
async fn attempts_until_connected<B: Backend>(events: &mut ReconnectEvents) -> (u64, String) {
    let mut attempts = 0;
    let address = next_event::<B, _>(events, "connected", |event| match event {
        ReconnectEvent::Connected { address, .. } => Some(address),
        ReconnectEvent::ConnectFailed { .. } => {
            attempts += 1;
            None
        }
        _ => None,
    })
    .await;
    (attempts + 1, address)
}

/// Fails over from a dead address to a live one, sends headers made anew
/// for each attempt, keeps its state across a server restart on the same
/// port (no `null` between), fails calls at once while disconnected, and
/// gets notifications and answers from each connection.
pub async fn a_v07_client_fails_over_and_survives_a_restart<B: Backend>() {
    for generation in [Generation::V0_6, Generation::V0_7] {
        let first = token_server::<B>(generation, 0, 1).await;
        let port = first.local_addr().port();
        let made = Arc::new(AtomicU64::new(0));
        let counter = made.clone();
        // Room for every attempt's event, however long the restart takes:
        // the tokens are counted against them.
        let reconnect = quick_options().event_capacity(4096).headers(move || {
            let token = counter.fetch_add(1, Ordering::SeqCst) + 1;
            let mut headers = HeaderMap::new();
            headers.insert("x-token", HeaderValue::from(token));
            headers
        });
        let dead = dead_address();
        let client = B::reconnecting_v07(
            vec![dead.clone(), first.url()],
            client_options(generation),
            reconnect,
        )
        .unwrap();
        let mut events = client.events();
        let mut states = client.state_changes();

        let failed = next_event::<B, _>(&mut events, "the dead address", |event| match event {
            ReconnectEvent::ConnectFailed { address, .. } => Some(address),
            _ => None,
        })
        .await;
        assert_eq!(failed, dead);
        let (_, address) = attempts_until_connected::<B>(&mut events).await;
        assert_eq!(address, first.url());
        // Two attempts, two tokens: the live server got the second.
        assert_eq!(made.load(Ordering::SeqCst), 2);
        let expected = json!({"server": 1, "token": "2"});
        state_becomes::<B>(&client, &expected).await;
        let first_seen = within::<B, _>(HANG_GUARD, "the stream", states.next()).await;
        assert_eq!(first_seen.as_deref(), Some(&expected));
        let echoed: Value = within::<B, _>(HANG_GUARD, "echo", client.request("echo", &json!([1])))
            .await
            .unwrap();
        assert_eq!(echoed, json!([1]));
        within::<B, _>(HANG_GUARD, "notify", client.send("notify", json!("n1")))
            .await
            .unwrap();
        let notified = within::<B, _>(HANG_GUARD, "notification", client.receive()).await;
        assert_eq!(notified.map(|n| n.data), Some(json!("n1")));

        within::<B, _>(HANG_GUARD, "the first server's close", first.close()).await;
        next_event::<B, _>(&mut events, "disconnected", |event| {
            matches!(event, ReconnectEvent::Disconnected { .. }).then_some(())
        })
        .await;
        assert_eq!(*client.state(), expected, "kept across the gap");
        let during = client.send("echo", json!(2)).await;
        assert!(matches!(during, Err(Error::Disconnected)), "{during:?}");

        let second = token_server::<B>(generation, port, 2).await;
        let (attempts, address) = attempts_until_connected::<B>(&mut events).await;
        assert_eq!(address, second.url());
        // One token per attempt, whether it failed or not: the two before
        // the first connection and one for each attempt since the
        // disconnection (which may begin before this task reads a count).
        let tokens = made.load(Ordering::SeqCst);
        assert!(attempts >= 1);
        assert_eq!(tokens, 2 + attempts);
        let replaced = json!({"server": 2, "token": tokens.to_string()});
        state_becomes::<B>(&client, &replaced).await;

        let next_seen = within::<B, _>(HANG_GUARD, "the stream", states.next()).await;
        assert_eq!(next_seen.as_deref(), Some(&replaced), "no null between");
        let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(3))).await;
        assert_eq!(echoed.unwrap(), json!(3));

        within::<B, _>(HANG_GUARD, "the client's close", client.shutdown()).await;
        assert!(client.receive().await.is_none());
        assert!(matches!(
            client.send("echo", json!(4)).await,
            Err(Error::Closed)
        ));
        second.close().await;
    }
}

/// A relay that cuts the connection: the client is told, comes back
/// through the relay once it forwards again, and answers flow.
pub async fn a_v07_client_survives_a_relay_cut<B: Backend>() {
    let generation = Generation::V0_7;
    let server = token_server::<B>(generation, 0, 1).await;
    let relay = CuttingRelay::start(server.local_addr(), 3, 1, 64);
    relay.stop_cutting();
    let url = format!("ws://{}/ws", relay.addr());
    let client = B::reconnecting_v07(
        vec![url.clone()],
        client_options(generation),
        quick_options(),
    )
    .unwrap();
    let mut events = client.events();
    let (_, address) = attempts_until_connected::<B>(&mut events).await;
    assert_eq!(address, url);
    state_becomes::<B>(&client, &json!({"server": 1, "token": ""})).await;

    relay.start_cutting();
    // Traffic makes the relay cut; the request may or may not be answered.
    let _ = within::<B, _>(HANG_GUARD, "a cut request", client.send("echo", json!(1))).await;
    next_event::<B, _>(&mut events, "disconnected", |event| {
        matches!(event, ReconnectEvent::Disconnected { .. }).then_some(())
    })
    .await;
    relay.stop_cutting();
    attempts_until_connected::<B>(&mut events).await;
    let echoed = within::<B, _>(HANG_GUARD, "echo after", client.send("echo", json!(2))).await;
    assert_eq!(echoed.unwrap(), json!(2));
    assert!(relay.cuts() >= 1);
    client.shutdown().await;
    server.close().await;
}
