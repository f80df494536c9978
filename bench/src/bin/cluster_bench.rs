//! `cluster-bench`: juggler-redis beside the raw `redis` crate doing the
//! same Redis round trips, in the same run, on tokio.
//!
//! ```text
//! cargo run --release -p juggler-bench --bin cluster-bench -- [--quick] [--redis URL]
//! ```
//!
//! Without `--redis` it starts its own `redis-server` (Debian's package)
//! on a free loopback port with no persistence. It measures:
//!
//! - `updates`: updates per second on one document, 16 writers at once
//!   and one alone; raw: the same Lua (version check, `HSET`, `XADD
//!   MAXLEN ~`) by `EVALSHA`.
//! - `latency`: from a write's call to a client of a node seeing it, with
//!   the client on the writing node and on another node (p50/p99); raw:
//!   `XADD` on one connection to an `XREAD BLOCK` on another returning.
//! - `fanout`: one write to 2 × 1,000 clients on two nodes, until the
//!   last sees it (p50/p99); raw: `XADD` to two blocked readers.
//!
//! Every number is checked as it goes (each client must see the written
//! value); a wrong result panics.
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use juggler_redis::{Cluster, ClusterOptions, Document};
use juggler_tokio::{Connection, PatchOperation, Server, ServerOptions};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// The same commands as juggler-redis's update script, for the raw rows.
const RAW_UPDATE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'epoch', 'head', 'version')
if not s[1] then
  redis.call('HSET', KEYS[1], 'epoch', 'raw', 'head', 0, 'version', 0)
  s = {'raw', '0', '0'}
end
local head = tonumber(s[2]) + 1
redis.call('HSET', KEYS[1], 'head', head)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, string.format('%d-0', head), 'e', s[1], 'p', ARGV[1])
return {'ok', s[1], string.format('%d', head)}
";

struct Sizes {
    updates: usize,
    samples: usize,
    fanout_clients: usize,
    fanout_rounds: usize,
}

fn main() {
    let mut quick = false;
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--redis" => url = args.next(),
            other => {
                eprintln!("usage: cluster-bench [--quick] [--redis URL] (not {other})");
                std::process::exit(2);
            }
        }
    }
    let sizes = if quick {
        Sizes {
            updates: 200,
            samples: 20,
            fanout_clients: 20,
            fanout_rounds: 3,
        }
    } else {
        Sizes {
            updates: 5000,
            samples: 400,
            fanout_clients: 1000,
            fanout_rounds: 30,
        }
    };
    let mut server = None;
    let url = url.unwrap_or_else(|| {
        let (child, url) = start_redis();
        server = Some(child);
        url
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(&url, &sizes));
    if let Some(mut child) = server {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Starts `redis-server` on a free port; its child and URL.
fn start_redis() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server), or pass --redis URL");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections")),
        "redis-server did not start"
    );
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("redis://127.0.0.1:{port}"))
}

fn patch(value: Value) -> Vec<PatchOperation> {
    serde_json::from_value(value).expect("a patch")
}

async fn node(url: &str) -> Cluster {
    Cluster::connect(
        url,
        juggler_tokio::runtime(),
        ClusterOptions::default().prefix("bench"),
    )
    .await
    .expect("connect to Redis")
}

fn report(name: &str, value: f64, unit: &str) {
    println!("{name:<44} {value:>12.1} {unit}");
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index].as_secs_f64() * 1e3
}

async fn run(url: &str, sizes: &Sizes) {
    let client = redis::Client::open(url).expect("a Redis URL");
    let raw = client
        .get_multiplexed_async_connection()
        .await
        .expect("a raw connection");
    let (a, b) = (node(url).await, node(url).await);

    // Updates per second.
    for writers in [16, 1] {
        let document = a.document(&format!("updates-{writers}"), json!({"n": 0}));
        warm_up(&document).await;
        let per = sizes.updates / writers;
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let document = document.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        let value = json!([{"op": "replace", "path": "/n", "value": w * per + i}]);
                        document.update(patch(value)).await.expect("an update");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a writer");
        }
        let ours = (per * writers) as f64 / start.elapsed().as_secs_f64();
        let script = redis::Script::new(RAW_UPDATE);
        let start = Instant::now();
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let (mut raw, script) = (raw.clone(), script.clone());
                tokio::spawn(async move {
                    for i in 0..per {
                        let body = json!([{"op": "replace", "path": "/n", "value": w * per + i}]);
                        let _: Vec<String> = script
                            .key(format!("raw:{{u{writers}}}:snap"))
                            .key(format!("raw:{{u{writers}}}:log"))
                            .arg(body.to_string())
                            .invoke_async(&mut raw)
                            .await
                            .expect("a raw update");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a raw writer");
        }
        let raw_rate = (per * writers) as f64 / start.elapsed().as_secs_f64();
        report(
            &format!("updates/s, {writers} writer(s): juggler-redis"),
            ours,
            "/s",
        );
        report(
            &format!("updates/s, {writers} writer(s): raw Lua EVALSHA"),
            raw_rate,
            "/s",
        );
        report(
            &format!("updates/s, {writers} writer(s): ratio"),
            ours / raw_rate,
            "x",
        );
    }

    // Change-to-client latency.
    let (da, db) = (
        a.document("latency", json!({"n": 0})),
        b.document("latency", json!({"n": 0})),
    );
    warm_up(&da).await;
    db.synced().await;
    let (server, members) = serve(&da, 1).await;
    let watcher = juggler_tokio::connect(server.url())
        .await
        .expect("a client");
    wait_joined(&members, 1).await;
    let mut n = 0;
    for (label, writer) in [("same node", &da), ("other node", &db)] {
        let mut samples = Vec::new();
        for _ in 0..sizes.samples {
            n += 1;
            let mut changes = watcher.remote_changes();
            let start = Instant::now();
            writer
                .update(patch(json!([{"op": "replace", "path": "/n", "value": n}])))
                .await
                .expect("an update");
            while watcher.remote_data()["n"] != n {
                changes.changed().await.expect("the client is open");
            }
            samples.push(start.elapsed());
        }
        report(
            &format!("change to client, {label}: p50"),
            percentile(&mut samples, 0.5),
            "ms",
        );
        report(
            &format!("change to client, {label}: p99"),
            percentile(&mut samples, 0.99),
            "ms",
        );
    }
    let mut samples = raw_stream_latency(&client, 1, sizes.samples).await;
    report(
        "raw XADD to XREAD BLOCK: p50",
        percentile(&mut samples, 0.5),
        "ms",
    );
    report(
        "raw XADD to XREAD BLOCK: p99",
        percentile(&mut samples, 0.99),
        "ms",
    );
    drop(watcher);
    server.close().await;

    // Fan-out to 2 × clients on two nodes.
    let (fa, fb) = (
        a.document("fanout", json!({"n": 0})),
        b.document("fanout", json!({"n": 0})),
    );
    warm_up(&fa).await;
    fb.synced().await;
    let (server_a, members_a) = serve(&fa, sizes.fanout_clients).await;
    let (server_b, members_b) = serve(&fb, sizes.fanout_clients).await;
    let seen = Arc::new(AtomicUsize::new(0));
    let all_seen = Arc::new(Notify::new());
    let target = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for url in [server_a.url(), server_b.url()] {
        for _ in 0..sizes.fanout_clients {
            let client = juggler_tokio::connect(url).await.expect("a client");
            let (seen, all_seen, target) = (seen.clone(), all_seen.clone(), target.clone());
            let total = 2 * sizes.fanout_clients;
            let watched = client.clone();
            tokio::spawn(async move {
                let mut changes = watched.remote_changes();
                let mut last = 0;
                while let Ok(data) = changes.changed().await {
                    let want = target.load(Ordering::SeqCst);
                    if want > last && data["n"] == want {
                        last = want;
                        if seen.fetch_add(1, Ordering::SeqCst) + 1 == total {
                            all_seen.notify_one();
                        }
                    }
                }
            });
            clients.push(client);
        }
    }
    wait_joined(&members_a, sizes.fanout_clients).await;
    wait_joined(&members_b, sizes.fanout_clients).await;
    let mut samples = Vec::new();
    for round in 1..=sizes.fanout_rounds {
        seen.store(0, Ordering::SeqCst);
        target.store(round, Ordering::SeqCst);
        let start = Instant::now();
        fa.update(patch(
            json!([{"op": "replace", "path": "/n", "value": round}]),
        ))
        .await
        .expect("an update");
        all_seen.notified().await;
        samples.push(start.elapsed());
    }
    let clients_label = format!("2 x {}", sizes.fanout_clients);
    report(
        &format!("fan-out to {clients_label} clients on two nodes: p50"),
        percentile(&mut samples, 0.5),
        "ms",
    );
    report(
        &format!("fan-out to {clients_label} clients on two nodes: p99"),
        percentile(&mut samples, 0.99),
        "ms",
    );
    let mut samples = raw_stream_latency(&client, 2, sizes.fanout_rounds).await;
    report(
        "raw XADD to 2 XREAD BLOCK readers: p50",
        percentile(&mut samples, 0.5),
        "ms",
    );
    report(
        "raw XADD to 2 XREAD BLOCK readers: p99",
        percentile(&mut samples, 0.99),
        "ms",
    );
    drop(clients);
    server_a.close().await;
    server_b.close().await;
    a.close().await;
    b.close().await;
}

/// Waits until `document` takes writes: synced, and past the settle
/// window that follows its first seed (ClusterOptions::reseed_settle).
async fn warm_up(document: &Document) {
    document.synced().await;
    document
        .update(patch(
            json!([{"op": "add", "path": "/warm", "value": true}]),
        ))
        .await
        .expect("a first write");
}

/// A server whose connections join `document`'s group; the members kept.
async fn serve(document: &Document, expect: usize) -> (Server, Arc<Mutex<Vec<Connection>>>) {
    let members = Arc::new(Mutex::new(Vec::with_capacity(expect)));
    let (group, kept) = (document.group().clone(), members.clone());
    let server = juggler_tokio::listen(
        "127.0.0.1",
        0,
        move |connection| {
            let _ = group.join(&connection);
            kept.lock().expect("not poisoned").push(connection);
        },
        ServerOptions::default().autoflush_delay(Some(Duration::ZERO)),
    )
    .await
    .expect("a server");
    (server, members)
}

/// Waits until `count` connections joined (polled: the accept callback
/// has no event to await, and this is setup, not a measurement).
async fn wait_joined(members: &Mutex<Vec<Connection>>, count: usize) {
    while members.lock().expect("not poisoned").len() < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `rounds` times: `XADD` on one connection, until each of `readers`
/// blocked `XREAD`s on their own connections returns it.
async fn raw_stream_latency(
    client: &redis::Client,
    readers: usize,
    rounds: usize,
) -> Vec<Duration> {
    let key = format!("raw:{{lat{readers}}}:log");
    let mut writer = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    let mut samples = Vec::new();
    for round in 1..=rounds {
        let mut waits = Vec::new();
        for _ in 0..readers {
            let mut reader = client
                .get_multiplexed_async_connection()
                .await
                .expect("a connection");
            let _: () = redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg("raw-reader")
                .query_async(&mut reader)
                .await
                .expect("CLIENT SETNAME");
            let key = key.clone();
            waits.push(tokio::spawn(async move {
                let reply: redis::Value = redis::cmd("XREAD")
                    .arg("BLOCK")
                    .arg(0)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(format!("{}-0", round - 1))
                    .query_async(&mut reader)
                    .await
                    .expect("XREAD");
                assert!(!matches!(reply, redis::Value::Nil));
            }));
        }
        // Each reader is blocked before the write (CLIENT LIST shows them,
        // named, with the `b` flag).
        loop {
            let list: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut writer)
                .await
                .expect("CLIENT LIST");
            let blocked = list
                .lines()
                .filter(|line| line.contains(" name=raw-reader ") && line.contains(" flags=b "))
                .count();
            if blocked >= readers {
                break;
            }
            tokio::task::yield_now().await;
        }
        let start = Instant::now();
        let _: String = redis::cmd("XADD")
            .arg(&key)
            .arg(format!("{round}-0"))
            .arg("p")
            .arg(round)
            .query_async(&mut writer)
            .await
            .expect("XADD");
        for wait in waits {
            wait.await.expect("a reader");
        }
        samples.push(start.elapsed());
    }
    samples
}
