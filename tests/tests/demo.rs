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
    let Some(kit) = kit() else { return };
    let demo = Demo::start("127.0.0.1", 0).await.unwrap();
    let mut reports = demo.page_messages();
    let _browser = kit.open(&format!("{}?selftest", demo.page_url()));

    let shown = next_report(&mut reports).await;
    assert_eq!(shown["selftest"], "shown");
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
