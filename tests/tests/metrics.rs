//! The demo's `/metrics` after known traffic: its counts match what the
//! test did. Its own binary: the metrics recorder is one per process, and
//! no other test's connections may add to the counts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use juggler_demo::Demo;
use juggler_driver::http::{header, HeaderValue};
use juggler_rpc::{Actions, RpcConnection, RpcError};
use juggler_tests::support::backend::HANG_GUARD;
use juggler_tests::support::http::get;
use juggler_tokio::{ClientOptions, Error};
use serde_json::json;

/// One scrape: each sample by its name and sorted labels, and each
/// metric's `# TYPE` with its `# HELP` text (empty when it has none).
struct Scrape(BTreeMap<String, f64>, BTreeMap<String, String>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut help = BTreeMap::new();
        for line in text.lines() {
            if let Some(typed) = line.strip_prefix("# TYPE ") {
                let name = typed.split(' ').next().unwrap_or_default();
                help.entry(name.to_owned()).or_insert_with(String::new);
            }
            if let Some((name, text)) = line.strip_prefix("# HELP ").and_then(|l| l.split_once(' '))
            {
                help.insert(name.to_owned(), text.to_owned());
            }
        }
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let key = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
                None => series.to_owned(),
            };
            samples.insert(key, value.parse().expect("a sample value"));
        }
        Scrape(samples, help)
    }

    /// The sample `name` with these labels (in any order), 0 if absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let key = if labels.is_empty() {
            name.to_owned()
        } else {
            let mut labels: Vec<String> = labels
                .iter()
                .map(|(key, value)| format!("{key}=\"{value}\""))
                .collect();
            labels.sort_unstable();
            format!("{name}{{{}}}", labels.join(","))
        };
        self.0.get(&key).copied().unwrap_or(0.0)
    }
}

async fn scrape(addr: SocketAddr) -> Scrape {
    let response = get(addr, "/metrics").await;
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/plain")));
    Scrape::parse(&String::from_utf8(response.body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_metrics_that_count_what_happened() {
    let demo = Demo::start("127.0.0.1", 0).await.unwrap();
    let addr: SocketAddr = demo
        .metrics_url()
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();

    let mut clients = Vec::new();
    for _ in 0..3 {
        let connection = juggler_tokio::connect(demo.ws_url()).await.unwrap();
        clients.push(RpcConnection::new(connection, Actions::new()));
    }
    for client in &clients {
        for _ in 0..2 {
            client.call("increment", vec![json!(1)]).await.unwrap();
        }
    }
    assert!(matches!(
        clients[0].call("no_such_action", vec![]).await,
        Err(RpcError::Remote(_))
    ));
    for n in 0..4 {
        clients[1].send(&json!({"note": n})).await.unwrap();
    }
    let foreign = ClientOptions::default().header(
        header::ORIGIN,
        HeaderValue::from_static("https://elsewhere.example"),
    );
    let refused = juggler_tokio::connect_with(demo.ws_url(), foreign).await;
    assert!(matches!(refused, Err(Error::Refused(403))), "{refused:?}");

    let leaving = clients.pop().unwrap();
    leaving.shutdown().await;
    let closed = [("role", "server"), ("reason", "remote")];
    // The server counts the close when its side is done with the socket,
    // just after the client's: scrape until it shows (bounded).
    let scraped = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let scraped = scrape(addr).await;
            if scraped.value("juggler_connections_closed_total", &closed) >= 1.0 {
                return scraped;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the server counts the close");

    let server = [("role", "server")];
    let client = [("role", "client")];
    assert_eq!(
        scraped.value("juggler_connections_opened_total", &server),
        3.0
    );
    assert_eq!(
        scraped.value("juggler_connections_opened_total", &client),
        3.0
    );
    assert_eq!(scraped.value("juggler_connections_open", &server), 2.0);
    assert_eq!(scraped.value("juggler_connections_open", &client), 2.0);
    assert_eq!(
        scraped.value("juggler_connections_closed_total", &closed),
        1.0
    );
    assert_eq!(
        scraped.value(
            "juggler_connections_closed_total",
            &[("role", "client"), ("reason", "local")]
        ),
        1.0
    );
    assert_eq!(
        scraped.value("juggler_upgrades_refused_total", &[("reason", "origin")]),
        1.0
    );
    // 7 calls and 4 plain messages, and nothing else from the clients.
    assert_eq!(
        scraped.value(
            "juggler_frames_sent_total",
            &[("role", "client"), ("kind", "message")]
        ),
        11.0
    );
    assert_eq!(
        scraped.value(
            "juggler_frames_sent_total",
            &[("role", "client"), ("kind", "data")]
        ),
        0.0
    );
    assert!(scraped.value("juggler_frames_received_total", &server) >= 11.0);
    assert!(scraped.value("juggler_received_bytes_total", &server) > 0.0);
    assert!(
        scraped.value(
            "juggler_frames_sent_total",
            &[("role", "server"), ("kind", "data")]
        ) >= 3.0,
        "each page got the state"
    );
    assert_eq!(
        scraped.value("juggler_rpc_requests_total", &[("outcome", "success")]),
        6.0
    );
    assert_eq!(
        scraped.value("juggler_rpc_requests_total", &[("outcome", "failure")]),
        1.0
    );
    assert_eq!(
        scraped.value("juggler_rpc_calls_total", &[("outcome", "success")]),
        6.0
    );
    assert_eq!(
        scraped.value("juggler_rpc_calls_total", &[("outcome", "remote_error")]),
        1.0
    );
    assert_eq!(
        scraped.value("juggler_rpc_request_duration_seconds_count", &[]),
        7.0
    );
    assert_eq!(
        scraped.value("juggler_rpc_call_duration_seconds_count", &[]),
        7.0
    );

    // 0.7 requests, after the counts above: one answered, one refused.
    let v07 = juggler_tokio::v07::connect(demo.ws_url(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        v07.send("reverse", json!("abc")).await.unwrap(),
        json!("cba")
    );
    assert!(v07.send("nope", json!(null)).await.is_err());
    let scraped = scrape(addr).await;
    let outcome = |outcome| scraped.value("juggler_v07_requests_total", &[("outcome", outcome)]);
    assert_eq!((outcome("success"), outcome("failure")), (1.0, 1.0));
    assert_eq!(
        scraped.value("juggler_v07_request_duration_seconds_count", &[]),
        2.0
    );
    v07.async_close().await;

    // Every metric says what it means (describe_*), so Prometheus shows
    // HELP text: the 13 of the driver and the 4 of juggler-rpc.
    let undescribed: Vec<_> = scraped
        .1
        .iter()
        .filter(|(name, help)| name.starts_with("juggler_") && help.is_empty())
        .collect();
    assert_eq!(undescribed, Vec::<(&String, &String)>::new());
    let described = scraped.1.keys().filter(|name| name.starts_with("juggler_"));
    assert_eq!(described.count(), 17, "{:?}", scraped.1);

    for client in &clients {
        client.shutdown().await;
    }
    demo.close().await;
}
