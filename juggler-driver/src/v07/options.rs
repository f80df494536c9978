//! Settings of a 0.6/0.7 connection, in either role.

use std::time::Duration;

use juggler_core::v07::{ClientConfig, Framing, ServerConfig, DEFAULT_MAX_SEGMENT_SIZE};
use juggler_core::{AutoflushPolicy, Generation};

/// What a 0.6/0.7 client keeps of the server's notifications until they
/// are taken ([`Client::receive`](crate::v07::Client::receive),
/// [`Client::notifications`](crate::v07::Client::notifications)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Notifications {
    /// None (the default), as the reference client without a
    /// `notify_cb`: a client that only follows the state never stalls on
    /// notifications it does not read.
    #[default]
    Ignore,
    /// Every one, in order: while [`Options::receive_queue_size`] (or
    /// [`Options::max_receive_bytes`]) wait unread, the client reads
    /// nothing more from the server. Nothing is lost; a client that stops
    /// taking them stops following the state too.
    Queue,
    /// The newest, in order, within the same bounds: past them the oldest
    /// unread one is dropped and counted
    /// ([`Client::dropped_notifications`](crate::v07::Client::dropped_notifications)).
    /// The client never stops reading.
    DropOldest,
    /// Only the newest unread one; a newer one replaces it (and counts as
    /// dropped). For notifications that each carry the whole news.
    KeepLatest,
}

/// Settings of a 0.6 or 0.7 connection, server or client, with the
/// defaults of hat-juggler 0.7.6 (SPEC-0.7.md §11) where it has them.
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::v07::Options;
///
/// let options = Options::default()
///     .max_segment_size(16 * 1024)
///     .ping(Some(Duration::from_secs(5)), Duration::from_secs(5))
///     .parallel_requests(true);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Which of the two generations: [`Generation::V0_7`] (default:
    /// segments and pings) or [`Generation::V0_6`] (bare JSON frames).
    /// A server that detects the generation sets it per connection.
    pub generation: Generation,
    /// Bytes of JSON text per segment sent (0.7). Default 65,536.
    pub max_segment_size: usize,
    /// Send a ping (`2`) after this long without a text frame from the
    /// peer; `None`: never (0.7). Default 30 s.
    pub ping_delay: Option<Duration>,
    /// Close when nothing comes this long after a ping. Default 30 s.
    pub ping_timeout: Duration,
    /// Most frames waiting to be written: `notify` (and a client's
    /// `send`) wait while that many do. Default 1,024.
    pub send_queue_size: usize,
    /// When state changes go out (server): 0.2 s after the first change
    /// (default), at once, or only on `flush`.
    pub autoflush: AutoflushPolicy,
    /// Whether a server runs a connection's requests concurrently, or one
    /// at a time, in order (default), as the reference does.
    pub parallel_requests: bool,
    /// Most requests of one connection being handled at once; the
    /// connection reads nothing more from the peer until one is answered.
    /// Default 1,024.
    pub max_pending_requests: usize,
    /// Most bytes (decoded) the data of a connection's requests being
    /// handled may take; past it the connection reads nothing more until
    /// one is answered. They also count against the server's
    /// [`max_buffered_bytes`](crate::ServerOptions::max_buffered_bytes).
    /// Default 16 MiB.
    pub max_pending_bytes: usize,
    /// What a client keeps of the server's notifications: none by default
    /// (see [`Notifications`]).
    pub notifications: Notifications,
    /// Most notifications a client keeps unread (see [`Notifications`]).
    /// Default 1,024.
    pub receive_queue_size: usize,
    /// Most bytes a client's unread notifications may hold, decoded (see
    /// [`value_cost`](juggler_core::value_cost)); while that much waits,
    /// the client reads nothing more from the server. It may be passed by
    /// the one notification that crossed it. Default 16 MiB.
    pub max_receive_bytes: usize,
    /// Largest message the peer may send, joined from its segments.
    /// Default 64 MiB.
    pub max_message_size: usize,
    /// Largest WebSocket message the peer may send. Default 4 MiB, the
    /// Python server's own limit (browsers send up to 196,609 bytes per
    /// segment).
    pub max_frame_size: usize,
    /// Largest server state a client keeps, decoded. Default 64 MiB.
    pub max_state_size: usize,
    /// How long a closing connection waits for the peer's close frame.
    /// Default 10 s.
    pub close_timeout: Duration,
    /// Bytes read from the socket at a time. Every connection holds a
    /// buffer this big even when idle (and tungstenite clears it on each
    /// read), so the default is small (4 KiB); it grows for larger frames.
    pub read_buffer_size: usize,
    /// How long a client's request waits for its answer; `None`: as long
    /// as the connection is open (the reference's behaviour). Default
    /// `None`.
    pub request_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            generation: Generation::V0_7,
            max_segment_size: DEFAULT_MAX_SEGMENT_SIZE,
            ping_delay: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(30),
            send_queue_size: 1024,
            autoflush: AutoflushPolicy::default(),
            parallel_requests: false,
            max_pending_requests: 1024,
            max_pending_bytes: 16 << 20,
            notifications: Notifications::default(),
            receive_queue_size: 1024,
            max_receive_bytes: 16 << 20,
            max_message_size: juggler_core::v07::DEFAULT_MAX_MESSAGE_SIZE,
            max_frame_size: 4 << 20,
            max_state_size: 64 << 20,
            close_timeout: Duration::from_secs(10),
            read_buffer_size: 4 << 10,
            request_timeout: None,
        }
    }
}

impl Options {
    /// These settings for `generation` (0.6 or 0.7; 0.5 is taken as 0.7).
    #[must_use]
    pub fn generation(mut self, generation: Generation) -> Self {
        self.generation = generation;
        self
    }

    /// Sets the segment size (at least 1 byte).
    #[must_use]
    pub fn max_segment_size(mut self, bytes: usize) -> Self {
        self.max_segment_size = bytes.max(1);
        self
    }

    /// Sets the ping delay (`None`: no pings) and timeout.
    #[must_use]
    pub fn ping(mut self, delay: Option<Duration>, timeout: Duration) -> Self {
        self.ping_delay = delay;
        self.ping_timeout = timeout;
        self
    }

    /// Sets what a client keeps of the server's notifications.
    #[must_use]
    pub fn notifications(mut self, policy: Notifications) -> Self {
        self.notifications = policy;
        self
    }

    /// Sets how many notifications a client keeps unread (at least 1).
    #[must_use]
    pub fn receive_queue_size(mut self, notifications: usize) -> Self {
        self.receive_queue_size = notifications.max(1);
        self
    }

    /// Sets the send queue size (at least 1).
    #[must_use]
    pub fn send_queue_size(mut self, frames: usize) -> Self {
        self.send_queue_size = frames.max(1);
        self
    }

    /// Sets the autoflush delay the reference way: `Some(ZERO)` at once,
    /// `Some(d)` after `d`, `None` only on flush.
    #[must_use]
    pub fn autoflush_delay(mut self, delay: Option<Duration>) -> Self {
        self.autoflush = AutoflushPolicy::from_delay(delay);
        self
    }

    /// Runs requests concurrently (`true`) or one at a time.
    #[must_use]
    pub fn parallel_requests(mut self, parallel: bool) -> Self {
        self.parallel_requests = parallel;
        self
    }

    /// Sets the most bytes a connection's requests being handled may take.
    #[must_use]
    pub fn max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// Sets the most bytes a client's unread notifications may hold,
    /// decoded (at least 1).
    #[must_use]
    pub fn max_receive_bytes(mut self, bytes: usize) -> Self {
        self.max_receive_bytes = bytes.max(1);
        self
    }

    /// Sets how long a client's request waits for its answer.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the largest joined message the peer may send.
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    fn framing(&self) -> Framing {
        match self.generation {
            Generation::V0_6 => Framing::Whole,
            _ => Framing::Segmented {
                max_segment_size: self.max_segment_size.max(1),
            },
        }
    }

    /// The engine settings of a server connection.
    pub(crate) fn server_config(&self) -> ServerConfig {
        let mut config = ServerConfig::v0_7().autoflush(self.autoflush);
        config.framing = self.framing();
        config.max_message_size = self.max_message_size;
        config
    }

    /// The engine settings of a client connection.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::v0_7();
        config.framing = self.framing();
        config.max_message_size = self.max_message_size;
        config.max_state_size = self.max_state_size;
        config
    }

    /// Whether the transport pings (0.7 with a ping delay).
    pub(crate) fn pings(&self) -> Option<(Duration, Duration)> {
        match self.generation {
            Generation::V0_6 => None,
            _ => self.ping_delay.map(|delay| (delay, self.ping_timeout)),
        }
    }

    /// The WebSocket settings.
    pub(crate) fn websocket_config(
        &self,
    ) -> async_tungstenite::tungstenite::protocol::WebSocketConfig {
        async_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(self.max_frame_size))
            .max_frame_size(Some(self.max_frame_size))
            .read_buffer_size(self.read_buffer_size.max(256))
    }
}
