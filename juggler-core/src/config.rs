//! The settings of the 0.5 [`Engine`](crate::Engine) and the autoflush
//! policy every generation shares.

use std::time::Duration;

/// When local data changes are sent to the peer (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoflushPolicy {
    /// Every change is sent at once, as its own DATA frame.
    Immediate,
    /// The first change after a sync opens a deadline this far ahead; at the
    /// deadline one DATA frame carries everything changed since.
    Delayed(Duration),
    /// Nothing is sent until [`Engine::flush_local_data`](crate::Engine::flush_local_data).
    Manual,
}

impl AutoflushPolicy {
    /// The reference API's `autoflush_delay`: `None` is manual, zero is
    /// immediate, anything else a delay.
    pub fn from_delay(delay: Option<Duration>) -> Self {
        match delay {
            None => AutoflushPolicy::Manual,
            Some(delay) if delay.is_zero() => AutoflushPolicy::Immediate,
            Some(delay) => AutoflushPolicy::Delayed(delay),
        }
    }

    /// The inverse of [`AutoflushPolicy::from_delay`].
    pub fn delay(self) -> Option<Duration> {
        match self {
            AutoflushPolicy::Immediate => Some(Duration::ZERO),
            AutoflushPolicy::Delayed(delay) => Some(delay),
            AutoflushPolicy::Manual => None,
        }
    }
}

impl Default for AutoflushPolicy {
    /// 0.2 s, as in the reference.
    fn default() -> Self {
        AutoflushPolicy::Delayed(Duration::from_millis(200))
    }
}

/// Settings of one [`Engine`](crate::Engine).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// When local data changes go out. Default: delayed by 0.2 s.
    pub autoflush: AutoflushPolicy,
    /// Most operations one incoming DATA frame may carry. Default: 1,048,576.
    pub max_patch_operations: usize,
    /// Most DATA frames that may wait in a row at the end of the outgoing
    /// queue (a peer that lags); past it they collapse into one frame that
    /// replaces the peer's whole remote data with the current local data.
    /// State is state: only the latest matters. Default: 64.
    pub max_queued_data_frames: usize,
    /// Most bytes the remote data may take, decoded (an estimate, see
    /// [`apply_within`](crate::apply_within)): a DATA frame that would
    /// take it past this is refused whole with
    /// [`ProtocolError::RemoteDataTooLarge`](crate::ProtocolError::RemoteDataTooLarge). Default: 16 MiB.
    pub max_remote_data_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            autoflush: AutoflushPolicy::default(),
            max_patch_operations: 1 << 20,
            max_queued_data_frames: 64,
            max_remote_data_size: 16 << 20,
        }
    }
}

impl Config {
    /// The default configuration with the given autoflush policy.
    pub fn with_autoflush(autoflush: AutoflushPolicy) -> Self {
        Config {
            autoflush,
            ..Config::default()
        }
    }
}
