//! Cluster-wide groups: a message sent on any node reaches the group's
//! members on every node, over Redis pub/sub.

use std::fmt;
use std::sync::Arc;

use juggler_driver::{Group, Value};
use serde_json::json;
use tokio::sync::mpsc;

use crate::bus::Handler;
use crate::cluster::ClusterShared;
use crate::Error;

/// How many received messages wait for a group's members before more
/// are dropped.
const QUEUE: usize = 1024;

/// A group whose messages reach its members on every node.
///
/// [`send`](Self::send) (to 0.5 members) and [`notify`](Self::notify) (to
/// 0.6/0.7 members) publish on the group's Redis channel; every node
/// subscribed then, the sender included, hands the message to the members
/// of its local [`group`](Self::group). Delivery is **at most once**:
/// a node cut off from Redis while a message is published never gets it,
/// and a node whose queue is full (1,024 messages) drops it. Messages
/// from one node arrive in the order sent. For state that must not be
/// missed, use a [`Document`](crate::Document). A clone is the same group.
#[derive(Clone)]
pub struct ClusterGroup {
    shared: Arc<GroupShared>,
}

struct GroupShared {
    cluster: Arc<ClusterShared>,
    name: String,
    channel: String,
    group: Group,
}

impl fmt::Debug for ClusterGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterGroup")
            .field("name", &self.shared.name)
            .field("local_members", &self.shared.group.member_count())
            .finish()
    }
}

impl ClusterGroup {
    pub(crate) fn start(cluster: Arc<ClusterShared>, name: &str) -> ClusterGroup {
        let channel = cluster.key("chan", name, ":group");
        let group = Group::new(Value::Null);
        let (queue, mut received) = mpsc::channel::<Vec<u8>>(QUEUE);
        cluster.bus.register(channel.clone(), Handler::Group(queue));
        let members = group.clone();
        cluster.runtime.spawn(Box::pin(async move {
            while let Some(payload) = received.recv().await {
                deliver(&members, &payload).await;
            }
        }));
        ClusterGroup {
            shared: Arc::new(GroupShared {
                cluster,
                name: name.to_owned(),
                channel,
                group,
            }),
        }
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// This node's members: join connections to it.
    pub fn group(&self) -> &Group {
        &self.shared.group
    }

    /// Sends `message` to every 0.5 member on every node; returns once
    /// Redis has it, with how many nodes were subscribed. Fails at once
    /// with [`Error::Unavailable`] while Redis is unreachable.
    pub async fn send(&self, message: &Value) -> Result<usize, Error> {
        self.publish(json!({"send": message})).await
    }

    /// Sends the notification `name` with `data` to every 0.6/0.7 member
    /// on every node; as [`send`](Self::send).
    pub async fn notify(&self, name: &str, data: &Value) -> Result<usize, Error> {
        self.publish(json!({"notify": name, "data": data})).await
    }

    async fn publish(&self, payload: Value) -> Result<usize, Error> {
        let cluster = &self.shared.cluster;
        let mut connection = cluster.link.connection()?;
        let nodes: usize = redis::cmd("PUBLISH")
            .arg(&self.shared.channel)
            .arg(payload.to_string())
            .query_async(&mut connection)
            .await
            .map_err(|err| cluster.link.failed(err))?;
        Ok(nodes)
    }
}

/// Hands one received payload to the local members; a payload this crate
/// did not write is dropped.
async fn deliver(members: &Group, payload: &[u8]) {
    let Ok(Value::Object(mut payload)) = serde_json::from_slice::<Value>(payload) else {
        tracing::warn!("juggler-redis: a group message that is not ours; dropped");
        return;
    };
    if let Some(message) = payload.remove("send") {
        members.send(&message).await;
    } else if let Some(Value::String(name)) = payload.remove("notify") {
        let data = payload.remove("data").unwrap_or(Value::Null);
        members.notify(&name, &data).await;
    }
}
