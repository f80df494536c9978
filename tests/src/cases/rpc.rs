//! The RPC suite (SPEC §5): `juggler-rpc` over real sockets on 127.0.0.1,
//! written once for every runtime.
//!
//! Where a test needs an action to be slow, the action waits for the test
//! to release it; nothing waits on a sleep.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use juggler_driver::{
    ClientOptions, CloseReason, Connection, ConnectionOptions, Error, ProtocolError, ServerOptions,
};
use juggler_rpc::{Actions, RpcConnection, RpcError, RpcOptions};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::support::backend::{listen, pair, within, Backend, TestServer, HANG_GUARD, IMMEDIATE};

/// `act` adds one to its only argument, the raw JSON way.
async fn raw_act(args: Vec<Value>) -> Result<Value, String> {
    match args.as_slice() {
        [Value::Number(n)] => n
            .as_i64()
            .and_then(|n| n.checked_add(1))
            .map(Value::from)
            .ok_or_else(|| format!("cannot add one to {n}")),
        other => Err(format!("act takes one integer, not {other:?}")),
    }
}

/// `act` adds one to its only argument, the serde way.
fn typed_act() -> Actions {
    Actions::new().typed_action("act", |(x,): (i64,)| async move {
        x.checked_add(1).ok_or("overflow")
    })
}

/// `slow` signals `started`, then waits for `release`; `fast` echoes its
/// first argument.
fn slow_and_fast(release: Arc<Notify>, started: mpsc::UnboundedSender<()>) -> Actions {
    Actions::new()
        .action("slow", move |_args| {
            let release = release.clone();
            let started = started.clone();
            async move {
                let _ = started.send(());
                release.notified().await;
                Ok::<_, String>(json!("slow done"))
            }
        })
        .action("fast", |args: Vec<Value>| async move {
            Ok::<_, String>(args.into_iter().next().unwrap_or(Value::Null))
        })
}

fn remote_text(result: Result<Value, RpcError>) -> String {
    match result {
        // The reference's wire form: the error's text as a JSON string.
        Err(RpcError::Remote(Value::String(text))) => text,
        other => panic!("expected a remote error, got {other:?}"),
    }
}

fn assert_closed(result: Result<Value, RpcError>) {
    assert!(matches!(result, Err(RpcError::Closed)), "{result:?}");
}

/// `rpc.call`, failing the test if it hangs.
async fn call<B: Backend>(
    rpc: &RpcConnection,
    action: &str,
    args: Vec<Value>,
) -> Result<Value, RpcError> {
    within::<B, _>(HANG_GUARD, action, rpc.call(action, args)).await
}

/// `rpc.receive`, failing the test if it hangs.
async fn receive<B: Backend>(rpc: &RpcConnection) -> Result<Value, Error> {
    within::<B, _>(HANG_GUARD, "receive", rpc.receive()).await
}

/// Starts `call` on its own task; its result arrives on the receiver.
fn spawn_call<B: Backend>(
    rpc: &RpcConnection,
    action: &'static str,
    args: Vec<Value>,
) -> oneshot::Receiver<Result<Value, RpcError>> {
    let (done, result) = oneshot::channel();
    let rpc = rpc.clone();
    B::spawn(async move {
        let _ = done.send(rpc.call(action, args).await);
    });
    result
}

/// The reference test: `act` adds one; 123 gives 124 client to server and
/// server to client; a bad argument type and an unknown action give remote
/// errors. The server side uses a typed action, the client side a raw one.
pub async fn reference_call_both_ways<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let server_rpc = RpcConnection::new(server_side, typed_act());
    let client_rpc = RpcConnection::new(client, Actions::new().action("act", raw_act));
    for (caller, callee) in [(&client_rpc, "server"), (&server_rpc, "client")] {
        let result = within::<B, _>(HANG_GUARD, "act(123)", caller.call("act", vec![json!(123)]))
            .await
            .unwrap();
        assert_eq!(result, json!(124), "calling the {callee}");

        let typed: i64 = within::<B, _>(HANG_GUARD, "typed call", caller.call_typed("act", (123,)))
            .await
            .unwrap();
        assert_eq!(typed, 124);

        let text = remote_text(call::<B>(caller, "act", vec![json!("abc")]).await);
        assert!(text.contains("abc"), "{callee}: {text:?}");

        let text = remote_text(call::<B>(caller, "no such action", vec![json!(1)]).await);
        assert_eq!(text, "invalid action", "calling the {callee}");
    }
    assert!(client_rpc.is_open() && server_rpc.is_open());
    server.close().await;
}

/// A default action gets requests for unregistered names, the name first.
pub async fn default_action_gets_the_name_first<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let actions = typed_act().default_action(|name: String, args: Vec<Value>| async move {
        Ok::<_, String>(json!({"name": name, "args": args}))
    });
    let _server_rpc = RpcConnection::new(server_side, actions);
    let client_rpc = RpcConnection::new(client, Actions::new());
    let result = within::<B, _>(
        HANG_GUARD,
        "default action",
        client_rpc.call("other", vec![json!(1), json!("two")]),
    )
    .await
    .unwrap();
    assert_eq!(result, json!({"name": "other", "args": [1, "two"]}));
    // A registered action still wins.
    assert_eq!(
        call::<B>(&client_rpc, "act", vec![json!(1)]).await.unwrap(),
        json!(2)
    );
    server.close().await;
}

/// The exact wire shapes, ids 1, 2, ... per connection, an ignored
/// response with an unknown id, and a non-string error result: an
/// `RpcConnection` against a raw connection that plays the peer.
pub async fn wire_format_and_ids<B: Backend>() {
    let (server, raw, client) = pair::<B>(IMMEDIATE).await;
    let rpc = RpcConnection::new(client, Actions::new().action("act", raw_act));

    for (id, args, reply) in [
        (1, json!([123]), json!({"success": true, "result": 124})),
        (
            2,
            json!([]),
            json!({"success": false, "result": {"code": 7}}),
        ),
        (
            3,
            json!(["x", null]),
            json!({"success": false, "result": "bad"}),
        ),
    ] {
        let call = spawn_call::<B>(&rpc, "act", serde_json::from_value(args.clone()).unwrap());
        let request = within::<B, _>(HANG_GUARD, "the request", raw.receive())
            .await
            .unwrap();
        assert_eq!(
            request,
            json!({"type": "rpc", "id": id, "direction": "request", "action": "act", "args": args})
        );
        // A response to no call is ignored.
        let stray = json!({"type": "rpc", "id": id + 1000, "direction": "response",
                           "success": true, "result": "stray"});
        raw.send(&stray).await.unwrap();
        let mut response = json!({"type": "rpc", "id": id, "direction": "response"});
        response
            .as_object_mut()
            .unwrap()
            .extend(reply.as_object().unwrap().clone());
        raw.send(&response).await.unwrap();
        let result = within::<B, _>(HANG_GUARD, "the response", call)
            .await
            .unwrap();
        assert_eq!(rpc.pending_calls(), 0);
        match id {
            1 => assert_eq!(result.unwrap(), json!(124)),
            // A structured error keeps its JSON.
            2 => match result {
                Err(RpcError::Remote(error)) => assert_eq!(error, json!({"code": 7})),
                other => panic!("expected a remote error, got {other:?}"),
            },
            _ => assert_eq!(remote_text(result), "bad"),
        }
    }

    // Requests from the peer are answered with the same id, exactly so.
    raw.send(
        &json!({"type": "rpc", "id": 77, "direction": "request", "action": "act", "args": [1]}),
    )
    .await
    .unwrap();
    raw.send(
        &json!({"type": "rpc", "id": -5, "direction": "request", "action": "nope", "args": []}),
    )
    .await
    .unwrap();
    let mut responses = Vec::new();
    for _ in 0..2 {
        responses.push(
            within::<B, _>(HANG_GUARD, "a response", raw.receive())
                .await
                .unwrap(),
        );
    }
    responses.sort_by_key(|response| response["id"].as_i64());
    assert_eq!(
        responses,
        [
            json!({"type": "rpc", "id": -5, "direction": "response", "success": false, "result": "invalid action"}),
            json!({"type": "rpc", "id": 77, "direction": "response", "success": true, "result": 2}),
        ]
    );
    assert!(rpc.is_open());
    server.close().await;
}

/// 1000 calls outstanding at once in each direction, each answered with
/// its own result.
pub async fn thousand_concurrent_calls<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let server_rpc = RpcConnection::new(server_side, typed_act());
    let client_rpc = RpcConnection::new(client, Actions::new().action("act", raw_act));
    let calls = |rpc: &RpcConnection, offset: i64| {
        let rpc = rpc.clone();
        async move {
            let results = join_all((0..1000).map(|n| {
                let rpc = rpc.clone();
                async move { (n, rpc.call("act", vec![json!(offset + n)]).await) }
            }))
            .await;
            for (n, result) in results {
                assert_eq!(result.unwrap(), json!(offset + n + 1));
            }
        }
    };
    within::<B, _>(
        HANG_GUARD,
        "2000 calls",
        futures_util::future::join(calls(&client_rpc, 0), calls(&server_rpc, 1_000_000)),
    )
    .await;
    server.close().await;
}

/// A slow action holds up neither other requests nor responses, in both
/// directions.
pub async fn slow_action_blocks_nothing<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let (server_release, client_release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (server_started_tx, mut server_started) = mpsc::unbounded_channel();
    let (client_started_tx, mut client_started) = mpsc::unbounded_channel();
    let server_rpc = RpcConnection::new(
        server_side,
        slow_and_fast(server_release.clone(), server_started_tx),
    );
    let client_rpc = RpcConnection::new(
        client,
        slow_and_fast(client_release.clone(), client_started_tx),
    );
    let cases = [
        (
            &client_rpc,
            &server_rpc,
            &server_release,
            &mut server_started,
        ),
        (
            &server_rpc,
            &client_rpc,
            &client_release,
            &mut client_started,
        ),
    ];
    for (caller, callee, release, started) in cases {
        let mut slow = spawn_call::<B>(caller, "slow", vec![]);
        within::<B, _>(HANG_GUARD, "slow action starting", started.recv())
            .await
            .unwrap();
        // Another request to the busy side is answered...
        let fast = within::<B, _>(HANG_GUARD, "fast call", caller.call("fast", vec![json!(1)]))
            .await
            .unwrap();
        assert_eq!(fast, json!(1));
        // ...and so is a request from the busy side, whose response must
        // get through too.
        let back = within::<B, _>(HANG_GUARD, "call back", callee.call("fast", vec![json!(2)]))
            .await
            .unwrap();
        assert_eq!(back, json!(2));
        assert!(slow.try_recv().is_err(), "the slow call is still running");
        release.notify_one();
        let result = within::<B, _>(HANG_GUARD, "slow call", slow).await.unwrap();
        assert_eq!(result.unwrap(), json!("slow done"));
    }
    server.close().await;
}

/// Calls pending when the peer closes fail with `Closed`, as do calls made
/// after it, `receive`, and calls pending at a local close; actions still
/// running on a closed connection are cancelled.
pub async fn pending_calls_fail_on_close<B: Backend>() {
    for peer_closes in [true, false] {
        let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
        let (started_tx, mut started) = mpsc::unbounded_channel();
        let (dropped_tx, mut dropped) = mpsc::unbounded_channel::<()>();
        let actions = Actions::new().action("never", move |_args| {
            let started = started_tx.clone();
            let on_drop = DropSignal(dropped_tx.clone());
            async move {
                let _on_drop = on_drop;
                let _ = started.send(());
                std::future::pending::<()>().await;
                Ok::<Value, String>(Value::Null)
            }
        });
        let server_rpc = RpcConnection::new(server_side, actions);
        let client_rpc = RpcConnection::new(client, Actions::new());
        let calls: Vec<_> = (0..3)
            .map(|_| spawn_call::<B>(&client_rpc, "never", vec![]))
            .collect();
        for _ in 0..3 {
            within::<B, _>(HANG_GUARD, "actions starting", started.recv())
                .await
                .unwrap();
        }
        if peer_closes {
            server_rpc.close();
        } else {
            client_rpc.close();
        }
        for call in calls {
            assert_closed(
                within::<B, _>(HANG_GUARD, "pending call failing", call)
                    .await
                    .unwrap(),
            );
        }
        for _ in 0..3 {
            within::<B, _>(HANG_GUARD, "actions cancelled", dropped.recv())
                .await
                .expect("every running action is dropped");
        }
        within::<B, _>(HANG_GUARD, "client closed", client_rpc.wait_closed()).await;
        assert_closed(call::<B>(&client_rpc, "never", vec![]).await);
        assert!(matches!(
            receive::<B>(&client_rpc).await,
            Err(Error::Closed)
        ));
        let server_receive =
            within::<B, _>(HANG_GUARD, "server receive", server_rpc.receive()).await;
        assert!(matches!(server_receive, Err(Error::Closed)));
        server.close().await;
    }
}

struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A per-call timeout gives `Timeout`; the late response is ignored and
/// later calls work.
pub async fn call_timeout_ignores_late_response<B: Backend>() {
    let (server, raw, client) = pair::<B>(IMMEDIATE).await;
    let rpc = RpcConnection::new(client, Actions::new());
    let result = within::<B, _>(
        HANG_GUARD,
        "timeout",
        rpc.call_with_timeout("slow", vec![], Duration::from_millis(50)),
    )
    .await;
    assert!(matches!(result, Err(RpcError::Timeout)), "{result:?}");
    assert_eq!(
        rpc.pending_calls(),
        0,
        "the timed-out call is no longer pending"
    );
    let request = within::<B, _>(HANG_GUARD, "the request", raw.receive())
        .await
        .unwrap();
    assert_eq!(request["id"], json!(1));

    // The late response, then a marker: once the marker is received the
    // late response has been handled.
    raw.send(&json!({"type": "rpc", "id": 1, "direction": "response", "success": true, "result": "late"}))
        .await
        .unwrap();
    raw.send(&json!("marker")).await.unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "marker", rpc.receive())
            .await
            .unwrap(),
        json!("marker")
    );
    assert!(rpc.is_open());

    // A later call, with a timeout that does not fire, gets its own answer.
    let call = {
        let rpc = rpc.clone();
        let (done, result) = oneshot::channel();
        B::spawn(async move {
            let _ = done.send(
                rpc.call_with_timeout("fast", vec![json!(5)], Duration::from_secs(3600))
                    .await,
            );
        });
        result
    };
    let request = within::<B, _>(HANG_GUARD, "second request", raw.receive())
        .await
        .unwrap();
    assert_eq!(request["id"], json!(2));
    raw.send(
        &json!({"type": "rpc", "id": 2, "direction": "response", "success": true, "result": 5}),
    )
    .await
    .unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "second response", call)
            .await
            .unwrap()
            .unwrap(),
        json!(5)
    );
    server.close().await;
}

/// Plain messages, objects that look almost like rpc included, pass
/// through to `receive` unchanged and in order, both ways, around calls.
pub async fn plain_messages_pass_through<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let server_rpc = RpcConnection::new(server_side, typed_act());
    let client_rpc = RpcConnection::new(client, typed_act());
    let messages = [
        json!(null),
        json!(0),
        json!(0.0),
        json!("rpc"),
        json!([{"type": "rpc", "id": 1}]),
        json!({"type": "RPC", "id": 1, "direction": "request"}),
        json!({"type": "other", "id": 1, "direction": "response"}),
        json!({"id": 1, "direction": "request", "action": "act", "args": [1]}),
        json!({"a": {"b": [1, 2, 3]}}),
    ];
    for (from, to) in [(&client_rpc, &server_rpc), (&server_rpc, &client_rpc)] {
        for (n, message) in messages.iter().enumerate() {
            from.send(message).await.unwrap();
            if n % 3 == 0 {
                // Calls in both directions between the messages.
                assert_eq!(
                    call::<B>(from, "act", vec![json!(n)]).await.unwrap(),
                    json!(n + 1)
                );
                assert_eq!(
                    call::<B>(to, "act", vec![json!(n)]).await.unwrap(),
                    json!(n + 1)
                );
            }
        }
        // Through the rpc connection's own receive: its dispatch task owns
        // the connection's message queue.
        for message in &messages {
            let received = within::<B, _>(HANG_GUARD, "message", to.receive())
                .await
                .unwrap();
            assert_eq!(received, *message);
            assert_eq!(received.is_f64(), message.is_f64());
        }
    }
    server.close().await;
}

/// The data API passes through: local and remote data, change callbacks,
/// remote changes, update and flush.
pub async fn data_api_passes_through<B: Backend>() {
    let (server, server_side, client) = pair::<B>(None).await;
    let server_rpc = RpcConnection::new(server_side, Actions::new());
    let client_rpc = RpcConnection::new(client, Actions::new());
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let _registration = {
        let observed = server_rpc.clone();
        server_rpc.register_change_cb(move || {
            let _ = seen_tx.send((*observed.remote_data()).clone());
        })
    };
    let mut changes = server_rpc.remote_changes();
    client_rpc.set_local_data(json!({"a": 1})).unwrap();
    assert_eq!(*client_rpc.local_data(), json!({"a": 1}));
    client_rpc
        .update_local_data(vec![serde_json::from_value(
            json!({"op": "add", "path": "/b", "value": 2}),
        )
        .unwrap()])
        .unwrap();
    within::<B, _>(HANG_GUARD, "flush", client_rpc.flush_local_data())
        .await
        .unwrap();
    let data = within::<B, _>(HANG_GUARD, "data change", changes.changed())
        .await
        .unwrap();
    assert_eq!(*data, json!({"a": 1, "b": 2}));
    assert_eq!(*server_rpc.remote_data(), json!({"a": 1, "b": 2}));
    assert_eq!(
        within::<B, _>(HANG_GUARD, "callback", seen.recv()).await,
        Some(json!({"a": 1, "b": 2}))
    );
    server.close().await;
}

/// A malformed rpc object is a protocol error: the `RpcConnection` closes
/// with `InvalidMessage` (the peer sees the close), messages that came
/// before it are still received, and pending calls fail.
pub async fn malformed_rpc_closes_the_connection<B: Backend>() {
    for (malformed, expected) in [
        (
            json!({"type": "rpc", "id": "x", "direction": "request"}),
            "\"id\" is not an integer",
        ),
        (
            json!({"type": "rpc", "direction": "response", "success": true, "result": 1}),
            "no \"id\"",
        ),
        (
            json!({"type": "rpc", "id": 1, "direction": "sideways"}),
            "sideways",
        ),
        (
            json!({"type": "rpc", "id": 1, "direction": "request", "action": "act", "args": 1}),
            "\"args\" is not an array",
        ),
        (
            json!({"type": "rpc", "id": 1, "direction": "response", "result": 1}),
            "no \"success\"",
        ),
    ] {
        let (server, raw, client) = pair::<B>(IMMEDIATE).await;
        let rpc = RpcConnection::new(client, typed_act());
        let pending = spawn_call::<B>(&rpc, "act", vec![json!(1)]);
        within::<B, _>(HANG_GUARD, "the request", raw.receive())
            .await
            .unwrap();
        raw.send(&json!("before")).await.unwrap();
        raw.send(&malformed).await.unwrap();

        let reason = within::<B, _>(HANG_GUARD, "rpc side closing", rpc.wait_closed()).await;
        match &reason {
            CloseReason::Protocol(ProtocolError::InvalidMessage(text)) => {
                assert!(text.contains(expected), "{malformed}: {text:?}")
            }
            other => panic!("{malformed}: closed with {other:?}"),
        }
        assert_eq!(rpc.close_reason(), Some(reason));
        assert!(!rpc.is_open());
        let peer_reason =
            within::<B, _>(HANG_GUARD, "peer seeing the close", raw.wait_closed()).await;
        assert_eq!(peer_reason, CloseReason::Remote, "{malformed}");

        assert_closed(
            within::<B, _>(HANG_GUARD, "pending call", pending)
                .await
                .unwrap(),
        );
        assert_eq!(receive::<B>(&rpc).await.unwrap(), json!("before"));
        assert!(matches!(receive::<B>(&rpc).await, Err(Error::Closed)));
        server.close().await;
    }
}

/// Requests beyond `max_concurrent_requests` are refused at once with a
/// clear error; once the running one ends, calls are served again.
pub async fn too_many_concurrent_requests_are_refused<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let release = Arc::new(Notify::new());
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let _server_rpc = RpcConnection::with_options(
        server_side,
        slow_and_fast(release.clone(), started_tx),
        RpcOptions::default().max_concurrent_requests(1),
    );
    let client_rpc = RpcConnection::new(client, Actions::new());
    let slow = spawn_call::<B>(&client_rpc, "slow", vec![]);
    within::<B, _>(HANG_GUARD, "slow action starting", started.recv())
        .await
        .unwrap();
    let text = remote_text(call::<B>(&client_rpc, "fast", vec![json!(1)]).await);
    assert_eq!(text, juggler_rpc::TOO_MANY_REQUESTS);
    release.notify_one();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "slow call", slow)
            .await
            .unwrap()
            .unwrap(),
        json!("slow done")
    );
    assert_eq!(
        call::<B>(&client_rpc, "fast", vec![json!(1)])
            .await
            .unwrap(),
        json!(1)
    );
    server.close().await;
}

/// What the rpc layer holds of the peer's bytes (plain messages the
/// application has not received yet, the arguments of requests still
/// running) counts against the connection's byte budget: a peer flooding
/// both is no longer read once the budget is full, and when the
/// application catches up, every call is answered and every message
/// arrives, in order.
pub async fn held_requests_and_messages_count_against_the_budget<B: Backend>() {
    const BUDGET: usize = 256 << 10;
    const ARGUMENT: usize = 30_000;
    const CALLS: usize = 40;
    const MESSAGES: usize = 40;
    // Each running request holds its argument: no more than this many can
    // run before the budget stops the reader (one read may pass it).
    const MAX_RUNNING: usize = BUDGET / ARGUMENT + 2;
    let options = ServerOptions::default()
        .max_buffered_bytes(Some(BUDGET))
        .connection(
            ConnectionOptions::default()
                .autoflush_delay(IMMEDIATE)
                .max_receive_bytes(BUDGET),
        );
    let (server, mut incoming) = listen::<B>(options).await;
    let client = B::connect(
        &server.url(),
        ClientOptions::default().autoflush_delay(IMMEDIATE),
    )
    .await
    .unwrap();
    let server_side = incoming.next().await;
    let (gate, gate_rx) = tokio::sync::watch::channel(false);
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = running.clone();
    let actions = Actions::new().action("held", move |args: Vec<Value>| {
        let mut gate = gate_rx.clone();
        started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok::<_, String>(json!(args[0].as_str().map(str::len)))
        }
    });
    let server_rpc = RpcConnection::new(server_side, actions);
    let client_rpc = RpcConnection::new(client, Actions::new());
    let filler = "x".repeat(ARGUMENT);
    let calls: Vec<_> = (0..CALLS)
        .map(|_| spawn_call::<B>(&client_rpc, "held", vec![json!(filler)]))
        .collect();
    let sender = client_rpc.clone();
    B::spawn(async move {
        for n in 0..MESSAGES {
            sender.send(&json!([n, filler])).await.unwrap();
        }
    });
    let budget = server.memory_budget();
    within::<B, _>(HANG_GUARD, "the budget filling", budget.until_full()).await;
    let bound = BUDGET + (64 << 10);
    assert!(budget.peak() <= bound, "held {} > {bound}", budget.peak());
    let ran = running.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        ran <= MAX_RUNNING,
        "{ran} requests ran on a {BUDGET}-byte budget"
    );

    gate.send_replace(true);
    for n in 0..MESSAGES {
        let message = receive::<B>(&server_rpc).await.unwrap();
        assert_eq!(message[0], n);
    }
    for call in calls {
        let answer = within::<B, _>(HANG_GUARD, "a held call", call)
            .await
            .unwrap();
        assert_eq!(answer.unwrap(), json!(ARGUMENT));
    }
    assert!(budget.peak() <= bound, "held {} > {bound}", budget.peak());
    server.close().await;
}

/// An action that panics answers a failure; the connection goes on.
pub async fn panicking_action_answers_failure<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    async fn boom(_args: Vec<Value>) -> Result<Value, String> {
        panic!("boom (an expected panic in a test)")
    }
    let actions = typed_act().action("boom", boom);
    let _server_rpc = RpcConnection::new(server_side, actions);
    let client_rpc = RpcConnection::new(client, Actions::new());
    let text = remote_text(
        within::<B, _>(
            HANG_GUARD,
            "panicking call",
            client_rpc.call("boom", vec![]),
        )
        .await,
    );
    assert_eq!(text, juggler_rpc::ACTION_PANICKED);
    assert_eq!(
        call::<B>(&client_rpc, "act", vec![json!(1)]).await.unwrap(),
        json!(2)
    );
    server.close().await;
}

/// Dropping the last `RpcConnection` clone closes the connection, although
/// its dispatch task holds the connection.
pub async fn dropping_the_last_rpc_handle_closes<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let rpc = RpcConnection::new(client, typed_act());
    let clone = rpc.clone();
    drop(rpc);
    assert!(clone.is_open(), "a clone keeps it open");
    drop(clone);
    let reason = within::<B, _>(HANG_GUARD, "server side closing", server_side.wait_closed()).await;
    assert_eq!(reason, CloseReason::Remote);
    server.close().await;
}

/// A `Connection` handle kept beside the `RpcConnection` shares its data.
pub async fn connection_accessor_is_the_same_connection<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let rpc = RpcConnection::new(client, Actions::new());
    let connection: Connection = rpc.connection().clone();
    connection
        .set_local_data(json!("via the connection"))
        .unwrap();
    assert_eq!(*rpc.local_data(), json!("via the connection"));
    let mut changes = server_side.remote_changes();
    assert_eq!(
        *within::<B, _>(HANG_GUARD, "data", changes.changed())
            .await
            .unwrap(),
        json!("via the connection")
    );
    rpc.close();
    assert!(!connection.is_open());
    server.close().await;
}

/// Declares one `#[test]` per RPC case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! rpc_tests {
    ($backend:ty) => {
        $crate::rpc_tests!(@cases $backend;
            reference_call_both_ways,
            default_action_gets_the_name_first,
            wire_format_and_ids,
            thousand_concurrent_calls,
            slow_action_blocks_nothing,
            pending_calls_fail_on_close,
            call_timeout_ignores_late_response,
            plain_messages_pass_through,
            data_api_passes_through,
            malformed_rpc_closes_the_connection,
            too_many_concurrent_requests_are_refused,
            panicking_action_answers_failure,
            dropping_the_last_rpc_handle_closes,
            connection_accessor_is_the_same_connection,
            held_requests_and_messages_count_against_the_budget,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::rpc::$case::<$backend>());
            }
        )*
    };
}
