//! What a 0.6/0.7 client keeps of the server's notifications, by policy
//! ([`Notifications`]): none, a queue with backpressure, the newest within
//! a bound, or the latest one.

use std::time::Duration;

use juggler_driver::v07::{Client, Handlers, Notification, Notifications, Options};
use juggler_driver::{Generation, Generations, ServerOptions};
use serde_json::{json, Value};

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};

/// A server whose `burst` request sends that many notifications (`n`,
/// numbered from 0), then sets the state to `{"sent": n}`.
async fn burst_server<B: Backend>() -> B::Server {
    let handlers = Handlers::new().on_request(|connection, name, data| async move {
        let count = match (name.as_str(), data.as_u64()) {
            ("burst", Some(count)) => count,
            _ => return Err("burst takes a count".into()),
        };
        for n in 0..count {
            connection.notify("n", &json!(n)).await?;
        }
        connection.set_state(json!({ "sent": count }));
        Ok(Value::Null)
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers);
    B::listen(options, drop).await.expect("listen")
}

/// Asks for `count` notifications and waits until the state says they
/// were all sent (they come before it, in order).
async fn burst<B: Backend>(client: &Client, count: u64) {
    client.send("burst", json!(count)).await.expect("burst");
    within::<B, _>(HANG_GUARD, "the state after the burst", async {
        let mut seen = 0;
        loop {
            let (count_seen, state) = client.state_changed(seen).await.expect("open");
            if state["sent"] == json!(count) {
                return;
            }
            seen = count_seen;
        }
    })
    .await;
}

/// What the client kept, once closed: every notification still unread.
async fn kept<B: Backend>(client: &Client) -> Vec<Value> {
    client.close();
    let mut kept = Vec::new();
    while let Some(Notification { data, .. }) =
        within::<B, _>(HANG_GUARD, "the kept notifications", client.receive()).await
    {
        kept.push(data);
    }
    kept
}

/// By default a client keeps no notifications: 100,000 of them unread
/// never stop the state, and take no memory.
pub async fn a_client_that_does_not_ask_keeps_no_notifications<B: Backend>() {
    let server = burst_server::<B>().await;
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    burst::<B>(&client, 100_000).await;
    burst::<B>(&client, 10).await;
    assert_eq!(client.memory_budget().peak(), 0);
    assert_eq!(client.dropped_notifications(), 0);
    assert!(kept::<B>(&client).await.is_empty());
}

/// `DropOldest` keeps the newest within the queue's bound, in order, and
/// counts the rest; `KeepLatest` keeps only the newest.
pub async fn bounded_policies_keep_the_newest<B: Backend>() {
    let server = burst_server::<B>().await;
    let newest = B::connect_v07(
        &server.url(),
        Options::default()
            .notifications(Notifications::DropOldest)
            .receive_queue_size(10),
    )
    .await
    .unwrap();
    let latest = B::connect_v07(
        &server.url(),
        Options::default().notifications(Notifications::KeepLatest),
    )
    .await
    .unwrap();
    burst::<B>(&newest, 2_000).await;
    burst::<B>(&latest, 2_000).await;

    assert_eq!(
        kept::<B>(&newest).await,
        (1_990..2_000).map(|n| json!(n)).collect::<Vec<_>>()
    );
    assert_eq!(newest.dropped_notifications(), 1_990);
    assert_eq!(kept::<B>(&latest).await, vec![json!(1_999)]);
    assert_eq!(latest.dropped_notifications(), 1_999);
}

/// `Queue` keeps every one, in order.
pub async fn a_queue_keeps_every_notification<B: Backend>() {
    let server = burst_server::<B>().await;
    let client = B::connect_v07(
        &server.url(),
        Options::default().notifications(Notifications::Queue),
    )
    .await
    .unwrap();
    burst::<B>(&client, 500).await;
    assert_eq!(
        kept::<B>(&client).await,
        (0..500).map(|n| json!(n)).collect::<Vec<_>>()
    );
    assert_eq!(client.dropped_notifications(), 0);
}

/// `Connection::modify_state` under requests answered at once: each
/// increment sees the one before it, and the client gets the last.
pub async fn modify_state_is_a_safe_read_modify_write<B: Backend>() {
    let handlers = Handlers::new().on_request(|connection, _name, _data| async move {
        Ok(connection.modify_state(|state| {
            *state = json!(state.as_i64().unwrap_or(0) + 1);
            state.clone()
        }))
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(
            Options::default()
                .autoflush_delay(Some(Duration::ZERO))
                .parallel_requests(true),
        )
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.expect("listen");
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let answers = within::<B, _>(
        HANG_GUARD,
        "50 increments",
        futures_util::future::join_all((0..50).map(|_| client.send("inc", Value::Null))),
    )
    .await;
    let mut answers: Vec<i64> = answers
        .into_iter()
        .map(|answer| answer.unwrap().as_i64().unwrap())
        .collect();
    answers.sort_unstable();
    assert_eq!(answers, (1..=50).collect::<Vec<_>>());
    within::<B, _>(HANG_GUARD, "the last state", async {
        let mut seen = 0;
        while *client.state() != json!(50) {
            seen = client.state_changed(seen).await.unwrap().0;
        }
    })
    .await;
}
