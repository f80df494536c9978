//! Two demo processes' worth of demos (each with its own juggler-redis
//! node) on one real redis-server: their pages show one counter, one list
//! of names and one client count, also after Redis is killed and
//! restarted empty.

use std::time::Duration;

use juggler_demo::Demo;
use juggler_rpc::{Actions, RpcConnection};
use juggler_tests::support::redis::RedisServer;
use serde_json::{json, Value};

/// Waits (up to a minute, a hang guard) until `client`'s page state
/// passes `test`.
async fn page_shows(client: &juggler_tokio::Connection, what: &str, test: impl Fn(&Value) -> bool) {
    let mut changes = client.remote_changes();
    tokio::time::timeout(Duration::from_secs(60), async {
        while !test(&client.remote_data()) {
            changes.changed().await.expect("the page is open");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the page shows {}", client.remote_data()));
}

fn shows<'a>(names: &'a [&'a str], counter: i64) -> impl Fn(&Value) -> bool + 'a {
    move |state| {
        let mut shown: Vec<&str> = state["names"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        shown.sort_unstable();
        state["counter"] == counter && state["clients"] == names.len() && shown == names
    }
}

/// Increments through `page`, retrying while the demo's Redis is away.
async fn increment(page: &RpcConnection, by: i64) -> Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match page.call("increment", vec![json!(by)]).await {
                Ok(counter) => return counter,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("an increment within a minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_demos_on_one_redis_show_one_state() {
    let Some(mut redis) = RedisServer::start("two_demos_on_one_redis_show_one_state") else {
        return;
    };
    let url = redis.url();
    let one = Demo::start_clustered("127.0.0.1", 0, Some(&url))
        .await
        .unwrap();
    let two = Demo::start_clustered("127.0.0.1", 0, Some(&url))
        .await
        .unwrap();
    let ann = RpcConnection::new(
        juggler_tokio::connect(one.ws_url()).await.unwrap(),
        Actions::new(),
    );
    let bob = RpcConnection::new(
        juggler_tokio::connect(two.ws_url()).await.unwrap(),
        Actions::new(),
    );
    ann.connection()
        .set_local_data(json!({"name": "ann"}))
        .unwrap();
    bob.connection()
        .set_local_data(json!({"name": "bob"}))
        .unwrap();
    assert_eq!(increment(&ann, 1).await, 1);
    assert_eq!(increment(&bob, 2).await, 3);
    for page in [&ann, &bob] {
        page_shows(page.connection(), "one state", shows(&["ann", "bob"], 3)).await;
    }

    redis.kill();
    redis.restart();
    // Redis is back empty: the counter is re-seeded from a demo's copy.
    increment(&ann, 1).await;
    for page in [&ann, &bob] {
        page_shows(
            page.connection(),
            "one state after the restart",
            shows(&["ann", "bob"], 4),
        )
        .await;
    }
    assert_eq!(one.counter(), 4);
    assert_eq!(two.counter(), 4);
    one.close().await;
    two.close().await;
}
