//! The juggler-rs demo: a small page kept live by a Rust back end.
//!
//! Every connected page gets the same shared state: the server's clock
//! (ticking every second), the number of connected clients, a shared
//! counter and the names of everyone connected. One `/ws` serves every
//! generation, told apart by the client's first frame:
//!
//! - 0.5 (`index.html`): the state is the page's remote data; the page
//!   syncs its visitor's name as local data and calls two actions over
//!   RPC, `increment(n)` and `reverse(text)`;
//! - 0.6 and 0.7 (`v07.html`): the state is the connection's state; the
//!   name and the actions are requests: `set_name`, `increment`,
//!   `reverse`.
//!
//! Run it with `cargo run --example demo`. With `JUGGLER_DEMO_REDIS` set
//! to a Redis URL (`redis://127.0.0.1:6379`), every demo process on that
//! Redis shows one state ([`Demo::start_clustered`]): the counter is a
//! juggler-redis document, and the names and client count are each
//! process's presence part.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use juggler_redis::{Cluster, ClusterOptions, Document, Presence};
use juggler_rpc::{Actions, RpcConnection};
use juggler_tokio::axum::{routing::get, Router};
use juggler_tokio::v07::{Handlers, RequestError};
use juggler_tokio::{listen_with_routes, Connection, Error, Group, Server, ServerOptions};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// The folder of the demo page.
pub fn www_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/www"))
}

/// The process's Prometheus recorder: installed by the first demo, shared
/// by any later one in the same process (a process has one recorder).
fn prometheus() -> Result<&'static PrometheusHandle, Error> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    if HANDLE.set(handle).is_ok() {
        metrics::set_global_recorder(recorder)
            .map_err(|err| Error::Config(format!("metrics recorder: {err}")))?;
    }
    Ok(HANDLE.get().expect("set above"))
}

/// What every connection shares.
struct State {
    /// The pages: each shows the group's state, diffed and encoded once
    /// per change for all of them.
    pages: Group,
    counter: i64,
    /// Connected pages by connection id, with the name each one synced.
    names: BTreeMap<u64, String>,
    /// The other demo processes on one Redis, if clustered.
    cluster: Option<Clustered>,
}

/// What a clustered demo shares with the other processes.
#[derive(Clone)]
struct Clustered {
    cluster: Cluster,
    /// `{"counter": n}`.
    document: Document,
    /// Each process's part: `{"names": [...]}`.
    presence: Presence,
    /// The names this process last put in its part.
    shown: Arc<Mutex<Vec<String>>>,
}

impl State {
    fn snapshot(&self) -> Value {
        let mut names: Vec<String> = self.names.values().cloned().collect();
        let counter = match &self.cluster {
            None => self.counter,
            Some(clustered) => {
                // This process's names as they are now, the others' as
                // their last heartbeat or change said.
                let own = clustered.cluster.node_id();
                for (node, part) in clustered.presence.parts() {
                    if node != own {
                        let theirs = part["names"].as_array().cloned().unwrap_or_default();
                        names.extend(theirs.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                }
                clustered.document.state()["counter"].as_i64().unwrap_or(0)
            }
        };
        json!({
            "time": clock_text(SystemTime::now()),
            "clients": names.len(),
            "counter": counter,
            "names": names,
        })
    }

    /// Puts this process's names in its presence part, if they changed.
    fn share_names(&self) {
        if let Some(clustered) = &self.cluster {
            let names: Vec<String> = self.names.values().cloned().collect();
            let mut shown = clustered
                .shown
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *shown != names {
                clustered.presence.set(&json!({ "names": names }));
                *shown = names;
            }
        }
    }
}

/// `HH:MM:SS UTC` of a point in time.
fn clock_text(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The running demo.
pub struct Demo {
    server: Server,
    state: Arc<Mutex<State>>,
    messages: broadcast::Sender<Value>,
    ticker: tokio::task::JoinHandle<()>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends the current shared state to every page: one diff and one encoded
/// frame for all of them.
fn publish(state: &Shared) {
    let state = lock(state);
    state.share_names();
    state.pages.set_state(state.snapshot());
}

fn actions(state: &Shared) -> Actions {
    let counter_state = state.clone();
    Actions::new()
        .action("increment", move |args: Vec<Value>| {
            let state = counter_state.clone();
            async move {
                let by = args
                    .first()
                    .and_then(Value::as_i64)
                    .ok_or("increment takes one integer")?;
                Ok::<_, String>(json!(increment(&state, by).await?))
            }
        })
        .action("reverse", |args: Vec<Value>| async move {
            let text = args
                .first()
                .and_then(Value::as_str)
                .ok_or("reverse takes one string")?;
            Ok::<_, &str>(json!(text.chars().rev().collect::<String>()))
        })
}

/// Counts a new page, `id` (its connection's, unique across
/// generations), as "guest" and makes it a member of the pages: the state
/// that counts it is its first view (a page that closed already is simply
/// not a member).
fn join(state: &Shared, id: u64, page: &impl juggler_tokio::GroupMember) {
    let mut locked = lock(state);
    locked.names.insert(id, "guest".into());
    locked.share_names();
    locked.pages.set_state(locked.snapshot());
    let _ = locked.pages.join(page);
}

/// Sets the name of page `id`, at most 40 characters.
fn rename(state: &Shared, id: u64, name: &str) {
    let name: String = name.chars().take(40).collect();
    if let Some(entry) = lock(state).names.get_mut(&id) {
        *entry = name;
    }
    publish(state);
}

/// Adds `by` to the counter; the counter then. Clustered, the counter is
/// the cluster document's, changed by read-modify-write (it fails while
/// Redis is unreachable).
async fn increment(state: &Shared, by: i64) -> Result<i64, String> {
    let clustered = lock(state).cluster.clone();
    if let Some(clustered) = clustered {
        let (_, document) = clustered
            .document
            .modify(|document| {
                let counter = document["counter"].as_i64().unwrap_or(0);
                let value = json!([{
                    "op": "add", "path": "/counter", "value": counter.saturating_add(by)
                }]);
                serde_json::from_value(value).unwrap_or_default()
            })
            .await
            .map_err(|err| err.to_string())?;
        publish(state);
        return Ok(document["counter"].as_i64().unwrap_or(0));
    }
    let counter = {
        let mut state = lock(state);
        state.counter = state.counter.saturating_add(by);
        state.counter
    };
    publish(state);
    Ok(counter)
}

/// A 0.6/0.7 page: joins the pages, and its requests are the 0.5 page's
/// name sync and actions.
fn accept_v07(state: &Shared, connection: juggler_tokio::v07::Connection) {
    let id = connection.id();
    join(state, id, &connection);
    let state = state.clone();
    tokio::spawn(async move {
        connection.wait_closed().await;
        lock(&state).names.remove(&id);
        publish(&state);
    });
}

/// The requests of 0.6/0.7 pages.
fn handlers(state: &Shared, messages: &broadcast::Sender<Value>) -> Handlers {
    let (connections, requests, messages) = (state.clone(), state.clone(), messages.clone());
    Handlers::new()
        .on_connection(move |connection| accept_v07(&connections, connection))
        .on_request(move |connection, name, data| {
            let (state, messages) = (requests.clone(), messages.clone());
            async move {
                match name.as_str() {
                    "increment" => {
                        let by = data.as_i64().ok_or("increment takes one integer")?;
                        Ok(json!(increment(&state, by)
                            .await
                            .map_err(RequestError::new)?))
                    }
                    "reverse" => {
                        let text = data.as_str().ok_or("reverse takes one string")?;
                        Ok(json!(text.chars().rev().collect::<String>()))
                    }
                    "set_name" => {
                        rename(&state, connection.id(), data.as_str().unwrap_or("guest"));
                        Ok(Value::Null)
                    }
                    "selftest" => {
                        let _ = messages.send(data);
                        Ok(Value::Null)
                    }
                    other => Err(RequestError::new(format!("no request {other}"))),
                }
            }
        })
}

fn accept(state: &Shared, messages: &broadcast::Sender<Value>, connection: Connection) {
    let rpc = RpcConnection::new(connection, actions(state));
    let id = rpc.connection().id();
    join(state, id, rpc.connection());
    let (state, messages) = (state.clone(), messages.clone());
    tokio::spawn(async move {
        let mut changes = rpc.remote_changes();
        loop {
            tokio::select! {
                change = changes.changed() => {
                    let Ok(data) = change else { break };
                    let name = data.get("name").and_then(Value::as_str).unwrap_or("guest");
                    rename(&state, id, name);
                }
                message = rpc.receive() => {
                    let Ok(message) = message else { break };
                    let _ = messages.send(message);
                }
            }
        }
        lock(&state).names.remove(&id);
        publish(&state);
    });
}

impl Demo {
    /// Starts the demo server on `host:port` (`0` picks a free port).
    pub async fn start(host: &str, port: u16) -> Result<Demo, Error> {
        Demo::start_clustered(host, port, None).await
    }

    /// Starts the demo server; with `redis` (a URL), one state with every
    /// other demo process on that Redis: the counter, the names and the
    /// client count. Fails if that Redis cannot be reached.
    pub async fn start_clustered(
        host: &str,
        port: u16,
        redis: Option<&str>,
    ) -> Result<Demo, Error> {
        let cluster = match redis {
            None => None,
            Some(url) => Some(join_cluster(url).await?),
        };
        let state: Shared = Arc::new(Mutex::new(State {
            pages: Group::new(Value::Null),
            counter: 0,
            names: BTreeMap::new(),
            cluster: cluster.clone(),
        }));
        if let Some(clustered) = cluster {
            follow_cluster(&state, clustered);
        }
        let (messages, _) = broadcast::channel(64);
        // With 0.7 handlers the server tells the generations apart on one
        // /ws. A 0.5 page speaks first (its name, 0.1 s after it opens); a
        // client silent for 1 s is taken for a listening 0.5 one.
        let options = ServerOptions::default()
            .static_dir(www_dir())
            .autoflush_delay(Some(Duration::ZERO))
            .v07_handlers(handlers(&state, &messages));
        let metrics = prometheus()?;
        let routes = Router::new().route(
            "/metrics",
            get(move || async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }),
        );
        let server = {
            let (state, messages) = (state.clone(), messages.clone());
            listen_with_routes(
                host,
                port,
                move |connection| accept(&state, &messages, connection),
                options,
                routes,
            )
            .await?
        };
        let ticker = {
            let state = state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    publish(&state);
                }
            })
        };
        Ok(Demo {
            server,
            state,
            messages,
            ticker,
        })
    }

    /// The address of its metrics, in Prometheus text format.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.server.local_addr())
    }

    /// The address of its WebSocket endpoint.
    pub fn ws_url(&self) -> &str {
        self.server.url()
    }

    /// The page's address.
    pub fn page_url(&self) -> String {
        format!("http://{}/index.html", self.server.local_addr())
    }

    /// The shared counter.
    pub fn counter(&self) -> i64 {
        let state = lock(&self.state);
        match &state.cluster {
            Some(clustered) => clustered.document.state()["counter"].as_i64().unwrap_or(0),
            None => state.counter,
        }
    }

    /// What every page shows now, the clock aside.
    pub fn shown(&self) -> Value {
        let mut shown = lock(&self.state).snapshot();
        if let Some(shown) = shown.as_object_mut() {
            shown.remove("time");
        }
        shown
    }

    /// Messages pages send that are not RPC (the page's self-test reports).
    pub fn page_messages(&self) -> broadcast::Receiver<Value> {
        self.messages.subscribe()
    }

    /// Stops ticking and closes every connection (and leaves the
    /// cluster, if clustered).
    pub async fn close(self) {
        self.ticker.abort();
        self.server.close().await;
        let clustered = lock(&self.state).cluster.clone();
        if let Some(clustered) = clustered {
            clustered.cluster.close().await;
        }
    }
}

/// Joins the demo cluster on the Redis at `url`.
async fn join_cluster(url: &str) -> Result<Clustered, Error> {
    let cluster = Cluster::connect(
        url,
        juggler_tokio::runtime(),
        ClusterOptions::default().prefix("juggler-demo"),
    )
    .await
    .map_err(|err| Error::Config(format!("redis at {url}: {err}")))?;
    let document = cluster.document("demo", json!({ "counter": 0 }));
    let presence = cluster.presence("pages");
    presence.set(&json!({ "names": [] }));
    tracing::info!(url, node = cluster.node_id(), "demo: clustered on Redis");
    Ok(Clustered {
        cluster,
        document,
        presence,
        shown: Arc::default(),
    })
}

/// Shows the pages every change of the cluster's counter and names.
fn follow_cluster(state: &Shared, clustered: Clustered) {
    let mut changes = clustered.document.changes();
    let pages = state.clone();
    tokio::spawn(async move {
        while changes.next().await.is_some() {
            publish(&pages);
        }
    });
    let mut changes = clustered.presence.changes();
    let pages = state.clone();
    tokio::spawn(async move {
        while changes.next().await.is_some() {
            publish(&pages);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_is_utc_wall_time() {
        let time = UNIX_EPOCH + Duration::from_secs(86_400 * 365 + 3600 * 13 + 60 * 7 + 9);
        assert_eq!(clock_text(time), "13:07:09 UTC");
    }
}
