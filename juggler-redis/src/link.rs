//! The node's shared connection for commands: up, or down and coming
//! back with backoff in the background. Callers never wait for it: a
//! command while it is down fails at once with [`Error::Unavailable`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use juggler_driver::Runtime;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};
use tokio::sync::watch;

use crate::{ClusterOptions, Error};

/// Connects, with the options' timeouts; `response` overrides the answer
/// timeout (blocking reads need a longer one).
pub(crate) async fn connect(
    client: &Client,
    options: &ClusterOptions,
    response: Option<Duration>,
) -> Result<MultiplexedConnection, redis::RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(options.response_timeout))
        .set_response_timeout(Some(response.unwrap_or(options.response_timeout)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Sleeps on the node's runtime.
pub(crate) async fn sleep(runtime: &dyn Runtime, duration: Duration) {
    runtime.sleep_until(runtime.now() + duration).await;
}

/// A number from 0 to 1 that differs between calls, for jitter and ids.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// A random fraction in 0..1.
pub(crate) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// The command connection.
pub(crate) struct Link {
    client: Client,
    runtime: Arc<dyn Runtime>,
    options: ClusterOptions,
    state: Mutex<Option<MultiplexedConnection>>,
    /// Whether the link is up, for waiters.
    up: watch::Sender<bool>,
    reconnecting: AtomicBool,
    closed: AtomicBool,
}

impl Link {
    /// A link that starts with `connection`.
    pub(crate) fn new(
        client: Client,
        runtime: Arc<dyn Runtime>,
        options: ClusterOptions,
        connection: MultiplexedConnection,
    ) -> Arc<Link> {
        Arc::new(Link {
            client,
            runtime,
            options,
            state: Mutex::new(Some(connection)),
            up: watch::Sender::new(true),
            reconnecting: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    /// The connection now, or [`Error::Unavailable`] at once (and a
    /// reconnect starts if none is under way).
    pub(crate) fn connection(self: &Arc<Self>) -> Result<MultiplexedConnection, Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &*state {
            Some(connection) => Ok(connection.clone()),
            None => {
                drop(state);
                self.reconnect();
                Err(Error::Unavailable)
            }
        }
    }

    /// Whether the link is up now.
    pub(crate) fn is_up(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Reports a failed command: a lost connection is dropped and
    /// replaced in the background. Returns the error to give the caller.
    pub(crate) fn failed(self: &Arc<Self>, err: redis::RedisError) -> Error {
        if Error::is_connection_loss(&err) {
            tracing::warn!(%err, "juggler-redis: connection lost");
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = None;
            self.up.send_replace(false);
            self.reconnect();
        }
        Error::Redis(err)
    }

    /// Checks the connection with a `PING`, so that one that died while
    /// Redis was away is replaced before a write finds it dead (a write
    /// that finds it dead cannot tell whether it was applied); returns
    /// once the link is up.
    pub(crate) async fn check(self: &Arc<Self>) {
        if let Ok(mut connection) = self.connection() {
            let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
            if let Err(err) = pong {
                let _ = self.failed(err);
            }
        }
        self.wait_up().await;
    }

    /// Waits until the link is up (starting a reconnect if it is down).
    pub(crate) async fn wait_up(self: &Arc<Self>) {
        let mut up = self.up.subscribe();
        if self.connection().is_ok() {
            return;
        }
        let _ = up.wait_for(|up| *up).await;
    }

    /// Stops reconnecting; later commands fail with [`Error::Closed`].
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn reconnect(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::SeqCst) {
            return;
        }
        let link = self.clone();
        self.runtime.spawn(Box::pin(async move {
            let mut failed = 0u32;
            while !link.closed.load(Ordering::SeqCst) {
                sleep(
                    &*link.runtime,
                    link.options.backoff.delay(failed, random_unit()),
                )
                .await;
                match connect(&link.client, &link.options, None).await {
                    Ok(connection) => {
                        if !link.closed.load(Ordering::SeqCst) {
                            *link.state.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(connection);
                            link.up.send_replace(true);
                            tracing::info!("juggler-redis: reconnected");
                        }
                        break;
                    }
                    Err(err) => {
                        tracing::debug!(%err, "juggler-redis: reconnect failed");
                        failed = failed.saturating_add(1);
                    }
                }
            }
            link.reconnecting.store(false, Ordering::SeqCst);
        }));
    }
}
