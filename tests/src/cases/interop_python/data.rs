//! Data sync with the Python peer: every data sequence, `move` ops, JSON
//! values that are easy to get wrong, and each autoflush policy, both ways.

use super::*;

/// need JSON Pointer escaping, floats next to integers, the i64/u64 edges.
pub(super) fn tricky_values() -> Vec<Value> {
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
