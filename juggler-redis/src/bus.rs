//! The node's one pub/sub connection: it subscribes to every channel
//! under the prefix and hands each message to the group or presence that
//! registered that channel. Reconnects with backoff; what is published
//! while it is down is not seen (pub/sub keeps nothing).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};

use crate::cluster::ClusterShared;
use crate::link::{random_unit, sleep};

/// Where a channel's messages go.
#[derive(Clone)]
pub(crate) enum Handler {
    /// A cluster group's delivery queue (full: the message is dropped).
    Group(mpsc::Sender<Vec<u8>>),
    /// A presence to refresh.
    Presence(Arc<Notify>),
}

/// The channels this node listens to.
#[derive(Default)]
pub(crate) struct Bus {
    handlers: Mutex<HashMap<String, Handler>>,
    subscribed: AtomicBool,
    /// Woken each time the subscription is (re)made.
    pub(crate) ready: Notify,
}

impl Bus {
    /// Sends `channel`'s messages to `handler` from now on.
    pub(crate) fn register(&self, channel: String, handler: Handler) {
        self.handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(channel, handler);
    }

    /// Whether the node is subscribed now.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::SeqCst)
    }

    fn handler(&self, channel: &str) -> Option<Handler> {
        self.handlers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(channel)
            .cloned()
    }

    /// Listens until the cluster closes.
    pub(crate) async fn run(self: Arc<Self>, cluster: Arc<ClusterShared>) {
        let pattern = format!("{}:chan:*", cluster.options.prefix);
        let mut closed = cluster.closed.subscribe();
        let failed = std::sync::atomic::AtomicU32::new(0);
        loop {
            if *closed.borrow_and_update() {
                return;
            }
            let session = async {
                let mut pubsub = cluster.client.get_async_pubsub().await?;
                pubsub.psubscribe(&pattern).await?;
                failed.store(0, Ordering::SeqCst);
                self.subscribed.store(true, Ordering::SeqCst);
                self.ready.notify_waiters();
                // Presences refresh: they may have missed changes.
                for handler in self
                    .handlers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                {
                    if let Handler::Presence(kick) = handler {
                        kick.notify_one();
                    }
                }
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    let channel = message.get_channel_name().to_owned();
                    match self.handler(&channel) {
                        Some(Handler::Group(queue))
                            if queue
                                .try_send(message.get_payload_bytes().to_vec())
                                .is_err() =>
                        {
                            tracing::warn!(
                                channel,
                                "juggler-redis: a group's queue is full; a message is dropped"
                            );
                        }
                        Some(Handler::Group(_)) => {}
                        Some(Handler::Presence(kick)) => kick.notify_one(),
                        None => {}
                    }
                }
                Ok::<(), redis::RedisError>(())
            };
            let stop = closed.wait_for(|closed| *closed);
            let outcome = match select(Box::pin(session), Box::pin(stop)).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(_) => None,
            };
            self.subscribed.store(false, Ordering::SeqCst);
            match outcome {
                Some(result) => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "juggler-redis: pub/sub connection failed");
                    } else {
                        tracing::warn!("juggler-redis: pub/sub connection lost");
                    }
                    let rounds = failed.fetch_add(1, Ordering::SeqCst).saturating_add(1);
                    sleep(
                        &*cluster.runtime,
                        cluster.options.backoff.delay(rounds, random_unit()),
                    )
                    .await;
                }
                None => return,
            }
        }
    }
}
