//! How a node talks to Redis.

use std::time::Duration;

use juggler_driver::Backoff;

/// Options of a [`Cluster`](crate::Cluster).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// The prefix of every key and channel. Default `juggler`.
    pub prefix: String,
    /// Roughly how many entries a document's stream keeps (`MAXLEN ~`).
    /// Default 1,000.
    pub max_stream_len: u64,
    /// A writer stores a snapshot after this many versions since the
    /// last. Default 100.
    pub snapshot_every: u64,
    /// The reconnect schedule. Default: 50 ms doubling up to 2 s.
    pub backoff: Backoff,
    /// How long a node waits for one answer. Default 2 s.
    pub response_timeout: Duration,
    /// How long a blocking stream read waits before it checks the
    /// document's epoch. Default 1 s.
    pub block: Duration,
    /// How long a write waits to see its own change come back. Default
    /// 10 s; then it fails with [`Error::Unconfirmed`](crate::Error).
    pub write_timeout: Duration,
    /// After Redis comes back empty and a node re-seeds a document, writes
    /// wait this long, so that every node can offer a more advanced copy
    /// first. Default 1 s.
    pub reseed_settle: Duration,
    /// How long a node's presence lives without a heartbeat. Default 15 s
    /// (a heartbeat every third of it), so a dead node drops out within
    /// 20 s.
    pub presence_ttl: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            prefix: "juggler".into(),
            max_stream_len: 1000,
            snapshot_every: 100,
            backoff: Backoff::default()
                .initial_delay(Duration::from_millis(50))
                .max_delay(Duration::from_secs(2)),
            response_timeout: Duration::from_secs(2),
            block: Duration::from_secs(1),
            write_timeout: Duration::from_secs(10),
            reseed_settle: Duration::from_secs(1),
            presence_ttl: Duration::from_secs(15),
        }
    }
}

impl ClusterOptions {
    /// Sets the key prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Sets the stream's approximate length (at least 10).
    #[must_use]
    pub fn max_stream_len(mut self, len: u64) -> Self {
        self.max_stream_len = len.max(10);
        self
    }
    /// Sets how many versions pass between snapshots (at least 1).
    #[must_use]
    pub fn snapshot_every(mut self, versions: u64) -> Self {
        self.snapshot_every = versions.max(1);
        self
    }
    /// Sets the reconnect schedule.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
    /// Sets how long a write waits to see itself applied.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }
    /// Sets how long writes wait after a re-seed.
    #[must_use]
    pub fn reseed_settle(mut self, settle: Duration) -> Self {
        self.reseed_settle = settle;
        self
    }
    /// Sets the presence TTL (at least 300 ms).
    #[must_use]
    pub fn presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl.max(Duration::from_millis(300));
        self
    }
    /// Sets how long a blocking read waits (at least 10 ms).
    #[must_use]
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(10));
        self
    }
}
