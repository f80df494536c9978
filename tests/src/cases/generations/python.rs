//! Interop with the pinned Python peers of the 0.6 and 0.7 generations
//! (hat-juggler 0.6.26 and 0.7.6), both directions: our server with a
//! Python client, a Python server with our client. Segments are made
//! small on both sides, so every message of any size is cut, multi-byte
//! characters included.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use juggler_driver::v07::{Handlers, Notifications, Options, RequestError};
use juggler_driver::{Error, Generation, Generations, ServerOptions};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};
use crate::support::python::{PeerKind, PythonPeer, PEER_0_6, PEER_0_7};

/// Text whose UTF-8 is one to four bytes a character, long enough for
/// many 16-byte segments: every kind of character lands on a segment edge.
pub(crate) fn multibyte_text() -> String {
    "aé€😀жü中".repeat(40)
}

/// A Python peer, with the events it sent that no one took yet.
pub(crate) struct Py {
    peer: PythonPeer,
    unread: Vec<Value>,
}

impl Py {
    pub(super) fn start(kind: &'static PeerKind) -> Option<Py> {
        Some(Py {
            peer: kind.start()?,
            unread: Vec::new(),
        })
    }

    pub(super) fn command(&mut self, command: Value) {
        self.peer.command(&command);
    }

    /// The first event (read before or now) that `matches`; the others
    /// stay for later calls.
    pub(super) async fn take<B: Backend>(
        &mut self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(index) = self.unread.iter().position(&matches) {
            return self.unread.remove(index);
        }
        within::<B, _>(HANG_GUARD, what, async {
            loop {
                let event = self.peer.next_event().await;
                assert_ne!(event["event"], "unparsable", "{event}");
                if matches(&event) {
                    return event;
                }
                self.unread.push(event);
            }
        })
        .await
    }

    pub(super) async fn event<B: Backend>(&mut self, name: &str) -> Value {
        self.take::<B>(name, |event| event["event"] == name).await
    }

    pub(super) async fn result<B: Backend>(&mut self, tag: &str) -> Value {
        self.take::<B>(tag, |event| {
            event["event"] == "result" && event["tag"] == tag
        })
        .await
    }

    /// The client's state events until one equals `state`.
    pub(super) async fn state_reaches<B: Backend>(&mut self, state: &Value) {
        let what = format!("state {state}");
        self.take::<B>(&what, |event| {
            event["event"] == "state" && event["state"] == *state
        })
        .await;
    }
}

pub(super) fn kind_of(generation: Generation) -> &'static PeerKind {
    match generation {
        Generation::V0_6 => &PEER_0_6,
        _ => &PEER_0_7,
    }
}

/// Segments of 16 bytes on 0.7 (0.6 has none).
fn small_segments(generation: Generation) -> Options {
    Options::default()
        .generation(generation)
        .max_segment_size(16)
        .autoflush_delay(Some(Duration::ZERO))
        // The Python client's held requests wait beside others.
        .parallel_requests(true)
}

/// The Python server's 0.7-only options, or none on 0.6.
fn python_segments(generation: Generation) -> Value {
    match generation {
        Generation::V0_6 => json!({}),
        _ => json!({"max_segment_size": 16}),
    }
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    base
}

/// Our client against the Python server: requests (echo of multi-byte
/// text cut into segments both ways, a failure, an empty name), the
/// server's state and notifications, and the close.
pub async fn python_server_serves_our_client<B: Backend>(generation: Generation) {
    let Some(mut py) = Py::start(kind_of(generation)) else {
        return;
    };
    py.command(with(
        json!({"cmd": "listen", "autoflush_delay": 0}),
        python_segments(generation),
    ));
    let port = py.event::<B>("listening").await["port"].as_u64().unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let client = within::<B, _>(
        HANG_GUARD,
        "connect",
        B::connect_v07(
            &url,
            small_segments(generation).notifications(Notifications::Queue),
        ),
    )
    .await
    .expect("connect to the Python server");
    let conn = py.event::<B>("connected").await["conn"].clone();

    let text = multibyte_text();
    let echoed = within::<B, _>(
        HANG_GUARD,
        "echo",
        client.send("echo", json!({"text": text})),
    )
    .await;
    assert_eq!(echoed.unwrap(), json!({"text": text}));

    let failed = within::<B, _>(
        HANG_GUARD,
        "fail",
        client.send("fail", json!("bad thing é")),
    )
    .await;
    assert!(
        matches!(&failed, Err(Error::Remote(data)) if *data == json!("bad thing é")),
        "{failed:?}"
    );

    let echo_of_empty_name = within::<B, _>(
        HANG_GUARD,
        "empty name",
        client.send("", json!({"x": [1, 2]})),
    )
    .await;
    assert_eq!(echo_of_empty_name.unwrap(), json!({"x": [1, 2]}));

    let other = within::<B, _>(HANG_GUARD, "other", client.send("other", json!(null))).await;
    assert_eq!(other.unwrap(), json!({"name": "other", "data": null}));

    // The state: whole, then changed (a `remove`, an `add`, a `replace`).
    let first = json!({"a": [1, 2, 3], "text": text});
    py.command(json!({"cmd": "set_state", "conn": conn, "value": first}));
    let mut seen = 0;
    let (count, state) = within::<B, _>(HANG_GUARD, "first state", client.state_changed(seen))
        .await
        .unwrap();
    seen = count;
    assert_eq!(*state, first);
    let second = json!({"a": [1, 3], "text": "é", "b": {"c": null}});
    py.command(json!({"cmd": "set_state", "conn": conn, "value": second}));
    let mut state = client.state();
    while *state != second {
        let (count, next) = within::<B, _>(HANG_GUARD, "second state", client.state_changed(seen))
            .await
            .unwrap();
        (seen, state) = (count, next);
    }

    // Notifications, in order, the long one segmented (as a stream).
    let mut notifications = Box::pin(client.notifications());
    for (index, data) in [json!(1), json!({"text": text}), json!(null)]
        .into_iter()
        .enumerate()
    {
        py.command(
            json!({"cmd": "notify", "conn": conn, "name": format!("n{index}"), "data": data}),
        );
        let notification = within::<B, _>(HANG_GUARD, "notification", notifications.next())
            .await
            .expect("a notification");
        assert_eq!(
            (notification.name, notification.data),
            (format!("n{index}"), data)
        );
    }

    client.close();
    py.take::<B>("closed", |event| {
        event["event"] == "closed" && event["conn"] == conn
    })
    .await;
    within::<B, _>(HANG_GUARD, "client closed", client.wait_closed()).await;
}

/// Requests the tests' server answers: `echo`, `fail`, `hold` (until
/// released), `set_state` and `notify` on the connection.
fn test_handlers(release: Arc<Notify>) -> Handlers {
    Handlers::new().on_request(move |connection, name, data| {
        let release = release.clone();
        async move {
            match name.as_str() {
                "echo" => Ok(data),
                "fail" => Err(RequestError(data)),
                "hold" => {
                    release.notified().await;
                    Ok(data)
                }
                "set_state" => {
                    connection.set_state(data);
                    Ok(Value::Null)
                }
                "notify" => {
                    let name = data["name"].as_str().unwrap_or_default().to_owned();
                    connection
                        .notify(&name, &data["data"])
                        .await
                        .map_err(RequestError::new)?;
                    Ok(Value::Null)
                }
                other => Ok(json!({"name": other, "data": data})),
            }
        }
    })
}

/// The Python client against our server: requests (segmented multi-byte
/// echo, a failure, an empty name), requests answered out of order, our
/// state and notifications, and the close.
pub async fn our_server_serves_the_python_client<B: Backend>(generation: Generation) {
    let Some(mut py) = Py::start(kind_of(generation)) else {
        return;
    };
    let release = Arc::new(Notify::new());
    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let handlers = test_handlers(release.clone()).on_connection(move |connection| {
        let _ = accepted.send(connection);
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(generation))
        .v07(small_segments(generation))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.expect("listen");
    py.command(with(
        json!({"cmd": "connect", "url": server.url()}),
        python_segments(generation),
    ));
    let conn = py.event::<B>("connected").await["conn"].clone();
    let ours = within::<B, _>(HANG_GUARD, "accepted", incoming.recv())
        .await
        .unwrap();
    assert_eq!(ours.generation(), generation);

    let text = multibyte_text();
    py.command(
        json!({"cmd": "send", "conn": conn, "tag": "echo", "name": "echo", "data": {"text": text}}),
    );
    assert_eq!(py.result::<B>("echo").await["data"], json!({"text": text}));

    py.command(
        json!({"cmd": "send", "conn": conn, "tag": "fail", "name": "fail", "data": "bad ü"}),
    );
    let failed = py.result::<B>("fail").await;
    assert_eq!(
        (&failed["success"], &failed["error_type"], &failed["error"]),
        (&json!(false), &json!("JugglerError"), &json!("bad ü"))
    );

    py.command(json!({"cmd": "send", "conn": conn, "tag": "empty", "name": "", "data": [1, "é"]}));
    assert_eq!(py.result::<B>("empty").await["data"], json!([1, "é"]));

    // A held request does not keep a later one waiting (parallel by
    // default), and is answered once released.
    py.command(json!({"cmd": "send", "conn": conn, "tag": "held", "name": "hold", "data": "h"}));
    py.command(json!({"cmd": "send", "conn": conn, "tag": "later", "name": "other", "data": 2}));
    assert_eq!(
        py.result::<B>("later").await["data"],
        json!({"name": "other", "data": 2})
    );
    release.notify_one();
    assert_eq!(py.result::<B>("held").await["data"], json!("h"));

    // Our state: whole, then each change, as JSON Patch.
    let states = [
        json!({"a": [1, 2, 3], "text": text}),
        json!({"a": [1, 3], "text": text}),
        json!({"a": [1, 3], "b": {"é": null}}),
        json!([1, "x"]),
        json!("scalar"),
    ];
    for state in &states {
        ours.set_state(state.clone());
        py.state_reaches::<B>(state).await;
    }
    // A state set from a request goes out too.
    py.command(json!({"cmd": "send", "conn": conn, "tag": "set", "name": "set_state", "data": {"from": "request"}}));
    py.result::<B>("set").await;
    py.state_reaches::<B>(&json!({"from": "request"})).await;

    // Notifications, in order, the long one segmented.
    for (index, data) in [json!(1), json!({"text": text}), json!(null)]
        .into_iter()
        .enumerate()
    {
        let name = format!("n{index}");
        within::<B, _>(HANG_GUARD, "notify", ours.notify(&name, &data))
            .await
            .unwrap();
        let got = py.event::<B>("notify").await;
        assert_eq!((&got["name"], &got["data"]), (&json!(name), &data));
    }

    // Closed from our side: Python sees it.
    ours.close();
    py.take::<B>("closed", |event| {
        event["event"] == "closed" && event["conn"] == conn
    })
    .await;
    within::<B, _>(HANG_GUARD, "closed", ours.wait_closed()).await;
    server.close().await;
}

/// A request larger than the Python server's 4 MiB WebSocket message limit
/// goes in 64 KiB segments (0.7's default) and is answered; the answer
/// comes back in the server's segments.
pub async fn a_large_request_to_the_python_server_stays_under_its_frame_limit<B: Backend>() {
    let Some(mut py) = Py::start(&PEER_0_7) else {
        return;
    };
    py.command(json!({"cmd": "listen"}));
    let port = py.event::<B>("listening").await["port"].as_u64().unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let client = B::connect_v07(&url, Options::default()).await.unwrap();
    let big = "é😀x".repeat(5 << 18); // 5 MiB of UTF-8 text
    let echoed = within::<B, _>(HANG_GUARD, "5 MiB echo", client.send("echo", json!(big))).await;
    assert_eq!(echoed.unwrap(), json!(big));
    assert!(client.is_open());
    client.async_close().await;
}
