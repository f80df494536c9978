//! The engine contract: what a driver calls on the engine of any
//! generation, so one driver runs them all.

use std::sync::Arc;
use std::time::Instant;

use json_patch::PatchOperation;
use serde_json::Value;

use crate::v07::{ClientEngine, ClientEvent, Framing, ServerEngine, ServerEvent};
use crate::{CloseReason, Closed, Engine, Event, ProtocolError, Transmit};

/// The contract between a sans-IO engine and the driver that runs it over
/// a socket, the same for every generation: the 0.5 [`Engine`] and the
/// 0.6/0.7 [`ServerEngine`] and [`ClientEngine`] implement it. What the
/// application does with a connection (set state, send, request) is each
/// engine's own; what moves frames and time is this.
///
/// After every input and every application command, the driver:
///
/// 1. calls [`poll_transmit`](Self::poll_transmit) until it returns `None`,
///    writing each frame to the socket in that order (a frame's
///    [`Transmit::seq`] tells which [`FlushTicket`](crate::FlushTicket)s
///    its write completes); it may defer this while its socket is busy,
///    bounding the wait by [`queued_frames`](Self::queued_frames) and
///    [`queued_bytes`](Self::queued_bytes);
/// 2. calls [`poll_event`](Self::poll_event) until it returns `None`,
///    handing each event to the application; once
///    [`close_reason`](Self::close_reason) is set it writes the frames
///    still polled (if the close was [`CloseReason::Local`]), sends a
///    WebSocket close frame ([`CloseReason::close_frame`]) and drops the
///    socket;
/// 3. calls [`poll_timeout`](Self::poll_timeout) and arms its timer for
///    the returned instant; when it passes, calls
///    [`handle_timeout`](Self::handle_timeout), or, to keep a large diff
///    outside the lock that guards the engine,
///    [`due_diff`](Self::due_diff), [`diff`](crate::diff) with no lock
///    held, then [`handle_timeout_diffed`](Self::handle_timeout_diffed).
///
/// Inputs are [`handle_text`](Self::handle_text) for each text frame
/// received, [`handle_protocol_error`](Self::handle_protocol_error) for
/// what only the transport sees (a binary frame, a frame over its size
/// limit), [`handle_transport_closed`](Self::handle_transport_closed) when
/// the socket ends, and [`close`](Self::close) at the application's
/// request. Every `now` comes from a monotonic clock and never goes back.
///
/// ```
/// use std::time::Instant;
/// use juggler_core::v07::{ClientConfig, ClientEngine, ServerConfig, ServerEngine};
/// use juggler_core::{AutoflushPolicy, Driven};
/// use serde_json::json;
///
/// /// Moves every frame `from` has to `to`, as a socket would.
/// fn carry(from: &mut impl Driven, to: &mut impl Driven) {
///     while let Some(frame) = from.poll_transmit() {
///         let _ = to.handle_text(frame.text.as_str());
///     }
/// }
///
/// let now = Instant::now();
/// let config = ServerConfig::v0_7().autoflush(AutoflushPolicy::Immediate);
/// let mut server = ServerEngine::new(config, json!({"n": 1}), now);
/// let mut client = ClientEngine::new(ClientConfig::v0_7());
/// carry(&mut server, &mut client);
/// assert_eq!(**client.state(), json!({"n": 1}));
/// Driven::close(&mut server);
/// assert!(server.is_closed());
/// ```
pub trait Driven {
    /// What the engine tells the application.
    type Event;

    /// Takes the text of one incoming WebSocket text frame. A protocol
    /// violation closes the engine and is returned.
    fn handle_text(&mut self, text: &str) -> Result<(), ProtocolError>;

    /// A violation only the transport sees: the engine closes with it,
    /// dropping its queued frames.
    fn handle_protocol_error(&mut self, err: ProtocolError);

    /// The socket ended (the peer closed, it failed, keep-alive gave up).
    fn handle_transport_closed(&mut self, reason: CloseReason);

    /// Time has reached `now`: whatever was due fires.
    fn handle_timeout(&mut self, now: Instant);

    /// The two versions the sync due at `now` would diff, for a driver
    /// that diffs them outside its lock; `None` when none is due or it
    /// needs no diff (then [`handle_timeout`](Self::handle_timeout) is
    /// cheap).
    fn due_diff(&self, now: Instant) -> Option<(Arc<Value>, Arc<Value>)>;

    /// [`handle_timeout`](Self::handle_timeout) with `ops = diff(base,
    /// current)` of [`due_diff`](Self::due_diff)'s versions computed by
    /// the caller.
    fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        current: &Arc<Value>,
        ops: Vec<PatchOperation>,
    );

    /// The next frame to write, in order.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// When [`handle_timeout`](Self::handle_timeout) is due next.
    fn poll_timeout(&self) -> Option<Instant>;

    /// The next event for the application.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// Closes the engine at the application's request; frames already
    /// queued stay queued, to be written before the close frame.
    fn close(&mut self);

    /// Why the engine closed, once it has.
    fn close_reason(&self) -> Option<&CloseReason>;

    /// Whether the engine is closed.
    fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// Frames waiting for [`poll_transmit`](Self::poll_transmit).
    fn queued_frames(&self) -> usize;

    /// The text bytes of those frames.
    fn queued_bytes(&self) -> usize;

    /// Queues the generation's own keep-alive ping (0.7's transport `2`)
    /// and says so; `false`, with nothing queued, when the generation has
    /// none (0.5 and 0.6: a driver pings with WebSocket ping frames).
    fn queue_keep_alive_ping(&mut self) -> Result<bool, Closed>;
}

impl Driven for Engine {
    type Event = Event;

    fn handle_text(&mut self, text: &str) -> Result<(), ProtocolError> {
        Engine::handle_text(self, text)
    }
    fn handle_protocol_error(&mut self, err: ProtocolError) {
        Engine::handle_protocol_error(self, err)
    }
    fn handle_transport_closed(&mut self, reason: CloseReason) {
        Engine::handle_transport_closed(self, reason)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Engine::handle_timeout(self, now)
    }
    fn due_diff(&self, now: Instant) -> Option<(Arc<Value>, Arc<Value>)> {
        Engine::due_diff(self, now)
    }
    fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        current: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        Engine::handle_timeout_diffed(self, now, base, current, ops)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Engine::poll_transmit(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Engine::poll_timeout(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Engine::poll_event(self)
    }
    fn close(&mut self) {
        Engine::close(self)
    }
    fn close_reason(&self) -> Option<&CloseReason> {
        Engine::close_reason(self)
    }
    fn is_closed(&self) -> bool {
        Engine::is_closed(self)
    }
    fn queued_frames(&self) -> usize {
        self.queued_transmits()
    }
    fn queued_bytes(&self) -> usize {
        self.queued_transmit_bytes()
    }
    fn queue_keep_alive_ping(&mut self) -> Result<bool, Closed> {
        match self.is_closed() {
            true => Err(Closed),
            false => Ok(false),
        }
    }
}

/// The contract for an engine of either 0.6/0.7 role: each names its own
/// methods, as the 0.5 engine does.
macro_rules! driven_v07 {
    ($engine:ty, $event:ty { $($extra:item)* }) => {
        impl Driven for $engine {
            type Event = $event;
            $($extra)*

            fn handle_text(&mut self, text: &str) -> Result<(), ProtocolError> {
                <$engine>::handle_text(self, text)
            }
            fn handle_protocol_error(&mut self, err: ProtocolError) {
                <$engine>::handle_protocol_error(self, err)
            }
            fn handle_transport_closed(&mut self, reason: CloseReason) {
                <$engine>::handle_transport_closed(self, reason)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$engine>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                <$engine>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$engine>::poll_timeout(self)
            }
            fn poll_event(&mut self) -> Option<$event> {
                <$engine>::poll_event(self)
            }
            fn close(&mut self) {
                <$engine>::close(self)
            }
            fn close_reason(&self) -> Option<&CloseReason> {
                <$engine>::close_reason(self)
            }
            fn queued_frames(&self) -> usize {
                <$engine>::queued_frames(self)
            }
            fn queued_bytes(&self) -> usize {
                <$engine>::queued_bytes(self)
            }
            fn queue_keep_alive_ping(&mut self) -> Result<bool, Closed> {
                <$engine>::send_ping(self, "")?;
                Ok(matches!(self.framing(), Framing::Segmented { .. }))
            }
        }
    };
}

driven_v07!(ServerEngine, ServerEvent {
    fn due_diff(&self, now: Instant) -> Option<(Arc<Value>, Arc<Value>)> {
        ServerEngine::due_diff(self, now)
    }
    fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        current: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        ServerEngine::handle_timeout_diffed(self, now, base, current, ops)
    }
});

// A client keeps no state of its own to sync: nothing to diff.
driven_v07!(ClientEngine, ClientEvent {
    fn due_diff(&self, _now: Instant) -> Option<(Arc<Value>, Arc<Value>)> {
        None
    }
    fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        _base: &Arc<Value>,
        _current: &Arc<Value>,
        _ops: Vec<PatchOperation>,
    ) {
        ClientEngine::handle_timeout(self, now)
    }
});
