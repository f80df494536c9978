//! RPC with the Python peer's own `RpcConnection`, both ways.

use super::data::tricky_values;
use super::*;

// RPC (SPEC §5) against hat-juggler's own `RpcConnection`.
//
// hat-juggler 0.5.14 runs each request inline in its one receive loop (it
// awaits the action before reading the next message), so while one of its
// actions runs it reads nothing else: no other request, no response to its
// own calls, no plain message. Its `hold` action (see `peer.py`) uses that
// to keep our calls outstanding; it answers in request order. Our side runs
// each action in a task of its own, so its `gate` action can answer
// Python's calls in any order.

/// The error text both sides answer for an action that does not exist.
const INVALID_ACTION: &str = "invalid action";

/// The releases of our `gate` action, by key.
#[derive(Default)]
struct Gates {
    gates: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Gates {
    fn gate(&self, key: &Value) -> Arc<Notify> {
        let mut gates = self.gates.lock().unwrap();
        gates.entry(key.to_string()).or_default().clone()
    }

    /// Lets `gate(key)` answer (now, or as soon as it runs).
    fn release(&self, key: &Value) {
        self.gate(key).notify_one();
    }
}

/// Our actions, the Python peer's counterparts: `act(x)` gives `x + 1`;
/// `fail(text)` fails with `text`; `echo(args...)` gives its arguments;
/// `gate(key)` reports `key` on `started`, waits for its release, then
/// gives `key`; `notify(value)` sends `value` as a plain message, then
/// gives it. With `default`, a default action gives
/// `{"name": NAME, "args": [...]}`.
fn rust_actions(
    connection: Connection,
    gates: Arc<Gates>,
    started: mpsc::UnboundedSender<Value>,
    default: bool,
) -> Actions {
    let actions = Actions::new()
        .typed_action("act", |(x,): (i64,)| async move {
            x.checked_add(1).ok_or("overflow")
        })
        .action("fail", |args: Vec<Value>| async move {
            Err::<Value, _>(match args.first() {
                Some(Value::String(text)) => text.clone(),
                other => format!("fail takes a string, not {other:?}"),
            })
        })
        .action("echo", |args: Vec<Value>| async move {
            Ok::<_, String>(Value::Array(args))
        })
        .action("gate", move |args: Vec<Value>| {
            let key = args.into_iter().next().unwrap_or(Value::Null);
            let gate = gates.gate(&key);
            let _ = started.send(key.clone());
            async move {
                gate.notified().await;
                Ok::<_, String>(key)
            }
        })
        .action("notify", move |args: Vec<Value>| {
            let connection = connection.clone();
            async move {
                let value = args.into_iter().next().unwrap_or(Value::Null);
                connection
                    .send(&value)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok::<_, String>(value)
            }
        });
    if default {
        actions.default_action(|name: String, args: Vec<Value>| async move {
            Ok::<_, String>(json!({"name": name, "args": args}))
        })
    } else {
        actions
    }
}

/// A link with an `RpcConnection` on each side.
struct RpcLink<B: Backend> {
    link: Link<B>,
    /// Our side; dropping it closes the connection.
    rpc: RpcConnection,
    gates: Arc<Gates>,
    /// The keys of our `gate` actions as they start.
    started: mpsc::UnboundedReceiver<Value>,
}

impl<B: Backend> RpcLink<B> {
    /// The Python side's connection number.
    fn conn(&self) -> u64 {
        self.link.conn
    }

    /// The key of the next of our `gate` actions to start.
    async fn started(&mut self) -> Value {
        within::<B, _>(HANG_GUARD, "our gate action starting", self.started.recv())
            .await
            .expect("our actions are alive")
    }
}

/// `rpc.call`, failing the test if it hangs.
async fn rpc_call<B: Backend>(
    rpc: &RpcConnection,
    action: &str,
    args: Vec<Value>,
) -> Result<Value, RpcError> {
    within::<B, _>(HANG_GUARD, action, rpc.call(action, args)).await
}

/// The text of a remote error.
fn remote_text(outcome: Result<Value, RpcError>) -> String {
    match outcome {
        // The reference's wire form: the error's text as a JSON string.
        Err(RpcError::Remote(Value::String(text))) => text,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

/// The Python peer's event for a call of ours that gave `result`.
fn py_ok(conn: u64, tag: impl Into<Value>, result: Value) -> Value {
    json!({"event": "result", "conn": conn, "tag": tag.into(), "success": true, "result": result})
}

/// The Python peer's event for a call of ours that raised.
fn py_err(conn: u64, tag: impl Into<Value>, error_type: &str, error: &str) -> Value {
    json!({
        "event": "result",
        "conn": conn,
        "tag": tag.into(),
        "success": false,
        "error_type": error_type,
        "error": error,
    })
}

impl<B: Backend> Py<B> {
    /// A link whose Python side is a hat-juggler `RpcConnection` (with its
    /// default action if `python_default`) and whose our side is an
    /// `RpcConnection` with [`rust_actions`] (with ours if `rust_default`).
    async fn rpc_link(
        &mut self,
        topology: Topology,
        python_default: bool,
        rust_default: bool,
        trace: bool,
    ) -> RpcLink<B> {
        let rpc_option = json!({"default_action": python_default});
        let link = self
            .link_with(topology, IMMEDIATE, PY_IMMEDIATE, trace, rpc_option)
            .await;
        let gates = Arc::new(Gates::default());
        let (started_tx, started) = mpsc::unbounded_channel();
        let actions = rust_actions(link.rust.clone(), gates.clone(), started_tx, rust_default);
        let rpc = RpcConnection::new(link.rust.clone(), actions);
        RpcLink {
            link,
            rpc,
            gates,
            started,
        }
    }

    /// Python calls our `action` in the background; its outcome comes as
    /// a `result` event tagged `tag`.
    fn call(&mut self, link: &RpcLink<B>, tag: impl Into<Value>, action: &str, args: Value) {
        self.command(json!({
            "cmd": "call",
            "conn": link.conn(),
            "tag": tag.into(),
            "action": action,
            "args": args,
        }));
    }

    /// [`unlink`](Self::unlink), our `RpcConnection` kept until then.
    async fn unlink_rpc(&mut self, link: RpcLink<B>, connection_open: bool) {
        let RpcLink { link, rpc, .. } = link;
        self.unlink(link, connection_open).await;
        drop(rpc);
    }
}

/// hat-juggler's own test, both ways: `act` adds one, 123 gives 124.
/// Arguments and results keep their JSON values. A failing action gives the
/// caller its error text: ours an `RpcError::Remote`, Python's an
/// `Exception` with the text; an unknown action gives `"invalid action"`.
pub async fn rpc_calls_and_errors_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let values = tricky_values();
    for topology in TOPOLOGIES {
        let link = py.rpc_link(topology, false, false, false).await;
        let (rpc, conn) = (&link.rpc, link.conn());

        // We call Python.
        let result = rpc_call::<B>(rpc, "act", vec![json!(123)]).await;
        assert_eq!(result.unwrap(), json!(124), "{topology:?}");
        let echoed = rpc_call::<B>(rpc, "echo", values.clone()).await.unwrap();
        assert_eq!(echoed, Value::Array(values.clone()), "{topology:?}");
        let echoed = rpc_call::<B>(rpc, "echo", vec![]).await.unwrap();
        assert_eq!(echoed, json!([]), "{topology:?}");
        let text = remote_text(rpc_call::<B>(rpc, "fail", vec![json!("boom: čćž 🎉")]).await);
        assert_eq!(text, "boom: čćž 🎉", "{topology:?}");
        // An exception Python raises by itself: its str() is the text.
        let text = remote_text(rpc_call::<B>(rpc, "act", vec![json!("abc")]).await);
        assert_eq!(text, r#"can only concatenate str (not "int") to str"#);
        let text = remote_text(rpc_call::<B>(rpc, "no such action", vec![json!(1)]).await);
        assert_eq!(text, INVALID_ACTION, "{topology:?}");

        // Python calls us.
        py.call(&link, 0, "act", json!([123]));
        py.expect(py_ok(conn, 0, json!(124))).await;
        py.call(&link, 1, "echo", Value::Array(values.clone()));
        py.expect(py_ok(conn, 1, Value::Array(values.clone())))
            .await;
        py.call(&link, 2, "echo", json!([]));
        py.expect(py_ok(conn, 2, json!([]))).await;
        py.call(&link, 3, "fail", json!(["boom: čćž 🎉"]));
        py.expect(py_err(conn, 3, "Exception", "boom: čćž 🎉"))
            .await;
        py.call(&link, 4, "act", json!(["abc"]));
        let event = py.expect_kind("result").await;
        assert_eq!(
            (&event["tag"], &event["success"], &event["error_type"]),
            (&json!(4), &json!(false), &json!("Exception")),
            "{event}"
        );
        let text = event["error"].as_str().expect("an error text");
        assert!(
            text.starts_with(r#"invalid arguments: invalid type: string "abc""#),
            "{text}"
        );
        py.call(&link, 5, "no such action", json!([1]));
        py.expect(py_err(conn, 5, "Exception", INVALID_ACTION))
            .await;

        assert!(rpc.is_open(), "{topology:?}");
        assert!(py.python_open(&link.link).await, "{topology:?}");
        py.unlink_rpc(link, true).await;
    }
}

/// What hat-juggler writes (seen on the wire) is what SPEC §5 says: its
/// first request has id 1 and spreads `call`'s arguments into `args`; its
/// responses carry our request's id, `success`, and the result or the
/// error text.
pub async fn rpc_wire_format_is_the_references<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let message = |payload: Value| json!({"type": "MESSAGE", "payload": payload});
    for topology in TOPOLOGIES {
        let link = py.rpc_link(topology, false, false, true).await;
        let (rpc, conn) = (&link.rpc, link.conn());
        let result = rpc_call::<B>(rpc, "act", vec![json!(123)]).await;
        assert_eq!(result.unwrap(), json!(124));
        py.expect(
            json!({"event": "frame_out", "conn": conn, "frame": message(json!({
                "type": "rpc", "id": 1, "direction": "response", "success": true, "result": 124,
            }))}),
        )
        .await;
        let text = remote_text(rpc_call::<B>(rpc, "missing", vec![]).await);
        assert_eq!(text, INVALID_ACTION);
        py.expect(
            json!({"event": "frame_out", "conn": conn, "frame": message(json!({
                "type": "rpc", "id": 2, "direction": "response", "success": false,
                "result": INVALID_ACTION,
            }))}),
        )
        .await;

        py.call(&link, "a", "echo", json!([1, "two"]));
        py.expect(
            json!({"event": "frame_out", "conn": conn, "frame": message(json!({
                "type": "rpc", "id": 1, "direction": "request", "action": "echo",
                "args": [1, "two"],
            }))}),
        )
        .await;
        py.expect(py_ok(conn, "a", json!([1, "two"]))).await;
        py.call(&link, "b", "act", json!([1]));
        py.expect(
            json!({"event": "frame_out", "conn": conn, "frame": message(json!({
                "type": "rpc", "id": 2, "direction": "request", "action": "act", "args": [1],
            }))}),
        )
        .await;
        py.expect(py_ok(conn, "b", json!(2))).await;
        py.unlink_rpc(link, true).await;
    }
}

/// hat-juggler 0.5.14 has `default_action`: it gets the requested name
/// first, then the arguments, as ours does; a registered action still wins
/// on both sides.
pub async fn rpc_default_actions_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let link = py.rpc_link(topology, true, true, false).await;
        let (rpc, conn) = (&link.rpc, link.conn());

        let result = rpc_call::<B>(rpc, "other", vec![json!(1), json!("two")]).await;
        assert_eq!(
            result.unwrap(),
            json!({"default": "other", "args": [1, "two"]}),
            "{topology:?}"
        );
        let result = rpc_call::<B>(rpc, "", vec![]).await;
        assert_eq!(result.unwrap(), json!({"default": "", "args": []}));
        let result = rpc_call::<B>(rpc, "act", vec![json!(1)]).await;
        assert_eq!(result.unwrap(), json!(2), "{topology:?}");

        py.call(&link, 0, "other", json!([1, "two"]));
        py.expect(py_ok(conn, 0, json!({"name": "other", "args": [1, "two"]})))
            .await;
        py.call(&link, 1, "", json!([]));
        py.expect(py_ok(conn, 1, json!({"name": "", "args": []})))
            .await;
        py.call(&link, 2, "act", json!([1]));
        py.expect(py_ok(conn, 2, json!(2))).await;
        py.unlink_rpc(link, true).await;
    }
}

/// Several calls outstanding at once, both ways. Python's calls held by our
/// `gate` action are answered in reverse order, each to its own call, while
/// other calls go through both ways (each side numbers its own requests
/// from 1, so the ids overlap). Our calls queued behind Python's `hold` all
/// wait at once and each get their own result. Then 100 calls at once
/// each way.
pub async fn rpc_concurrent_calls_both_ways<B: Backend>() {
    const HELD: u64 = 5;
    const MANY: u64 = 100;
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let mut link = py.rpc_link(topology, false, false, false).await;
        let conn = link.conn();

        // Python's calls, held on our side.
        for key in 0..HELD {
            py.call(&link, key, "gate", json!([key]));
        }
        let mut started = Vec::new();
        for _ in 0..HELD {
            started.push(link.started().await);
        }
        started.sort_by_key(Value::as_u64);
        let keys: Vec<Value> = (0..HELD).map(|key| json!(key)).collect();
        assert_eq!(started, keys, "{topology:?}");
        py.call(&link, "beside", "act", json!([41]));
        py.expect(py_ok(conn, "beside", json!(42))).await;
        let result = rpc_call::<B>(&link.rpc, "act", vec![json!(7)]).await;
        assert_eq!(result.unwrap(), json!(8), "{topology:?}");
        for key in (0..HELD).rev() {
            link.gates.release(&json!(key));
            py.expect(py_ok(conn, key, json!(key))).await;
        }

        // Ours, queued behind Python's `hold`.
        let rpc = &link.rpc;
        let calls = futures_util::future::join(
            rpc.call("hold", vec![json!("ours")]),
            join_all((0..HELD).map(|n| rpc.call("act", vec![json!(n)]))),
        );
        let release = async {
            py.expect(json!({"event": "held", "conn": conn, "gate": "ours"}))
                .await;
            // Python answers nothing while `hold` runs.
            assert_eq!(rpc.pending_calls(), HELD as usize + 1, "{topology:?}");
            py.command(json!({"cmd": "release", "gate": "ours"}));
        };
        let ((held, acts), ()) = within::<B, _>(
            HANG_GUARD,
            "calls held by Python",
            futures_util::future::join(calls, release),
        )
        .await;
        assert_eq!(held.unwrap(), json!("ours"), "{topology:?}");
        let acts: Vec<Value> = acts.into_iter().map(Result::unwrap).collect();
        let expected: Vec<Value> = (1..=HELD).map(|n| json!(n)).collect();
        assert_eq!(acts, expected, "{topology:?}");
        assert_eq!(rpc.pending_calls(), 0);

        // Many at once, each way.
        for n in 0..MANY {
            py.call(&link, n, "act", json!([n]));
        }
        py.expect_unordered((0..MANY).map(|n| py_ok(conn, n, json!(n + 1))).collect())
            .await;
        let results = within::<B, _>(
            HANG_GUARD,
            "many calls to Python",
            join_all((0..MANY).map(|n| rpc.call("act", vec![json!(n)]))),
        )
        .await;
        let results: Vec<Value> = results.into_iter().map(Result::unwrap).collect();
        let expected: Vec<Value> = (1..=MANY).map(|n| json!(n)).collect();
        assert_eq!(results, expected, "{topology:?}");
        py.unlink_rpc(link, true).await;
    }
}

/// Plain messages pass beside the calls, unchanged, both ways: the ones
/// that look a little like rpc objects too, those sent between calls and
/// from inside actions, and those sent while a call is outstanding.
pub async fn rpc_plain_messages_pass_beside_calls<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let plain = [
        json!("rpc"),
        json!({"type": "RPC", "id": 1, "direction": "request"}),
        json!({"kind": "rpc", "id": 1, "direction": "response", "success": true}),
        json!(["rpc", 1]),
        json!({"type": "chat", "direction": "request", "action": "act", "args": [1]}),
        json!(null),
        json!({"type": ["rpc"]}),
    ];
    for topology in TOPOLOGIES {
        let mut link = py.rpc_link(topology, false, false, false).await;
        let conn = link.conn();

        // From Python, between its calls.
        for (n, message) in plain.iter().enumerate() {
            py.command(json!({"cmd": "send", "conn": conn, "value": message}));
            py.call(&link, n, "act", json!([n]));
        }
        for message in &plain {
            let received = within::<B, _>(HANG_GUARD, "message", link.rpc.receive())
                .await
                .unwrap();
            assert_eq!(received, *message, "{topology:?}");
        }
        py.expect_unordered(
            (0..plain.len())
                .map(|n| py_ok(conn, n, json!(n + 1)))
                .collect(),
        )
        .await;

        // From us, between our calls.
        for (n, message) in plain.iter().enumerate() {
            link.rpc.send(message).await.unwrap();
            let result = rpc_call::<B>(&link.rpc, "act", vec![json!(n)]).await;
            assert_eq!(result.unwrap(), json!(n + 1), "{topology:?}");
        }
        for message in &plain {
            py.expect(json!({"event": "message", "conn": conn, "value": message}))
                .await;
        }

        // From inside an action, ahead of its response.
        let result = rpc_call::<B>(&link.rpc, "notify", vec![json!({"from": "python"})]).await;
        assert_eq!(result.unwrap(), json!({"from": "python"}));
        let received = within::<B, _>(HANG_GUARD, "message", link.rpc.receive())
            .await
            .unwrap();
        assert_eq!(received, json!({"from": "python"}), "{topology:?}");
        py.call(&link, "notify", "notify", json!([{"from": "rust"}]));
        py.expect_unordered(vec![
            json!({"event": "message", "conn": conn, "value": {"from": "rust"}}),
            py_ok(conn, "notify", json!({"from": "rust"})),
        ])
        .await;

        // While Python's call waits for our action.
        py.call(&link, "held", "gate", json!(["held"]));
        assert_eq!(link.started().await, json!("held"));
        py.command(json!({"cmd": "send", "conn": conn, "value": "during"}));
        let received = within::<B, _>(HANG_GUARD, "message", link.rpc.receive())
            .await
            .unwrap();
        assert_eq!(received, json!("during"), "{topology:?}");
        link.rpc.send(&json!("during too")).await.unwrap();
        py.expect(json!({"event": "message", "conn": conn, "value": "during too"}))
            .await;
        link.gates.release(&json!("held"));
        py.expect(py_ok(conn, "held", json!("held"))).await;
        py.unlink_rpc(link, true).await;
    }
}

/// Calls waiting when the connection closes fail on both sides: ours with
/// `RpcError::Closed`, Python's with `ConnectionError`; so do calls made
/// afterwards.
pub async fn rpc_pending_calls_fail_when_closed<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        // Python closes while our call waits on its `hold`.
        let link = py.rpc_link(topology, false, false, false).await;
        let conn = link.conn();
        let close = async {
            py.expect(json!({"event": "held", "conn": conn, "gate": "never"}))
                .await;
            py.command(json!({"cmd": "close", "conn": conn}));
        };
        let (outcome, ()) = within::<B, _>(
            HANG_GUARD,
            "our call failing",
            futures_util::future::join(link.rpc.call("hold", vec![json!("never")]), close),
        )
        .await;
        assert!(
            matches!(outcome, Err(RpcError::Closed)),
            "{topology:?}: {outcome:?}"
        );
        py.expect(json!({"event": "closed", "conn": conn})).await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rpc.wait_closed()).await;
        assert_eq!(reason, CloseReason::Remote, "{topology:?}");
        let outcome = link.rpc.call("act", vec![json!(1)]).await;
        assert!(matches!(outcome, Err(RpcError::Closed)), "{outcome:?}");
        py.call(&link, "after", "act", json!([1]));
        py.expect(py_err(conn, "after", "ConnectionError", ""))
            .await;
        py.unlink_rpc(link, false).await;

        // We close while Python's call waits on our `gate`.
        let mut link = py.rpc_link(topology, false, false, false).await;
        let conn = link.conn();
        py.call(&link, "pending", "gate", json!(["never"]));
        assert_eq!(link.started().await, json!("never"));
        link.rpc.close();
        py.expect_unordered(vec![
            py_err(conn, "pending", "ConnectionError", ""),
            json!({"event": "closed", "conn": conn}),
        ])
        .await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rpc.wait_closed()).await;
        assert_eq!(reason, CloseReason::Local, "{topology:?}");
        py.call(&link, "after", "act", json!([1]));
        py.expect(py_err(conn, "after", "ConnectionError", ""))
            .await;
        py.unlink_rpc(link, false).await;
    }
}
