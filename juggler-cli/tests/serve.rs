//! `juggler serve` with the Python reference clients (hat-juggler 0.7.6,
//! 0.6.26 and 0.5.14) and with `juggler`'s own client commands.

mod support;

use std::io::{Read, Write};

use juggler_tests::support::python::{PEER_0_5, PEER_0_6, PEER_0_7};
use serde_json::json;
use support::{event, peer, replace_file, run, scratch, serve, Running};

/// A 0.7 or 0.6 Python client gets its request echoed, the file's state,
/// and each new version of the file.
#[tokio::test]
async fn serves_the_file_to_python_v07_clients() {
    for (kind, name) in [(&PEER_0_7, "0.7"), (&PEER_0_6, "0.6")] {
        let Some(mut peer) = peer(kind) else { return };
        let dir = scratch(&format!("serve-python-{name}"));
        let file = dir.join("state.json");
        replace_file(&file, &json!({"n": 1}));
        let (_server, url) = serve(&file, &[]).await;

        peer.command(&json!({"cmd": "connect", "url": url}));
        let conn = event(&mut peer, "connected").await["conn"].clone();
        // A Python client is silent until its first request, which tells
        // the server its generation.
        peer.command(
            &json!({"cmd": "send", "conn": conn, "tag": 1, "name": "echo", "data": {"x": 1}}),
        );
        let result = event(&mut peer, "result").await;
        assert_eq!(
            (&result["success"], &result["data"]),
            (&json!(true), &json!({"x": 1})),
            "{name}"
        );
        assert_eq!(
            event(&mut peer, "state").await["state"],
            json!({"n": 1}),
            "{name}"
        );

        replace_file(&file, &json!({"n": 2, "list": [1]}));
        assert_eq!(
            event(&mut peer, "state").await["state"],
            json!({"n": 2, "list": [1]}),
            "{name}"
        );
    }
}

/// A 0.5 Python client sees the file as the server's data, gets each new
/// version, and its RPC calls are echoed.
#[tokio::test]
async fn serves_the_file_to_a_python_0_5_client() {
    let Some(mut peer) = peer(&PEER_0_5) else {
        return;
    };
    let dir = scratch("serve-python-0.5");
    let file = dir.join("state.json");
    replace_file(&file, &json!({"n": 1}));
    let (_server, url) = serve(&file, &[]).await;

    peer.command(&json!({"cmd": "connect", "url": url, "autoflush_delay": 0, "rpc": {}}));
    let conn = event(&mut peer, "connected").await["conn"].clone();
    assert_eq!(
        event(&mut peer, "change").await["remote_data"],
        json!({"n": 1})
    );

    peer.command(
        &json!({"cmd": "call", "conn": conn, "tag": 1, "action": "anything", "args": [1, "a"]}),
    );
    let result = event(&mut peer, "result").await;
    assert_eq!(
        (&result["success"], &result["result"]),
        (&json!(true), &json!([1, "a"]))
    );

    std::fs::write(&file, r#"{"n": 3}"#).expect("write");
    assert_eq!(
        event(&mut peer, "change").await["remote_data"],
        json!({"n": 3})
    );
}

/// `--replies` answers the names it has, and echoes the rest; a version
/// of the file that does not parse leaves the last good state.
#[tokio::test]
async fn replies_and_the_last_good_state() {
    let dir = scratch("serve-replies");
    let file = dir.join("state.json");
    let replies = dir.join("replies.json");
    replace_file(&file, &json!({"v": 1}));
    replace_file(&replies, &json!({"greet": {"hello": "world"}}));
    let (_server, url) = serve(&file, &["--replies", &replies.display().to_string()]).await;

    let greeted = run(["call", &url, "greet", "1"]).await;
    assert_eq!(greeted.stdout, "{\"hello\":\"world\"}\n", "{greeted:?}");
    let echoed = run(["call", "--generation", "0.5", &url, "other", "[5]"]).await;
    assert_eq!(echoed.stdout, "[5]\n", "{echoed:?}");

    let mut watch = Running::start(["watch", &url]);
    assert_eq!(watch.next_line().await, json!({"state": {"v": 1}}));
    std::fs::write(&file, "{\"v\": ").expect("write");
    replace_file(&file, &json!({"v": 3}));
    // Had the broken version cleared the state, `null` would come first.
    assert_eq!(watch.next_line().await, json!({"state": {"v": 3}}));
}

/// `--static` serves a folder beside the WebSocket.
#[tokio::test]
async fn serves_a_static_folder() {
    let dir = scratch("serve-static");
    let file = dir.join("state.json");
    replace_file(&file, &json!(null));
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<p>front end</p>").unwrap();
    let (_server, url) = serve(&file, &["--static", &www.display().to_string()]).await;

    let address = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        write!(
            stream,
            "GET /index.html HTTP/1.0\r\nHost: {address}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response}"
    );
    assert!(response.ends_with("<p>front end</p>"), "{response}");
}

/// With `--reconnect` a watch follows the server across a restart on the
/// same port; without it, the watch ends when the server closes.
#[tokio::test]
async fn watch_follows_a_restarted_server_only_with_reconnect() {
    let dir = scratch("serve-restart");
    let file = dir.join("state.json");
    replace_file(&file, &json!({"run": 1}));
    let (mut server, url) = serve(&file, &[]).await;
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/ws")
        .to_owned();

    let mut following = Running::start(["watch", "--reconnect", "--generation", "0.5", &url]);
    let mut once = Running::start(["watch", &url]);
    assert_eq!(following.next_line().await, json!({"state": {"run": 1}}));
    assert_eq!(once.next_line().await, json!({"state": {"run": 1}}));

    server.terminate();
    assert_eq!(once.wait().await.code(), Some(0), "{}", once.stderr().await);
    assert_eq!(server.wait().await.code(), Some(0));

    replace_file(&file, &json!({"run": 2}));
    let (_server, again) = serve(&file, &["--port", &port]).await;
    assert_eq!(again, url);
    assert_eq!(following.next_line().await, json!({"state": {"run": 2}}));
}

/// The demo page on `juggler serve --static juggler-demo/www` shows the
/// file's state: its self-test reports what it shows as a 0.5 message,
/// which the server logs.
#[tokio::test]
async fn the_demo_page_shows_the_files_state() {
    let Some(kit) = juggler_tests::support::browser::kit() else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let www = root.join("../juggler-demo/www").display().to_string();
    let (mut server, url) = serve(&root.join("demo-state.json"), &["--static", &www]).await;
    let page = url
        .replace("ws://", "http://")
        .replace("/ws", "/index.html?selftest");
    let _browser = kit.open(&page);

    let logged = server.stderr_line_with("\"selftest\":\"shown\"").await;
    let message = logged
        .split_once("data=")
        .map(|(_, json)| json)
        .unwrap_or_default();
    let message: serde_json::Value = serde_json::from_str(message.trim())
        .unwrap_or_else(|err| panic!("not a message line ({err}): {logged}"));
    assert_eq!(
        message["shown"],
        json!({"clock": "from a file", "clients": "3", "counter": "42", "names": "alice, bob, carol"})
    );
}
