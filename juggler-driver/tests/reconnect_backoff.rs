//! The reconnecting client's waits, on tokio's paused (virtual) clock: a
//! runtime whose every TCP connect fails shows the attempts exactly at
//! the backoff's times.

mod support;

use std::sync::Arc;
use std::time::Duration;

use juggler_driver::{Backoff, ClientStatus, ReconnectEvent, ReconnectOptions, ReconnectingClient};
use support::TokioClock;

#[tokio::test(start_paused = true)]
async fn attempts_follow_the_backoff_then_give_up() {
    let start = tokio::time::Instant::now();
    let options = ReconnectOptions::default()
        .backoff(
            Backoff::default()
                .initial_delay(Duration::from_millis(100))
                .max_delay(Duration::from_millis(300))
                .jitter(0.0),
        )
        .max_failed_rounds(Some(5));
    let client = ReconnectingClient::start(
        ["ws://127.0.0.1:1/a", "ws://127.0.0.1:1/b"],
        options,
        Arc::new(TokioClock),
    )
    .unwrap();
    let mut events = client.events();
    let mut attempts = Vec::new();
    let failed_rounds = loop {
        match events.next().await.expect("events until it gives up") {
            ReconnectEvent::ConnectFailed { address, .. } => {
                attempts.push((start.elapsed().as_millis(), address));
            }
            ReconnectEvent::GaveUp { failed_rounds } => break failed_rounds,
            other => panic!("unexpected {other:?}"),
        }
    };
    let expected: Vec<(u128, String)> = [0, 100, 300, 600, 900]
        .into_iter()
        .flat_map(|at| ["a", "b"].map(|path| (at, format!("ws://127.0.0.1:1/{path}"))))
        .collect();
    assert_eq!(attempts, expected, "both addresses in order, then the wait");
    assert_eq!(failed_rounds, 5);
    client.wait_closed().await;
    assert_eq!(client.status(), ClientStatus::GaveUp);
    assert_eq!(events.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn close_ends_a_wait_between_rounds() {
    let start = tokio::time::Instant::now();
    let options = ReconnectOptions::default()
        .backoff(Backoff::default().initial_delay(Duration::from_secs(3600)));
    let client =
        ReconnectingClient::start(["ws://127.0.0.1:1/"], options, Arc::new(TokioClock)).unwrap();
    let mut events = client.events();
    assert!(matches!(
        events.next().await,
        Some(ReconnectEvent::ConnectFailed { .. })
    ));
    client.shutdown().await;
    assert_eq!(client.status(), ClientStatus::Closed);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "closing does not wait out the backoff"
    );
    assert_eq!(events.next().await, None);
}
