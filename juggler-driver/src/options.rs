//! Connection settings shared by clients and servers of every runtime.

use std::time::Duration;

use juggler_core::AutoflushPolicy;

/// WebSocket ping/pong keep-alive (SPEC §1): a ping control frame every
/// `interval`; a peer that sends nothing for `timeout` after a ping is
/// taken for dead and the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// Time between pings. Default 20 s.
    pub interval: Duration,
    /// How long to wait for any frame after a ping. Default 20 s.
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
        }
    }
}

/// Settings of one connection. `Default` gives the reference's behaviour
/// (0.2 s autoflush delay) plus keep-alive and limits.
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::ConnectionOptions;
///
/// let options = ConnectionOptions::default()
///     .autoflush_delay(Some(Duration::ZERO))
///     .max_message_size(8 << 20);
/// assert_eq!(options.autoflush, juggler_driver::AutoflushPolicy::Immediate);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// When local data changes go out. Default: delayed 0.2 s.
    pub autoflush: AutoflushPolicy,
    /// Keep-alive; `None` turns it off. Default: on, 20 s / 20 s.
    pub keep_alive: Option<KeepAlive>,
    /// Largest incoming message (and WebSocket frame) in bytes, as text.
    /// Default 4 MiB, as aiohttp's (which the Python peers use) and a
    /// browser-facing server can afford per connection: decoded, a message
    /// may take up to about 16 times its text (see docs/security.md). Raise
    /// it on both peers for larger states.
    pub max_message_size: usize,
    /// Most operations in one incoming DATA frame. Default 1,048,576.
    pub max_patch_operations: usize,
    /// Most bytes the peer's data (`remote_data`) may take, decoded (an
    /// estimate, see `juggler_core::apply_within`); a DATA frame that would
    /// pass it closes the connection with
    /// `ProtocolError::RemoteDataTooLarge` (1009) and changes nothing.
    /// Default 16 MiB; raise it for a peer with a larger state.
    pub max_remote_data_size: usize,
    /// Most outgoing frames waiting for the socket; `send` waits (and
    /// `try_send` fails) while that many wait. Default 1024.
    pub max_send_queue: usize,
    /// Most bytes of outgoing frames waiting for the socket; `send` waits
    /// (and `try_send` fails) while that much waits. A frame shared by many
    /// connections counts whole in each. Default 16 MiB.
    pub max_send_queue_bytes: usize,
    /// Most DATA frames that wait in a row for a slow peer before they
    /// collapse into one frame carrying the current state. Default 64.
    pub max_queued_data_frames: usize,
    /// Most received messages waiting for `receive`; while that many wait,
    /// the connection stops reading from the socket (TCP backpressure).
    /// Default 1024.
    pub max_receive_queue: usize,
    /// Most bytes of received messages waiting for `receive`, counted
    /// decoded ([`value_cost`](juggler_core::value_cost)); while that much
    /// waits, the connection stops reading from the socket. It may be
    /// passed by one read (one message, or 1 MiB of text of small ones).
    /// Default 16 MiB.
    pub max_receive_bytes: usize,
    /// How long a closing connection waits for the peer's close handshake.
    /// Default 0.1 s, the reference's `shutdown_timeout`.
    pub close_timeout: Duration,
    /// Bytes read from the socket at a time. Every connection holds a buffer
    /// this big even when idle, so the default is small (4 KiB); it grows
    /// for larger frames.
    pub read_buffer_size: usize,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions {
            autoflush: AutoflushPolicy::default(),
            keep_alive: Some(KeepAlive::default()),
            max_message_size: 4 << 20,
            max_patch_operations: 1 << 20,
            max_remote_data_size: 16 << 20,
            max_send_queue: 1024,
            max_send_queue_bytes: 16 << 20,
            max_queued_data_frames: 64,
            max_receive_queue: 1024,
            max_receive_bytes: 16 << 20,
            close_timeout: Duration::from_millis(100),
            read_buffer_size: 4 << 10,
        }
    }
}

impl ConnectionOptions {
    /// Sets the autoflush policy the reference way: `None` manual, zero
    /// immediate, else delayed.
    #[must_use]
    pub fn autoflush_delay(mut self, delay: Option<Duration>) -> Self {
        self.autoflush = AutoflushPolicy::from_delay(delay);
        self
    }

    /// Sets the autoflush policy.
    #[must_use]
    pub fn autoflush(mut self, policy: AutoflushPolicy) -> Self {
        self.autoflush = policy;
        self
    }

    /// Sets or disables keep-alive.
    #[must_use]
    pub fn keep_alive(mut self, keep_alive: Option<KeepAlive>) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// Sets the largest incoming message size in bytes.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets the most operations accepted in one incoming DATA frame.
    #[must_use]
    pub fn max_patch_operations(mut self, count: usize) -> Self {
        self.max_patch_operations = count;
        self
    }

    /// Sets the most bytes the peer's data may take, decoded.
    #[must_use]
    pub fn max_remote_data_size(mut self, bytes: usize) -> Self {
        self.max_remote_data_size = bytes;
        self
    }

    /// Sets the outgoing queue bound, in frames (at least 1).
    #[must_use]
    pub fn max_send_queue(mut self, frames: usize) -> Self {
        self.max_send_queue = frames.max(1);
        self
    }

    /// Sets the outgoing queue bound in bytes (at least 1).
    #[must_use]
    pub fn max_send_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_send_queue_bytes = bytes.max(1);
        self
    }

    /// Sets the received-message bound in decoded bytes (at least 1).
    #[must_use]
    pub fn max_receive_bytes(mut self, bytes: usize) -> Self {
        self.max_receive_bytes = bytes.max(1);
        self
    }

    /// Sets the received-message queue bound (at least 1).
    #[must_use]
    pub fn max_receive_queue(mut self, messages: usize) -> Self {
        self.max_receive_queue = messages.max(1);
        self
    }

    /// Sets how long a close waits for the peer's close handshake.
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets how many bytes are read from the socket at a time.
    #[must_use]
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(256);
        self
    }

    pub(crate) fn engine_config(&self) -> juggler_core::Config {
        let mut config = juggler_core::Config::with_autoflush(self.autoflush);
        config.max_patch_operations = self.max_patch_operations;
        config.max_queued_data_frames = self.max_queued_data_frames.max(1);
        config.max_remote_data_size = self.max_remote_data_size;
        config
    }

    /// The WebSocket settings these options imply.
    pub(crate) fn websocket_config(
        &self,
    ) -> async_tungstenite::tungstenite::protocol::WebSocketConfig {
        async_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size))
            .read_buffer_size(self.read_buffer_size)
    }
}
