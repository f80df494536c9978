//! A hat-gui 0.8 back end (Juggler 0.7) and a Rust client of it, in one
//! program that ends by itself.
//!
//! The server keeps one state, `{"counter": …, "log": […]}`, in a `Group`
//! that every connection joins, answers the requests `add` (adds its data
//! to the counter, answers the new count) and `log` (keeps the last ten
//! entries, and notifies the caller `logged`), and tells the generations
//! apart on one `/ws`: a 0.5 client sees the same state as its remote
//! data. A 0.7 client and a 0.5 client then use it.
//!
//! ```text
//! cargo run -p juggler-tokio --example hat_gui_backend
//! ```
//!
//! `juggler-tokio/tests/examples.rs` runs it. docs/guide.md, "A hat-gui 0.8
//! back end in Rust", walks through it.

use juggler_tokio::v07::{self, Handlers, RequestError};
use juggler_tokio::{listen, Group, Server, ServerOptions};
use serde_json::{json, Value};

/// Starts the back end on `host:port` (port 0: a free one).
pub async fn serve(host: &str, port: u16) -> Result<Server, juggler_tokio::Error> {
    // The state every client sees, as the reference's `listen(state=…)`.
    // Requests of many connections run on many threads: a read-modify-write
    // of its state is `modify`, under the group's own lock, so no update
    // is lost.
    let state = Group::new(json!({"counter": 0, "log": []}));

    let (adds, logs) = (state.clone(), state.clone());
    let handlers = Handlers::new()
        // Every 0.6/0.7 connection joins the group, which sends it the
        // current state and forgets it once it closes.
        .state(state.clone())
        // Each request name has its handler, and its data a type: data
        // of another type gets an error answer that says so, and a name
        // with no handler `unknown request NAME`.
        .request("add", move |_connection, by: i64| {
            let state = adds.clone();
            async move {
                // One diff, sent to every member.
                Ok::<_, RequestError>(state.modify(|state| {
                    let counter = state["counter"].as_i64().unwrap_or(0) + by;
                    state["counter"] = json!(counter);
                    counter
                }))
            }
        })
        .request("log", move |connection, entry: Value| {
            let state = logs.clone();
            async move {
                state.modify(|state| {
                    let mut log = state["log"].as_array().cloned().unwrap_or_default();
                    log.push(entry.clone());
                    let keep = log.len().saturating_sub(10);
                    state["log"] = Value::Array(log.split_off(keep));
                });
                connection.notify("logged", &entry).await?;
                Ok::<_, RequestError>(())
            }
        });

    // With 0.7 handlers the server takes 0.5, 0.6 and 0.7 clients on one
    // /ws (`Generations::Auto`); a client silent for 1 s is 0.5.
    let options = ServerOptions::default().v07_handlers(handlers);
    listen(
        host,
        port,
        move |connection| {
            // A 0.5 client sees the same state as its remote data.
            let _ = state.join(&connection);
        },
        options,
    )
    .await
}

/// Starts the back end, uses it from a 0.7 and a 0.5 client, and stops it.
pub async fn run() -> Result<(), juggler_tokio::Error> {
    let server = serve("127.0.0.1", 0).await?;
    println!("back end on {}", server.url());

    // What a hat-gui 0.8 page does, from Rust.
    let notified = v07::Options::default().notifications(v07::Notifications::Queue);
    let client = v07::connect(server.url(), notified).await?;
    assert_eq!(client.request::<_, i64>("add", &2).await?, 2);
    assert_eq!(client.request::<_, i64>("add", &3).await?, 5);
    client.send("log", json!("hello")).await?;
    let notification = client.receive().await.expect("the `logged` notification");
    println!("notified: {} {}", notification.name, notification.data);
    match client.send("nope", Value::Null).await {
        Err(juggler_tokio::Error::Remote(data)) => println!("refused: {data}"),
        other => panic!("an unknown request must fail: {other:?}"),
    }
    // The state arrives by the server's autoflush (0.2 s after a change).
    let mut seen = 0;
    loop {
        let (count, state) = client.state_changed(seen).await?;
        seen = count;
        if state["log"] == json!(["hello"]) {
            println!("0.7 client sees {state}");
            break;
        }
    }

    // A 0.5 client on the same path: it stays silent, so the server takes
    // it for 0.5 after 1 s, and shows it the same state.
    let old = juggler_tokio::connect(server.url()).await?;
    let mut changes = old.remote_changes();
    let data = loop {
        let data = changes.changed().await?;
        if data["counter"] == json!(5) {
            break data;
        }
    };
    println!("0.5 client sees {data}");

    client.async_close().await;
    old.shutdown().await;
    server.close().await;
    Ok(())
}

#[allow(dead_code)] // juggler-tokio/tests/examples.rs includes this file for `run`
#[tokio::main]
async fn main() -> Result<(), juggler_tokio::Error> {
    run().await
}
