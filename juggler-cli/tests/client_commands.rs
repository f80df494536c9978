//! `juggler watch`, `call` and `send` against the Python reference servers
//! (hat-juggler 0.7.6, 0.6.26 and 0.5.14).

mod support;

use juggler_tests::support::python::{PEER_0_5, PEER_0_6, PEER_0_7};
use serde_json::json;
use support::{event, peer, python_server, run, Running};

/// Every change of a 0.7 and a 0.6 server's state is a line, and so is
/// each notification with `--events`; the watch ends with the server.
#[tokio::test]
async fn watch_prints_a_python_v07_servers_state_and_notifications() {
    for (kind, generation) in [(&PEER_0_7, "0.7"), (&PEER_0_6, "0.6")] {
        let Some(mut peer) = peer(kind) else { return };
        let url = python_server(&mut peer, json!({})).await;
        let mut watch = Running::start(["watch", "--events", "--generation", generation, &url]);
        let conn = event(&mut peer, "connected").await["conn"].clone();

        peer.command(&json!({"cmd": "set_state", "conn": conn, "value": {"a": 1}}));
        assert_eq!(
            watch.next_line().await,
            json!({"state": {"a": 1}}),
            "{generation}"
        );
        peer.command(&json!({"cmd": "notify", "conn": conn, "name": "n", "data": [1]}));
        assert_eq!(
            watch.next_line().await,
            json!({"notification": {"name": "n", "data": [1]}}),
            "{generation}"
        );
        peer.command(&json!({"cmd": "set_state", "conn": conn, "value": {"a": 2}}));
        assert_eq!(
            watch.next_line().await,
            json!({"state": {"a": 2}}),
            "{generation}"
        );

        peer.command(&json!({"cmd": "close_server", "server": 0}));
        let status = watch.wait().await;
        assert_eq!(
            status.code(),
            Some(0),
            "{generation}: {}",
            watch.stderr().await
        );
    }
}

/// `--patch` prints patches after the first state; `--path` prints its
/// part only when that part changes.
#[tokio::test]
async fn watch_prints_patches_and_parts() {
    let Some(mut peer) = peer(&PEER_0_7) else {
        return;
    };
    let url = python_server(&mut peer, json!({})).await;
    let mut patches = Running::start(["watch", "--patch", &url]);
    let first = event(&mut peer, "connected").await["conn"].clone();
    let mut part = Running::start(["watch", "--path", "/a", &url]);
    let second = event(&mut peer, "connected").await["conn"].clone();
    let set_state = |peer: &mut juggler_tests::support::python::PythonPeer, value| {
        for conn in [&first, &second] {
            peer.command(&json!({"cmd": "set_state", "conn": conn, "value": value}));
        }
    };

    set_state(&mut peer, json!({"a": 1, "b": 1}));
    assert_eq!(
        patches.next_line().await,
        json!({"state": {"a": 1, "b": 1}})
    );
    assert_eq!(part.next_line().await, json!({"state": 1}));
    set_state(&mut peer, json!({"a": 1, "b": 2}));
    assert_eq!(
        patches.next_line().await,
        json!({"patch": [{"op": "replace", "path": "/b", "value": 2}]})
    );
    set_state(&mut peer, json!({"a": 2, "b": 2}));
    assert_eq!(
        patches.next_line().await,
        json!({"patch": [{"op": "replace", "path": "/a", "value": 2}]})
    );
    // Had the change of `/b` printed a line, this would be it.
    assert_eq!(part.next_line().await, json!({"state": 2}));
}

/// On 0.5 the state is the server's data, and `--events` prints its
/// messages.
#[tokio::test]
async fn watch_prints_a_python_0_5_servers_data_and_messages() {
    let Some(mut peer) = peer(&PEER_0_5) else {
        return;
    };
    let url = python_server(&mut peer, json!({})).await;
    let mut watch = Running::start(["watch", "--generation", "0.5", "--events", &url]);
    let conn = event(&mut peer, "connected").await["conn"].clone();

    peer.command(&json!({"cmd": "set_local_data", "conn": conn, "value": {"x": [1]}}));
    assert_eq!(watch.next_line().await, json!({"state": {"x": [1]}}));
    peer.command(&json!({"cmd": "send", "conn": conn, "value": "hi"}));
    assert_eq!(watch.next_line().await, json!({"message": "hi"}));
    peer.command(&json!({"cmd": "set_local_data", "conn": conn, "value": null}));
    assert_eq!(watch.next_line().await, json!({"state": null}));
}

/// A request's result is printed (exit 0); an error answer goes to stderr
/// (exit 1); a request not answered within `--timeout` exits 3.
#[tokio::test]
async fn call_makes_requests_of_python_v07_servers() {
    for (kind, generation) in [(&PEER_0_7, "0.7"), (&PEER_0_6, "0.6")] {
        let Some(mut peer) = peer(kind) else { return };
        let url = python_server(&mut peer, json!({})).await;
        let call = |args: &[&str]| {
            let mut all = vec!["call", "--generation", generation, url.as_str()];
            all.extend(args);
            run(all.into_iter().map(str::to_owned).collect::<Vec<_>>())
        };

        let echoed = call(&["echo", r#"{"x": [1, "two"]}"#]).await;
        assert_eq!(echoed.code, Some(0), "{echoed:?}");
        assert_eq!(echoed.stdout, "{\"x\":[1,\"two\"]}\n");

        let other = call(&["other"]).await;
        assert_eq!(
            other.stdout, "{\"data\":null,\"name\":\"other\"}\n",
            "{other:?}"
        );

        let failed = call(&["fail", r#""boom""#]).await;
        assert_eq!(failed.code, Some(1), "{failed:?}");
        assert_eq!(failed.stdout, "");
        assert_eq!(
            failed.stderr.trim_end().lines().last(),
            Some("\"boom\""),
            "{failed:?}"
        );

        let held = call(&["--timeout", "0.5", "hold", r#""gate""#]).await;
        assert_eq!(held.code, Some(3), "{held:?}");
        assert!(held.stderr.contains("timed out"), "{held:?}");
    }
}

/// On 0.5 a call is an RPC action with a JSON array of arguments.
#[tokio::test]
async fn call_runs_actions_of_a_python_0_5_server() {
    let Some(mut peer) = peer(&PEER_0_5) else {
        return;
    };
    let url = python_server(&mut peer, json!({"rpc": {"default_action": false}})).await;
    let call = |args: &[&str]| {
        let mut all = vec!["call", "--generation", "0.5", url.as_str()];
        all.extend(args);
        run(all.into_iter().map(str::to_owned).collect::<Vec<_>>())
    };

    let acted = call(&["act", "[41]"]).await;
    assert_eq!(
        (acted.code, acted.stdout.as_str()),
        (Some(0), "42\n"),
        "{acted:?}"
    );
    let echoed = call(&["echo"]).await;
    assert_eq!(echoed.stdout, "[]\n", "{echoed:?}");

    let failed = call(&["fail", r#"["boom"]"#]).await;
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(failed.stderr.contains("boom"), "{failed:?}");

    let held = call(&["--timeout", "0.5", "hold", r#"["gate"]"#]).await;
    assert_eq!(held.code, Some(3), "{held:?}");
}

/// `send` writes one MESSAGE that the Python server receives.
#[tokio::test]
async fn send_delivers_a_message_to_a_python_0_5_server() {
    let Some(mut peer) = peer(&PEER_0_5) else {
        return;
    };
    let url = python_server(&mut peer, json!({})).await;
    let sent = run(["send", &url, r#"{"m": [1, 2]}"#]).await;
    assert_eq!(sent.code, Some(0), "{sent:?}");
    let message = event(&mut peer, "message").await;
    assert_eq!(message["value"], json!({"m": [1, 2]}));
}

/// Without `--events` notifications are not kept: a watch that does not
/// print them still follows the state past more than the client's queue
/// holds (1,024).
#[tokio::test]
async fn unprinted_notifications_never_stop_the_state() {
    let Some(mut peer) = peer(&PEER_0_7) else {
        return;
    };
    let url = python_server(&mut peer, json!({})).await;
    let mut watch = Running::start(["watch", &url]);
    let conn = event(&mut peer, "connected").await["conn"].clone();
    peer.command(&json!({"cmd": "set_state", "conn": conn, "value": 1}));
    assert_eq!(watch.next_line().await, json!({"state": 1}));

    for n in 0..1100 {
        peer.command(&json!({"cmd": "notify", "conn": conn, "name": "tick", "data": n}));
    }
    peer.command(&json!({"cmd": "set_state", "conn": conn, "value": 2}));
    assert_eq!(watch.next_line().await, json!({"state": 2}));
}
