//! A node's handle on the cluster: its connections and what it shares.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, PoisonError};

use juggler_driver::{Group, Runtime, Value};
use redis::Client;
use tokio::sync::watch;

use crate::bus::Bus;
use crate::document::{DocShared, Document};
use crate::groups::ClusterGroup;
use crate::link::{connect, random_u64, Link};
use crate::presence::Presence;
use crate::{ClusterOptions, Error, View};

/// This process's node of a cluster of juggler-rs servers on one Redis.
///
/// It hands out [`Document`]s (one JSON document every node mirrors),
/// [`ClusterGroup`]s (messages to members on every node) and
/// [`Presence`] (each node's part, dropped when the node dies). It works
/// on any runtime juggler-rs runs on: pass `juggler_tokio::runtime()` or
/// `juggler_smol::runtime()`. A clone is the same node.
///
/// ```no_run
/// # async fn demo() -> Result<(), juggler_redis::Error> {
/// use juggler_redis::{Cluster, ClusterOptions};
/// use serde_json::json;
///
/// let cluster = Cluster::connect(
///     "redis://127.0.0.1:6379",
///     juggler_tokio::runtime(),
///     ClusterOptions::default(),
/// )
/// .await?;
/// let board = cluster.document("board", json!({"counter": 0}));
/// board.synced().await;
/// // In a server's on_connection: board.group().join(&connection)
/// board
///     .modify(|doc| {
///         let counter = doc["counter"].as_i64().unwrap_or(0);
///         serde_json::from_value(json!([
///             {"op": "replace", "path": "/counter", "value": counter + 1}
///         ]))
///         .unwrap_or_default()
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    shared: Arc<ClusterShared>,
}

/// What every part of a node shares.
pub(crate) struct ClusterShared {
    pub(crate) client: Client,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) options: ClusterOptions,
    pub(crate) link: Arc<Link>,
    pub(crate) node: String,
    pub(crate) closed: watch::Sender<bool>,
    pub(crate) bus: Arc<Bus>,
    documents: Mutex<HashMap<String, Document>>,
    groups: Mutex<HashMap<String, ClusterGroup>>,
    presences: Mutex<HashMap<String, Presence>>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.shared.node)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl ClusterShared {
    /// The key or channel `parts` under the prefix, with `name` as the
    /// hash tag (so that one document's keys share a Redis Cluster slot).
    pub(crate) fn key(&self, kind: &str, name: &str, part: &str) -> String {
        format!("{}:{kind}:{{{name}}}{part}", self.options.prefix)
    }
}

impl Cluster {
    /// Connects to the Redis at `url` (`redis://host:port/db`), failing
    /// if it cannot be reached now; afterwards the node reconnects by
    /// itself whenever the connection breaks.
    pub async fn connect(
        url: &str,
        runtime: Arc<dyn Runtime>,
        options: ClusterOptions,
    ) -> Result<Cluster, Error> {
        // Small requests and replies: no Nagle delay on them.
        let info = redis::IntoConnectionInfo::into_connection_info(url)?
            .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
        let client = Client::open(info)?;
        let connection = connect(&client, &options, None).await?;
        let link = Link::new(client.clone(), runtime.clone(), options.clone(), connection);
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(ClusterShared {
            client,
            runtime,
            options,
            link,
            node: format!("{:016x}", random_u64()),
            closed,
            bus: Arc::new(Bus::default()),
            documents: Mutex::default(),
            groups: Mutex::default(),
            presences: Mutex::default(),
        });
        let bus = shared.bus.clone();
        let running = shared.clone();
        shared
            .runtime
            .spawn(Box::pin(async move { bus.run(running).await }));
        Ok(Cluster { shared })
    }

    /// This node's id: random, new for each [`connect`](Self::connect).
    pub fn node_id(&self) -> &str {
        &self.shared.node
    }

    /// Whether the command connection is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.link.is_up()
    }

    /// Waits until the node's pub/sub connection is subscribed (cluster
    /// group messages published before then do not reach this node).
    pub async fn subscribed(&self) {
        loop {
            let ready = self.shared.bus.ready.notified();
            if self.shared.bus.is_subscribed() {
                return;
            }
            ready.await;
        }
    }

    /// The document `name`, mirrored on this node from now on. `initial`
    /// is its state until the node has caught up, and the seed if Redis
    /// does not have the document. Asking again for the same name gives
    /// the same document (and ignores `initial`).
    pub fn document(&self, name: &str, initial: Value) -> Document {
        let mut documents = lock(&self.shared.documents);
        if let Some(document) = documents.get(name) {
            return document.clone();
        }
        let initial = Arc::new(initial);
        let (view, _) = watch::channel(View::initial(initial.clone()));
        let doc = Arc::new(DocShared {
            cluster: self.shared.clone(),
            name: name.to_owned(),
            snap: self.shared.key("doc", name, ":snap"),
            log: self.shared.key("doc", name, ":log"),
            group: Group::new(initial),
            view,
            synced: AtomicBool::new(false),
            saved: AtomicU64::new(0),
        });
        let follower = doc.clone();
        self.shared
            .runtime
            .spawn(Box::pin(crate::follower::run(follower)));
        let document = Document { shared: doc };
        documents.insert(name.to_owned(), document.clone());
        document
    }

    /// The cluster-wide group `name`: what is sent to it reaches its
    /// members on every node (at most once; see [`ClusterGroup`]).
    pub fn group(&self, name: &str) -> ClusterGroup {
        let mut groups = lock(&self.shared.groups);
        if let Some(group) = groups.get(name) {
            return group.clone();
        }
        let group = ClusterGroup::start(self.shared.clone(), name);
        groups.insert(name.to_owned(), group.clone());
        group
    }

    /// The presence `name`: each node's part, kept alive by heartbeats.
    pub fn presence(&self, name: &str) -> Presence {
        let mut presences = lock(&self.shared.presences);
        if let Some(presence) = presences.get(name) {
            return presence.clone();
        }
        let presence = Presence::start(self.shared.clone(), name);
        presences.insert(name.to_owned(), presence.clone());
        presence
    }

    /// Leaves the cluster: removes this node's presence parts, stops
    /// following and reconnecting. Documents keep their last copy.
    pub async fn close(&self) {
        let presences: Vec<Presence> = lock(&self.shared.presences).values().cloned().collect();
        for presence in presences {
            presence.leave().await;
        }
        self.shared.closed.send_replace(true);
        self.shared.link.close();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
