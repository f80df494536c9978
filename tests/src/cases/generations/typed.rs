//! 0.6/0.7 with types: a served state (`Handlers::state`), requests
//! routed by name to typed handlers, typed requests from our client and
//! from the Python one, and the `json.Storage`-like path API.

use std::time::Duration;

use futures_util::StreamExt;
use juggler_driver::v07::{Client, Handlers, Options, RequestError};
use juggler_driver::{Error, Generation, Generations, Group, ServerOptions};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::python::{kind_of, Py};
use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};

#[derive(Deserialize)]
struct Entry {
    text: String,
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    level: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Board {
    counter: i64,
    log: Vec<String>,
}

/// The hat-juggler 0.7.6 example of issue #30: `add` and `log` on one
/// shared state, with no lock of the application's.
fn board_handlers(board: &Group) -> Handlers {
    let adds = board.clone();
    let logs = board.clone();
    Handlers::new()
        .state(board.clone())
        .request("add", move |_connection, amount: i64| {
            let board = adds.clone();
            async move {
                Ok::<_, RequestError>(board.modify(|state| {
                    let counter = state["counter"].as_i64().unwrap_or(0) + amount;
                    state["counter"] = json!(counter);
                    counter
                }))
            }
        })
        .request("log", move |connection, entry: Entry| {
            let board = logs.clone();
            async move {
                board.set("/log/-", format!("{}:{}", entry.meta.level, entry.text))?;
                connection.notify("logged", &json!(entry.text)).await?;
                Ok::<_, RequestError>(())
            }
        })
}

async fn state_where<B: Backend>(client: &Client, done: impl Fn(&Value) -> bool) -> Value {
    let mut states = client.state_changes();
    within::<B, _>(HANG_GUARD, "the state", async {
        while let Some(state) = states.next().await {
            if done(&state) {
                return Value::clone(&state);
            }
        }
        panic!("closed before the state came");
    })
    .await
}

/// Typed handlers on a served state answer our typed client and the
/// Python client alike; bad data gets an error naming the field, an
/// unknown name an error of its own, and every client sees the state.
pub async fn typed_requests_on_a_served_state<B: Backend>(generation: Generation) {
    let board = Group::new(json!({"counter": 0, "log": []}));
    let options = Options::default()
        .generation(generation)
        .autoflush_delay(Some(Duration::ZERO));
    let server_options = ServerOptions::default()
        .generations(Generations::Only(generation))
        .v07(options.clone())
        .v07_handlers(board_handlers(&board));
    let server = B::listen(server_options, drop).await.expect("listen");
    let client = within::<B, _>(
        HANG_GUARD,
        "connect",
        B::connect_v07(&server.url(), options),
    )
    .await
    .unwrap();

    let sum: i64 = within::<B, _>(HANG_GUARD, "add", client.request("add", &2))
        .await
        .unwrap();
    assert_eq!(sum, 2);
    let logged: () = within::<B, _>(
        HANG_GUARD,
        "log",
        client.request("log", &json!({"text": "hi", "meta": {"level": 3}})),
    )
    .await
    .unwrap();
    assert_eq!(logged, ());
    let state = state_where::<B>(&client, |state| state["log"] == json!(["3:hi"])).await;
    assert_eq!(state, json!({"counter": 2, "log": ["3:hi"]}));
    assert_eq!(
        client.state_as::<Board>().unwrap(),
        Board {
            counter: 2,
            log: vec!["3:hi".into()]
        }
    );
    assert_eq!(client.get("/log/0").unwrap(), Some(json!("3:hi")));

    let bad = client.send("log", json!({"text": "x", "meta": {"level": "high"}}));
    let bad = within::<B, _>(HANG_GUARD, "bad data", bad).await;
    let Err(Error::Remote(Value::String(why))) = bad else {
        panic!("bad data was answered {bad:?}");
    };
    assert!(
        why.starts_with("bad data for request log: meta.level: "),
        "{why}"
    );
    let unknown = within::<B, _>(HANG_GUARD, "unknown", client.send("nope", json!(1))).await;
    assert!(
        matches!(&unknown, Err(Error::Remote(data)) if *data == json!("unknown request nope")),
        "{unknown:?}"
    );
    let typed_answer = client.request::<_, String>("add", &1);
    let typed_answer = within::<B, _>(HANG_GUARD, "mistyped answer", typed_answer).await;
    assert!(
        matches!(typed_answer, Err(Error::RemoteDataType(_))),
        "{typed_answer:?}"
    );

    if let Some(mut py) = Py::start(kind_of(generation)) {
        py.command(json!({"cmd": "connect", "url": server.url()}));
        let conn = py.event::<B>("connected").await["conn"].clone();
        py.state_reaches::<B>(&json!({"counter": 3, "log": ["3:hi"]}))
            .await;
        py.command(json!({"cmd": "send", "conn": conn, "tag": "add", "name": "add", "data": 4}));
        assert_eq!(py.result::<B>("add").await["data"], json!(7));
        py.command(json!({"cmd": "send", "conn": conn, "tag": "bad", "name": "add", "data": "x"}));
        let bad = py.result::<B>("bad").await;
        assert_eq!(bad["success"], json!(false));
        assert!(
            bad["error"]
                .as_str()
                .is_some_and(|why| why.starts_with("bad data for request add: ")),
            "{bad}"
        );
        py.state_reaches::<B>(&json!({"counter": 7, "log": ["3:hi"]}))
            .await;
    }
    // Our client saw the Python client's change: one state for all.
    state_where::<B>(&client, |state| state["counter"] == json!(7)).await;
    client.close();
    server.close().await;
}

/// A connection's own state edited at JSON pointers, each edit one op:
/// the client sees every step, and an impossible edit fails and changes
/// nothing.
pub async fn the_path_api_edits_a_connections_state<B: Backend>(generation: Generation) {
    // Each change of the server's state, as its change callback saw it.
    let (changed, mut server_saw) = tokio::sync::mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on_connection(move |connection| {
            let observed = connection.downgrade();
            let changed = changed.clone();
            let registration = connection.register_change_cb(move || {
                if let Some(connection) = observed.upgrade() {
                    let _ = changed.send(Value::clone(&connection.state()));
                }
            });
            // Registered for as long as the server runs.
            std::mem::forget(registration);
            connection.set_state(json!({"plant": {}}));
        })
        .request(
            "set",
            |connection, (pointer, value): (String, Value)| async move {
                connection.set(&pointer, value)?;
                Ok::<_, RequestError>(connection.get(&pointer)?)
            },
        )
        .request("remove", |connection, pointer: String| async move {
            Ok::<_, RequestError>(connection.remove(&pointer)?)
        });
    let options = Options::default()
        .generation(generation)
        .autoflush_delay(Some(Duration::ZERO));
    let server_options = ServerOptions::default()
        .generations(Generations::Only(generation))
        .v07(options.clone())
        .v07_handlers(handlers);
    let server = B::listen(server_options, drop).await.expect("listen");
    let client = within::<B, _>(
        HANG_GUARD,
        "connect",
        B::connect_v07(&server.url(), options),
    )
    .await
    .unwrap();

    let steps = [
        (
            "set",
            json!(["/plant/3/level", 7]),
            json!({"plant": {"3": {"level": 7}}}),
        ),
        (
            "set",
            json!(["/log", ["a"]]),
            json!({"plant": {"3": {"level": 7}}, "log": ["a"]}),
        ),
        (
            "set",
            json!(["/log/-", "b"]),
            json!({"plant": {"3": {"level": 7}}, "log": ["a", "b"]}),
        ),
        (
            "remove",
            json!("/plant/3"),
            json!({"plant": {}, "log": ["a", "b"]}),
        ),
    ];
    // The client's change callback: the state after each change it got.
    let (arrived, mut client_saw) = tokio::sync::mpsc::unbounded_channel();
    let observed = client.clone();
    let _registration = client.register_change_cb(move || {
        let _ = arrived.send(Value::clone(&observed.state()));
    });
    let first = within::<B, _>(HANG_GUARD, "the server's callback", server_saw.recv()).await;
    assert_eq!(first, Some(json!({"plant": {}})));
    for (name, data, expected) in steps {
        within::<B, _>(HANG_GUARD, name, client.send(name, data))
            .await
            .unwrap();
        let state = state_where::<B>(&client, |state| *state == expected).await;
        assert_eq!(state, expected);
        // One server callback per change, in order.
        let seen = within::<B, _>(HANG_GUARD, "the server's callback", server_saw.recv()).await;
        assert_eq!(seen.as_ref(), Some(&expected));
        within::<B, _>(HANG_GUARD, "the client's callback", async {
            while client_saw.recv().await.as_ref() != Some(&expected) {}
        })
        .await;
    }
    let impossible = client.send("set", json!(["/log/9", 1]));
    let impossible = within::<B, _>(HANG_GUARD, "impossible", impossible).await;
    assert!(
        matches!(impossible, Err(Error::Remote(_))),
        "{impossible:?}"
    );
    assert_eq!(*client.state(), json!({"plant": {}, "log": ["a", "b"]}));
    client.close();
    server.close().await;
}
