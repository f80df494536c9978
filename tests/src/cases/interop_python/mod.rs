//! Interop with the pinned Python reference peer (hat-juggler 0.5.14), in
//! both directions: our server with a Python client, and a Python server
//! with our client. Each case starts one `tests/python/peer.py` process
//! (see [`crate::python`]) and drives it with JSON commands, reading its
//! JSON events.
//!
//! Without the peer (no `python3`, pip failing) each case prints a
//! `SKIPPED:` line and passes, except under `CI=true`, where it fails.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use juggler_driver::{
    ClientOptions, CloseReason, Connection, Error, PatchOperation, ServerOptions,
};
use juggler_rpc::{Actions, RpcConnection, RpcError};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

use crate::backend::{listen, record_changes, within, Backend, TestServer, HANG_GUARD, IMMEDIATE};
use crate::conformance::{data_sequences, message_sequences};
use crate::python::{start_peer, PythonPeer};

/// A delay that three back-to-back sets never outlast, even on a loaded
/// machine where a thread may wait a long while for a core.
const DELAYED: Option<Duration> = Some(Duration::from_secs(1));
/// Long enough never to fire during a case.
const NEVER: Option<Duration> = Some(Duration::from_secs(3600));
const MANUAL: Option<Duration> = None;
/// The Python peer's autoflush delays, in seconds; `None` is manual.
const PY_IMMEDIATE: Option<f64> = Some(0.0);
const PY_DELAYED: Option<f64> = Some(1.0);
const PY_MANUAL: Option<f64> = None;

/// Which side listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// Our server, the Python client.
    RustServer,
    /// The Python server, our client.
    PythonServer,
}

const TOPOLOGIES: [Topology; 2] = [Topology::RustServer, Topology::PythonServer];

/// Values whose encoding is easy to get wrong: unicode, escapes, keys that
/// need JSON Pointer escaping, floats next to integers, the i64/u64 edges.
fn tricky_values() -> Vec<Value> {
    vec![
        json!("čćžšđ ÄÖÜß 日本語 עברית 🎉 \u{10FFFF}"),
        json!("\"quoted\" back\\slash /slash \u{8}\u{c}\n\r\t \u{0} \u{1f} \u{7f} \u{2028}"),
        json!({"a/b": 1, "m~n": 2, "": 3, "~1": 4, "/": 5, "ü 🎉": 6, "\"": 7}),
        json!([0, -1, 1, i64::MIN, i64::MAX, u64::MAX, i64::MAX as u64 + 1]),
        json!([
            0.5,
            -2.5e-10,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN,
            0.1,
            1.0,
            -3.0,
            1e-7
        ]),
        json!({"int": 1, "float": 1.0, "zero": 0, "fzero": 0.0, "false": false, "null": null}),
        json!({"deep": {"er": {"still": [[[{"x": [1, [2, [3, {"y": "z"}]]]}]]]}}}),
        json!([[], {}, "", [[]], [{}], {"": {}}, {"": []}]),
        json!(1),
        json!(1.0),
        json!(true),
        json!({"n": 1}),
        json!({"n": 1.0}),
        json!({"n": true}),
        json!({"n": 1}),
        json!({"a/b": {"m~n": [1, 2.0]}}),
        json!({"x~y/z": {"m~n": [1, 2.0]}}),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(-0.5),
        json!(""),
    ]
}

/// Steps whose Python diff is a `move` (checked on the wire), then
/// some whose diff is not, to come back.
fn move_steps() -> Vec<(Value, bool)> {
    let list = json!([[5, 6], [1, 2], [3, 4]]);
    vec![
        (json!({"a": 1, "b": {"c": [1, 2, 3]}, "d": "x"}), false),
        (json!({"z": 1, "b": {"c": [1, 2, 3]}, "d": "x"}), true),
        (json!({"z": 1, "b": {"c": [3, 1, 2]}, "d": "x"}), true),
        (json!({"z": 1, "b": {"e": [3, 1, 2]}, "d": "x"}), true),
        (json!({"z": 1, "b": {}, "d": "x", "e": [3, 1, 2]}), true),
        (
            json!({"z": 1, "e": [3, 1, 2], "list": [[1, 2], [3, 4], [5, 6]]}),
            false,
        ),
        (json!({"z": 1, "e": [3, 1, 2], "list": list}), true),
        (
            json!({"list": list, "a/b": {"m~n": [1, {"k": "v"}]}}),
            false,
        ),
        (
            json!({"list": list, "x~y/z": {"m~n": [1, {"k": "v"}]}}),
            true,
        ),
        (json!([1, 2, 3, 4, 5, 6, 7, 8]), false),
        (json!([8, 7, 6, 5, 4, 3, 2, 1]), true),
        (json!([3, 4, 5, 6, 7, 8, 1, 2]), true),
    ]
}

/// A deterministic walk of renames and reorderings: each value differs from
/// the one before it.
fn shuffle_steps(count: usize) -> Vec<Value> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % below as u64) as usize
    };
    let mut keys: Vec<String> = vec!["k0".into(), "k1".into(), "k2".into()];
    let mut lists: Vec<Vec<Value>> = vec![
        (0..7).map(|n| json!(n)).collect(),
        (1..=4).map(|id| json!({"id": id, "tag": [id]})).collect(),
        ["a", "b", "c", "d", "e"].iter().map(|s| json!(s)).collect(),
    ];
    let mut fresh = 3;
    let mut steps: Vec<Value> = Vec::new();
    while steps.len() < count {
        let which = random(lists.len());
        match random(5) {
            0 => {
                keys[which] = format!("k{fresh}");
                fresh += 1;
            }
            1 => {
                let by = random(lists[which].len().max(1));
                lists[which].rotate_left(by);
            }
            2 => {
                let len = lists[which].len();
                if len >= 2 {
                    let (i, j) = (random(len), random(len));
                    lists[which].swap(i, j);
                }
            }
            3 => {
                let to = random(lists.len());
                if !lists[which].is_empty() {
                    let at = random(lists[which].len());
                    let item = lists[which].remove(at);
                    let into = random(lists[to].len() + 1);
                    lists[to].insert(into, item);
                }
            }
            _ => lists[which].reverse(),
        }
        let value: Value = keys
            .iter()
            .zip(&lists)
            .map(|(key, list)| (key.clone(), Value::Array(list.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
        if steps.last() != Some(&value) {
            steps.push(value);
        }
    }
    steps
}

/// A string of `bytes` bytes whose every position matters.
fn big_string(bytes: usize) -> Value {
    let pattern = "0123456789abcdefghijklmnopqrstuv";
    let mut text = pattern.repeat(bytes / pattern.len() + 1);
    text.truncate(bytes);
    Value::String(text)
}

/// Asserts that a big value arrived whole, without printing megabytes.
fn assert_same_big(received: &Value, sent: &Value, what: &str) {
    assert!(
        received == sent,
        "{what}: received a different value ({} bytes of JSON, sent {})",
        received.to_string().len(),
        sent.to_string().len()
    );
}

/// One connection between us and the Python peer.
struct Link<B: Backend> {
    /// Our side.
    rust: Connection,
    /// The Python side's number.
    conn: u64,
    /// Our server, when we listen.
    rust_server: Option<B::Server>,
    /// The Python server's number, when Python listens.
    python_server: Option<u64>,
}

/// The Python peer of one case.
struct Py<B> {
    peer: PythonPeer,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Py<B> {
    /// The peer, or `None` (after a loud `SKIPPED:` line) if it cannot be
    /// had outside CI.
    fn start() -> Option<Self> {
        start_peer().map(|peer| Py {
            peer,
            _backend: PhantomData,
        })
    }

    fn command(&mut self, command: Value) {
        self.peer.command(&command);
    }

    async fn event(&mut self) -> Value {
        within::<B, _>(
            HANG_GUARD,
            "the Python peer's next event",
            self.peer.next_event(),
        )
        .await
    }

    /// The next event is `expected`, exactly.
    async fn expect(&mut self, expected: Value) {
        let event = self.event().await;
        assert_eq!(event, expected, "the Python peer's next event");
    }

    /// The next events are `expected`, in any order.
    async fn expect_unordered(&mut self, mut expected: Vec<Value>) {
        while !expected.is_empty() {
            let event = self.event().await;
            let Some(at) = expected.iter().position(|e| *e == event) else {
                panic!("unexpected event {event} from the Python peer; expected {expected:?}");
            };
            expected.remove(at);
        }
    }

    /// The next event is of kind `name`; returns it.
    async fn expect_kind(&mut self, name: &str) -> Value {
        let event = self.event().await;
        assert_eq!(
            event["event"], name,
            "the Python peer's next event: {event}"
        );
        event
    }

    /// Opens a connection. With `trace` the peer reports every frame it
    /// writes as a `frame_out` event.
    async fn link(
        &mut self,
        topology: Topology,
        rust_delay: Option<Duration>,
        python_delay: Option<f64>,
        trace: bool,
    ) -> Link<B> {
        self.link_with(topology, rust_delay, python_delay, trace, Value::Null)
            .await
    }

    /// [`link`](Self::link), with the peer's `rpc` option: `null` for a
    /// plain connection, `{"default_action": B}` for a hat-juggler
    /// `RpcConnection` around it.
    async fn link_with(
        &mut self,
        topology: Topology,
        rust_delay: Option<Duration>,
        python_delay: Option<f64>,
        trace: bool,
        rpc: Value,
    ) -> Link<B> {
        match topology {
            Topology::RustServer => {
                let (server, mut incoming) =
                    listen::<B>(ServerOptions::default().autoflush_delay(rust_delay)).await;
                self.command(json!({
                    "cmd": "connect",
                    "url": server.url(),
                    "autoflush_delay": python_delay,
                    "trace": trace,
                    "rpc": rpc,
                }));
                let connected = self.expect_kind("connected").await;
                let rust =
                    within::<B, _>(HANG_GUARD, "accepting the Python client", incoming.next())
                        .await;
                Link {
                    rust,
                    conn: connected["conn"].as_u64().expect("a connection number"),
                    rust_server: Some(server),
                    python_server: None,
                }
            }
            Topology::PythonServer => {
                self.command(json!({
                    "cmd": "listen",
                    "autoflush_delay": python_delay,
                    "trace": trace,
                    "rpc": rpc,
                }));
                let listening = self.expect_kind("listening").await;
                let url = format!("ws://127.0.0.1:{}/ws", listening["port"]);
                let rust = B::connect(&url, ClientOptions::default().autoflush_delay(rust_delay))
                    .await
                    .expect("connect to the Python server");
                // Wait until the Python side has its callbacks in place.
                let connected = self.expect_kind("connected").await;
                assert_eq!(connected["server"], listening["server"]);
                Link {
                    rust,
                    conn: connected["conn"].as_u64().expect("a connection number"),
                    rust_server: None,
                    python_server: listening["server"].as_u64(),
                }
            }
        }
    }

    /// Closes the link's server (and with it the connection, if still
    /// open) and consumes the Python events that brings.
    async fn unlink(&mut self, link: Link<B>, connection_open: bool) {
        let closed = json!({"event": "closed", "conn": link.conn});
        if let Some(server) = &link.rust_server {
            within::<B, _>(HANG_GUARD, "closing our server", server.close()).await;
            if connection_open {
                self.expect(closed.clone()).await;
            }
        }
        if let Some(server) = link.python_server {
            self.command(json!({"cmd": "close_server", "server": server}));
            let mut expected = vec![json!({"event": "server_closed", "server": server})];
            if connection_open {
                expected.push(closed);
            }
            self.expect_unordered(expected).await;
        }
        within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
    }

    /// Whether the Python side of `link` is open.
    async fn python_open(&mut self, link: &Link<B>) -> bool {
        self.command(json!({"cmd": "state", "conn": link.conn}));
        let state = self.expect_kind("state").await;
        state["open"].as_bool().expect("a boolean")
    }
}

/// Every data sequence of the conformance suite, set on each side in turn
/// and seen by the other, value by value, both topologies.
pub async fn set_local_data_sequences_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        for sequence in data_sequences() {
            let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
            for value in &sequence {
                link.rust.set_local_data(value.clone()).unwrap();
                py.expect(json!({"event": "change", "conn": link.conn, "remote_data": value}))
                    .await;
            }
            let mut changes = link.rust.remote_changes();
            for value in &sequence {
                py.command(json!({"cmd": "set_local_data", "conn": link.conn, "value": value}));
                let received = within::<B, _>(HANG_GUARD, "data change", changes.changed())
                    .await
                    .unwrap();
                assert_eq!(*received, *value, "{topology:?}, Python to us");
            }
            py.unlink(link, true).await;
        }
    }
}

/// Python's jsonpatch diffs renames and reorderings as `move` operations
/// (seen on the wire); applied on our side they give Python's data. The
/// other way, our diffs and the raw operations of `update_local_data`
/// (`move`, `copy`, `test` included) apply on the Python side.
pub async fn move_operations_apply_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let shuffles = shuffle_steps(40);
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, true).await;
        let mut changes = link.rust.remote_changes();
        let steps = move_steps()
            .into_iter()
            .chain(shuffles.iter().map(|value| (value.clone(), false)));
        let mut moving_patches = 0;
        for (step, (value, must_move)) in steps.enumerate() {
            py.command(json!({"cmd": "set_local_data", "conn": link.conn, "value": value}));
            let frame = py.expect_kind("frame_out").await;
            assert_eq!(frame["frame"]["type"], "DATA", "{frame}");
            let patch = &frame["frame"]["payload"];
            let moves = patch
                .as_array()
                .expect("a patch is an array")
                .iter()
                .any(|op| op["op"] == "move");
            assert!(moves || !must_move, "step {step}: no move in {patch}");
            moving_patches += usize::from(moves);
            let received = within::<B, _>(HANG_GUARD, "data change", changes.changed())
                .await
                .unwrap();
            assert_eq!(
                *received, value,
                "{topology:?}, step {step}: Python's patch {patch} applied on our side"
            );
        }
        assert!(
            moving_patches >= 20,
            "only {moving_patches} patches had moves"
        );

        // Our diffs of the same walk, applied by Python.
        for (step, value) in move_steps()
            .into_iter()
            .map(|(value, _)| value)
            .chain(shuffles.iter().cloned())
            .enumerate()
        {
            link.rust.set_local_data(value.clone()).unwrap();
            let change = py.expect_kind("change").await;
            assert_eq!(
                change["remote_data"], value,
                "{topology:?}, step {step}: our diff applied by Python"
            );
        }

        // Raw operations, forwarded as they are.
        link.rust
            .set_local_data(json!({"a": {"x": [1, 2, 3]}, "b": [], "c~/": {}}))
            .unwrap();
        py.expect_kind("change").await;
        let ops: Vec<PatchOperation> = serde_json::from_value(json!([
            {"op": "test", "path": "/a/x/1", "value": 2},
            {"op": "move", "from": "/a/x/0", "path": "/a/x/2"},
            {"op": "move", "from": "/a/x", "path": "/b/-"},
            {"op": "copy", "from": "/b/0", "path": "/c~0~1/copy"},
            {"op": "move", "from": "/c~0~1", "path": "/renamed"},
            {"op": "add", "path": "/b/0/0", "value": 0},
            {"op": "remove", "path": "/a"},
            {"op": "replace", "path": "/renamed/copy/1", "value": "three"},
        ]))
        .unwrap();
        link.rust.update_local_data(ops).unwrap();
        let expected = json!({"b": [[0, 2, 3, 1]], "renamed": {"copy": [2, "three", 1]}});
        assert_eq!(*link.rust.local_data(), expected);
        py.expect(json!({"event": "change", "conn": link.conn, "remote_data": expected}))
            .await;
        py.unlink(link, true).await;
    }
}

/// Unicode, escapes, JSON Pointer escaping in keys, floats vs integers and
/// the i64/u64 edges survive as messages and as data, both ways.
pub async fn json_values_survive_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let values = tricky_values();
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        for value in &values {
            link.rust.send(value).await.unwrap();
            py.expect(json!({"event": "message", "conn": link.conn, "value": value}))
                .await;
            py.command(json!({"cmd": "send", "conn": link.conn, "value": value}));
            let received = within::<B, _>(HANG_GUARD, "message", link.rust.receive())
                .await
                .unwrap();
            assert_eq!(received, *value, "{topology:?}: message from Python");
        }
        for value in &values {
            link.rust.set_local_data(value.clone()).unwrap();
            py.expect(json!({"event": "change", "conn": link.conn, "remote_data": value}))
                .await;
        }
        let mut changes = link.rust.remote_changes();
        for value in &values {
            py.command(json!({"cmd": "set_local_data", "conn": link.conn, "value": value}));
            let received = within::<B, _>(HANG_GUARD, "data change", changes.changed())
                .await
                .unwrap();
            assert_eq!(*received, *value, "{topology:?}: data from Python");
        }
        py.unlink(link, true).await;
    }
}

/// Autoflush zero: three quick sets give three changes on the other side,
/// in order, both ways.
pub async fn immediate_autoflush_delivers_every_change<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let values = [json!(123), json!("abc"), json!("xyz")];
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        for value in &values {
            link.rust.set_local_data(value.clone()).unwrap();
        }
        link.rust.send(&json!("marker")).await.unwrap();
        for value in &values {
            py.expect(json!({"event": "change", "conn": link.conn, "remote_data": value}))
                .await;
        }
        py.expect(json!({"event": "message", "conn": link.conn, "value": "marker"}))
            .await;

        let (seen, _registration) = record_changes(&link.rust);
        let mut changes = link.rust.remote_changes();
        py.command(json!({"cmd": "set_local_data", "conn": link.conn, "values": values}));
        within::<B, _>(HANG_GUARD, "the last change", async {
            while *changes.changed().await.unwrap() != values[2] {}
        })
        .await;
        // hat-juggler sends messages ahead of pending DATA frames, so the
        // marker goes only after the last change has arrived.
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "marker"}));
        assert_eq!(link.rust.receive().await.unwrap(), json!("marker"));
        assert_eq!(*seen.lock().unwrap(), values, "{topology:?}");
        py.unlink(link, true).await;
    }
}

/// Autoflush delayed: three quick sets give one change, the latest value,
/// both ways.
pub async fn delayed_autoflush_delivers_the_latest_once<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let values = [json!(123), json!("abc"), json!("xyz")];
    for topology in TOPOLOGIES {
        let link = py.link(topology, DELAYED, PY_DELAYED, false).await;
        for value in &values {
            link.rust.set_local_data(value.clone()).unwrap();
        }
        py.expect(json!({"event": "change", "conn": link.conn, "remote_data": "xyz"}))
            .await;
        link.rust.send(&json!("marker")).await.unwrap();
        py.expect(json!({"event": "message", "conn": link.conn, "value": "marker"}))
            .await;

        let (seen, _registration) = record_changes(&link.rust);
        let mut changes = link.rust.remote_changes();
        py.command(json!({"cmd": "set_local_data", "conn": link.conn, "values": values}));
        let received = within::<B, _>(HANG_GUARD, "delayed change", changes.changed())
            .await
            .unwrap();
        assert_eq!(*received, json!("xyz"));
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "marker"}));
        assert_eq!(link.rust.receive().await.unwrap(), json!("marker"));
        assert_eq!(*seen.lock().unwrap(), [json!("xyz")], "{topology:?}");
        py.unlink(link, true).await;
    }
}

/// Manual policy: nothing arrives before the flush, the latest value after
/// it, both ways, for every conformance data sequence.
pub async fn manual_flush_sends_only_on_flush<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        for sequence in data_sequences() {
            let last = sequence.last().unwrap().clone();
            let link = py.link(topology, MANUAL, PY_MANUAL, false).await;
            for value in &sequence {
                link.rust.set_local_data(value.clone()).unwrap();
            }
            link.rust.send(&json!("before flush")).await.unwrap();
            // No change event before the message: nothing was sent.
            py.expect(json!({"event": "message", "conn": link.conn, "value": "before flush"}))
                .await;
            link.rust.flush_local_data().await.unwrap();
            link.rust.send(&json!("after flush")).await.unwrap();
            if last != Value::Null {
                py.expect(json!({"event": "change", "conn": link.conn, "remote_data": last}))
                    .await;
            }
            py.expect(json!({"event": "message", "conn": link.conn, "value": "after flush"}))
                .await;

            let (seen, _registration) = record_changes(&link.rust);
            py.command(json!({"cmd": "set_local_data", "conn": link.conn, "values": sequence}));
            py.command(json!({"cmd": "send", "conn": link.conn, "value": "before flush"}));
            assert_eq!(link.rust.receive().await.unwrap(), json!("before flush"));
            assert!(seen.lock().unwrap().is_empty(), "data before the flush");
            assert_eq!(*link.rust.remote_data(), Value::Null);
            py.command(json!({"cmd": "flush", "conn": link.conn}));
            py.expect(json!({"event": "flushed", "conn": link.conn}))
                .await;
            py.command(json!({"cmd": "send", "conn": link.conn, "value": "after flush"}));
            assert_eq!(link.rust.receive().await.unwrap(), json!("after flush"));
            assert_eq!(*link.rust.remote_data(), last);
            let expected: Vec<Value> = match last {
                Value::Null => vec![],
                _ => vec![last.clone()],
            };
            assert_eq!(*seen.lock().unwrap(), expected, "{topology:?}");
            py.unlink(link, true).await;
        }
    }
}

/// Every message sequence of the conformance suite arrives in order, with
/// its JSON types, both ways.
pub async fn messages_in_order_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        for sequence in message_sequences() {
            for message in &sequence {
                link.rust.send(message).await.unwrap();
            }
            for message in &sequence {
                py.expect(json!({"event": "message", "conn": link.conn, "value": message}))
                    .await;
            }
            for message in &sequence {
                py.command(json!({"cmd": "send", "conn": link.conn, "value": message}));
            }
            for message in &sequence {
                let received = within::<B, _>(HANG_GUARD, "message", link.rust.receive())
                    .await
                    .unwrap();
                assert_eq!(received, *message, "{topology:?}");
                assert_eq!(received.is_f64(), message.is_f64());
            }
        }
        py.unlink(link, true).await;
    }
}

/// 8 MiB messages go both ways, between small ones, in order. The one
/// exception is the reference's own: hat-juggler's server takes messages of
/// at most 4 MiB (aiohttp's default), so towards it we send just under
/// that, and check that 8 MiB makes it close the connection rather than
/// anything breaking on our side.
pub async fn big_messages_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let big = big_string(8 << 20);
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        // Python to us.
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "before"}));
        py.command(json!({"cmd": "send", "conn": link.conn, "value": big}));
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "after"}));
        assert_eq!(link.rust.receive().await.unwrap(), json!("before"));
        let received = within::<B, _>(HANG_GUARD, "8 MiB message", link.rust.receive())
            .await
            .unwrap();
        assert_same_big(&received, &big, "8 MiB from Python");
        assert_eq!(link.rust.receive().await.unwrap(), json!("after"));

        // Us to Python.
        let towards_python = match topology {
            Topology::RustServer => big.clone(),
            Topology::PythonServer => big_string((4 << 20) - 64),
        };
        link.rust.send(&json!("before")).await.unwrap();
        link.rust.send(&towards_python).await.unwrap();
        link.rust.send(&json!("after")).await.unwrap();
        py.expect(json!({"event": "message", "conn": link.conn, "value": "before"}))
            .await;
        let event = py.expect_kind("message").await;
        assert_same_big(&event["value"], &towards_python, "big message to Python");
        py.expect(json!({"event": "message", "conn": link.conn, "value": "after"}))
            .await;

        if topology == Topology::PythonServer {
            link.rust.send(&big).await.unwrap();
            py.expect(json!({"event": "closed", "conn": link.conn}))
                .await;
            let reason =
                within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
            assert_ne!(reason, CloseReason::Local);
            py.unlink(link, false).await;
        } else {
            py.unlink(link, true).await;
        }
    }
}

/// Our juggler PING gets hat-juggler's PONG (seen on the wire), and the
/// connection goes on working.
pub async fn ping_is_answered_with_pong<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, true).await;
        link.rust.send_ping().unwrap();
        py.expect(json!({
            "event": "frame_out",
            "conn": link.conn,
            "frame": {"type": "PONG", "payload": {}},
        }))
        .await;
        link.rust.send(&json!("after ping")).await.unwrap();
        py.expect(json!({"event": "message", "conn": link.conn, "value": "after ping"}))
            .await;
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "reply"}));
        py.expect_kind("frame_out").await;
        assert_eq!(
            within::<B, _>(HANG_GUARD, "reply", link.rust.receive())
                .await
                .unwrap(),
            json!("reply")
        );
        assert!(link.rust.is_open(), "{topology:?}");
        assert!(py.python_open(&link).await, "{topology:?}");
        py.unlink(link, true).await;
    }
}

/// Closing the connection or the server on either side is seen by the
/// other; what was sent before the close arrives first; afterwards
/// operations fail on both sides.
pub async fn closing_is_seen_by_the_other_side<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        // We close. Our data waits for a deadline that never comes: the
        // close flushes it, ahead of the close.
        let link = py.link(topology, NEVER, PY_IMMEDIATE, false).await;
        link.rust.send(&json!("last words")).await.unwrap();
        link.rust.set_local_data(json!({"bye": true})).unwrap();
        link.rust.close();
        py.expect_unordered(vec![
            json!({"event": "message", "conn": link.conn, "value": "last words"}),
            json!({"event": "change", "conn": link.conn, "remote_data": {"bye": true}}),
        ])
        .await;
        py.expect(json!({"event": "closed", "conn": link.conn}))
            .await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
        assert_eq!(reason, CloseReason::Local, "{topology:?}");
        py.command(json!({"cmd": "send", "conn": link.conn, "value": 1}));
        py.expect_kind("error").await;
        assert!(!py.python_open(&link).await);
        py.unlink(link, false).await;

        // Python closes.
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        py.command(json!({"cmd": "set_local_data", "conn": link.conn, "value": "kept"}));
        py.command(json!({"cmd": "flush", "conn": link.conn}));
        py.expect_kind("flushed").await;
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "last words"}));
        py.command(json!({"cmd": "close", "conn": link.conn}));
        py.expect(json!({"event": "closed", "conn": link.conn}))
            .await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
        assert_eq!(reason, CloseReason::Remote, "{topology:?}");
        assert_eq!(link.rust.receive().await.unwrap(), json!("last words"));
        assert!(matches!(link.rust.receive().await, Err(Error::Closed)));
        assert!(matches!(
            link.rust.send(&json!(1)).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            link.rust.set_local_data(json!(1)),
            Err(Error::Closed)
        ));
        assert_eq!(*link.rust.remote_data(), json!("kept"));
        py.unlink(link, false).await;

        // The server closes, with the connection open.
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        let rust = link.rust.clone();
        py.unlink(link, true).await;
        assert!(!rust.is_open());
        let reason = rust.wait_closed().await;
        match topology {
            Topology::RustServer => assert_eq!(reason, CloseReason::Local),
            Topology::PythonServer => assert_eq!(reason, CloseReason::Remote),
        }
    }
}

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
        Err(RpcError::Remote(text)) => text,
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

/// Declares one `#[test]` per Python interop case for a [`Backend`].
#[macro_export]
macro_rules! python_interop_tests {
    ($backend:ty) => {
        $crate::python_interop_tests!(@cases $backend;
            set_local_data_sequences_both_ways,
            move_operations_apply_both_ways,
            json_values_survive_both_ways,
            immediate_autoflush_delivers_every_change,
            delayed_autoflush_delivers_the_latest_once,
            manual_flush_sends_only_on_flush,
            messages_in_order_both_ways,
            big_messages_both_ways,
            ping_is_answered_with_pong,
            closing_is_seen_by_the_other_side,
            rpc_calls_and_errors_both_ways,
            rpc_wire_format_is_the_references,
            rpc_default_actions_both_ways,
            rpc_concurrent_calls_both_ways,
            rpc_plain_messages_pass_beside_calls,
            rpc_pending_calls_fail_when_closed,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on(
                    $crate::interop_python::$case::<$backend>(),
                );
            }
        )*
    };
}
