//! Presence: each node's part (say, who is connected to it), kept in
//! Redis under a heartbeat, so that a node that dies without a word drops
//! out once its TTL passes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::{select, Either};
use juggler_driver::Value;
use tokio::sync::{watch, Notify};

use crate::bus::Handler;
use crate::cluster::ClusterShared;
use crate::scripts::PRESENCE;
use crate::Error;

/// Every node's part, by node id.
pub type Parts = BTreeMap<String, Value>;

/// Each node's part of a shared picture, alive while the node is.
///
/// [`set`](Self::set) gives this node's part; every node sees all parts
/// ([`parts`](Self::parts), [`changes`](Self::changes)). A node renews its
/// part every third of [`ClusterOptions::presence_ttl`](crate::ClusterOptions)
/// and refreshes on every change announced over pub/sub; a part not
/// renewed within the TTL is dropped by the next node that looks (so a
/// node that dies drops out within the TTL plus a heartbeat). While Redis
/// is unreachable the last parts stay. A clone is the same presence.
#[derive(Clone)]
pub struct Presence {
    shared: Arc<PresenceShared>,
}

struct PresenceShared {
    cluster: Arc<ClusterShared>,
    name: String,
    parts_key: String,
    deadlines_key: String,
    channel: String,
    own: Mutex<Option<String>>,
    kick: Arc<Notify>,
    view: watch::Sender<Parts>,
}

impl fmt::Debug for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Presence")
            .field("name", &self.shared.name)
            .field("nodes", &self.shared.view.borrow().len())
            .finish()
    }
}

impl Presence {
    pub(crate) fn start(cluster: Arc<ClusterShared>, name: &str) -> Presence {
        let kick = Arc::new(Notify::new());
        let channel = cluster.key("chan", name, ":presence");
        cluster
            .bus
            .register(channel.clone(), Handler::Presence(kick.clone()));
        let (view, _) = watch::channel(Parts::new());
        let shared = Arc::new(PresenceShared {
            parts_key: cluster.key("presence", name, ":parts"),
            deadlines_key: cluster.key("presence", name, ":deadlines"),
            cluster,
            name: name.to_owned(),
            channel,
            own: Mutex::new(None),
            kick,
            view,
        });
        let running = shared.clone();
        shared
            .cluster
            .runtime
            .spawn(Box::pin(async move { running.run().await }));
        Presence { shared }
    }

    /// Sets this node's part; sent at once in the background, and renewed
    /// until the node closes.
    pub fn set(&self, part: &Value) {
        *self
            .shared
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(part.to_string());
        self.shared.kick.notify_one();
    }

    /// Every node's part as this node last saw them, by node id.
    pub fn parts(&self) -> Parts {
        self.shared.view.borrow().clone()
    }

    /// Changes of the parts, from now on.
    pub fn changes(&self) -> PresenceChanges {
        let mut receiver = self.shared.view.subscribe();
        receiver.mark_unchanged();
        PresenceChanges { receiver }
    }

    /// Removes this node's part at once (best effort; else it expires).
    pub(crate) async fn leave(&self) {
        *self
            .shared
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        if let Err(err) = self.shared.exchange("del").await {
            tracing::debug!(%err, "juggler-redis: could not remove the presence part");
        }
    }
}

impl PresenceShared {
    async fn run(self: Arc<Self>) {
        let runtime = self.cluster.runtime.clone();
        let heartbeat = self.cluster.options.presence_ttl / 3;
        let mut closed = self.cluster.closed.subscribe();
        loop {
            let mode = if self
                .own
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_some()
            {
                "put"
            } else {
                "read"
            };
            if let Err(err) = self.exchange(mode).await {
                tracing::debug!(%err, presence = self.name, "juggler-redis: presence heartbeat failed");
            }
            let wait = select(
                Box::pin(self.kick.notified()),
                runtime.sleep_until(runtime.now() + heartbeat),
            );
            let stop = closed.wait_for(|closed| *closed);
            if let Either::Right(_) = select(Box::pin(wait), Box::pin(stop)).await {
                return;
            }
        }
    }

    /// Runs the presence script and takes the parts it returns.
    async fn exchange(&self, mode: &str) -> Result<(), Error> {
        let mut connection = self.cluster.link.connection()?;
        let own = self
            .own
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        let mode = if mode == "put" && own.is_empty() {
            "read"
        } else {
            mode
        };
        let ttl = self
            .cluster
            .options
            .presence_ttl
            .max(Duration::from_millis(1));
        let flat: Vec<String> = PRESENCE
            .key(&self.parts_key)
            .key(&self.deadlines_key)
            .arg(&self.cluster.node)
            .arg(own)
            .arg(ttl.as_millis() as u64)
            .arg(mode)
            .arg(&self.channel)
            .invoke_async(&mut connection)
            .await
            .map_err(|err| self.cluster.link.failed(err))?;
        let parts: Parts = flat
            .chunks(2)
            .filter_map(|pair| match pair {
                [node, part] => Some((node.clone(), serde_json::from_str(part).ok()?)),
                _ => None,
            })
            .collect();
        self.view.send_if_modified(|view| {
            if *view == parts {
                false
            } else {
                *view = parts;
                true
            }
        });
        Ok(())
    }
}

/// Changes of a [`Presence`]'s parts.
#[derive(Debug)]
pub struct PresenceChanges {
    receiver: watch::Receiver<Parts>,
}

impl PresenceChanges {
    /// The parts after their next change; `None` once the presence is
    /// gone.
    pub async fn next(&mut self) -> Option<Parts> {
        self.receiver.changed().await.ok()?;
        Some(self.receiver.borrow_and_update().clone())
    }
}
