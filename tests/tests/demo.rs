//! The demo (the README's main example) in headless Chromium: the page
//! shows live server state, and a click on its RPC button round-trips.
//! The page checks itself in `?selftest` mode and reports over Juggler.

use std::time::Duration;

use juggler_demo::Demo;
use juggler_tests::support::browser::kit;
use serde_json::Value;

async fn next_report(reports: &mut tokio::sync::broadcast::Receiver<Value>) -> Value {
    let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
        .await
        .expect("the demo page reports within a minute")
        .expect("the report channel is open");
    assert!(
        report.get("selftest").is_some(),
        "unexpected page message {report}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_shows_state_and_a_click_round_trips() {
    page_self_test("index.html").await;
}

/// The 0.7 page, on the same `/ws`: the same state, the click as a
/// request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_v07_page_shows_state_and_a_click_round_trips() {
    page_self_test("v07.html").await;
}

/// The Python clients of 0.6 and 0.7 and a 0.5 page's worth of our 0.5
/// client share the demo's state on one `/ws`: a Python `increment`
/// request moves the counter every generation sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_of_0_6_and_0_7_use_the_demo() {
    use juggler_tests::support::python::{PEER_0_6, PEER_0_7};
    let demo = Demo::start("127.0.0.1", 0).await.unwrap();
    let v05 = juggler_tokio::connect(demo.ws_url()).await.unwrap();
    let mut v05_changes = v05.remote_changes();
    // A 0.5 client that only listens is served after the 1 s detection.
    let first = tokio::time::timeout(Duration::from_secs(60), v05_changes.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first["counter"], 0);
    for (index, kind) in [&PEER_0_6, &PEER_0_7].into_iter().enumerate() {
        let Some(mut peer) = kind.start() else { return };
        peer.command(&serde_json::json!({"cmd": "connect", "url": demo.ws_url()}));
        peer.command(&serde_json::json!({"cmd": "send", "conn": 0, "tag": "inc", "name": "increment", "data": 1}));
        let result = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let event = peer.next_event().await;
                if event["event"] == "result" {
                    return event;
                }
            }
        })
        .await
        .expect("the request is answered");
        assert_eq!(result["data"], index + 1, "{result}");
        loop {
            let data = tokio::time::timeout(Duration::from_secs(60), v05_changes.changed())
                .await
                .unwrap()
                .unwrap();
            if data["counter"] == index + 1 {
                break;
            }
        }
    }
    assert_eq!(demo.counter(), 2);
    demo.close().await;
}

async fn page_self_test(page: &str) {
    let Some(kit) = kit() else { return };
    let demo = Demo::start("127.0.0.1", 0).await.unwrap();
    let mut reports = demo.page_messages();
    let url = demo.page_url().replace("index.html", page);
    let _browser = kit.open(&format!("{url}?selftest"));

    let shown = next_report(&mut reports).await;
    assert_eq!(shown["selftest"], "shown");
    // Chromium offers permessage-deflate, and the server takes it.
    let extensions = shown["extensions"].as_str().unwrap_or_default();
    assert!(
        extensions.starts_with("permessage-deflate"),
        "the page's WebSocket.extensions: {extensions:?}"
    );
    let clock = shown["shown"]["clock"].as_str().unwrap();
    assert!(
        clock.len() == 12 && clock.ends_with(" UTC") && clock.as_bytes()[2] == b':',
        "the page shows the server clock, not {clock:?}"
    );
    assert_eq!(shown["shown"]["clients"], "1");
    // What the page showed before its click (the server may already have
    // counted the click by now, so its counter is not read here).
    assert_eq!(shown["shown"]["counter"], "0");

    let clicked = next_report(&mut reports).await;
    assert_eq!(clicked["selftest"], "clicked");
    assert_eq!(clicked["result"], "counter is now 1");
    assert_eq!(demo.counter(), 1, "the click reached the server");
    demo.close().await;
}

/// A page of another origin (served by a second server on another port)
/// tries to open the demo's WebSocket in the same browser: the demo's
/// default origin policy refuses it, so no third-party page can read its
/// state. The same page reaches its own server's WebSocket, which shows
/// that the refusal is the policy's, not the page's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_cannot_open_the_demos_websocket() {
    let Some(kit) = kit() else { return };
    let demo = Demo::start("127.0.0.1", 0).await.unwrap();
    let demo_ws = demo.page_url().replace("http://", "ws://");
    let demo_ws = format!("{}/ws", &demo_ws[..demo_ws.rfind('/').unwrap()]);

    let dir = juggler_tests::cases::web::TempDir::new("other-origin");
    std::fs::write(
        dir.0.join("probe.html"),
        r#"<!doctype html><script>
const target = new URLSearchParams(location.search).get("target");
const report = new WebSocket(`ws://${location.host}/ws`);
const tell = (outcome) => report.send(JSON.stringify({type: "MESSAGE", payload: {outcome, target}}));
report.onopen = () => {
  const probe = new WebSocket(target);
  probe.onopen = () => tell("open");
  probe.onerror = () => tell("refused");
};
</script>"#,
    )
    .unwrap();
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let other = juggler_tokio::listen(
        "127.0.0.1",
        0,
        move |connection| {
            let reports = reports_tx.clone();
            tokio::spawn(async move {
                while let Ok(message) = connection.receive().await {
                    let _ = reports.send(message);
                }
            });
        },
        juggler_tokio::ServerOptions::default().static_dir(&dir.0),
    )
    .await
    .unwrap();
    let own_ws = other.url().to_owned();
    let page = |target: &str| format!("http://{}/probe.html?target={target}", other.local_addr());

    for (target, expected) in [(demo_ws.as_str(), "refused"), (own_ws.as_str(), "open")] {
        let _browser = kit.open(&page(target));
        let report = tokio::time::timeout(Duration::from_secs(60), reports.recv())
            .await
            .expect("the probe page reports within a minute")
            .expect("the report channel is open");
        assert_eq!(report["outcome"], expected, "{report}");
        assert_eq!(report["target"], target);
    }
    assert_eq!(demo.counter(), 0);
    other.close().await;
    demo.close().await;
}
