//! The Juggler engine: one peer's state machine.

mod shared;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use json_patch::PatchOperation;
use serde_json::Value;

use crate::config::{AutoflushPolicy, Config};
use crate::error::{CloseReason, Closed, ProtocolError, UpdateError};
use crate::frame::{encode, encode_replace_root, EncodedMessage, Frame, FrameKind, FrameText};
use crate::mount::Mounts;
use crate::op_runs::{OpRuns, Run};
use crate::patch::replaces_root;
use crate::remote_document::RemoteDocument;
use crate::transmit_queue::{FlushTicket, Transmit, TransmitQueue};

/// Something the application must hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// One DATA frame was applied to the remote data (read it with
    /// [`Engine::remote_data`]). Change listeners are notified once for it.
    RemoteDataChanged,
    /// The peer sent a message.
    Message(Value),
    /// The engine closed; it is the last event.
    Closed(CloseReason),
}

/// How local data differs from what the peer will hold once the queued
/// frames are written. No second copy of the data is kept to diff against
/// unless `local` was replaced: `update_local_data` then changes `local`
/// in place, with no copy, and its ops are what goes out.
#[derive(Debug)]
enum LocalChange {
    /// The peer will hold `local`.
    None,
    /// `local == apply(peer's, ops)`: the ops go out without a diff (a
    /// group's change to its part as its frame, encoded once for all).
    Ops(OpRuns),
    /// `local` was replaced: the change is `prefix` (ops made before the
    /// replacement, which lead the peer's data to `base`), then
    /// `diff(base, local)`.
    Replaced {
        base: Arc<Value>,
        prefix: Vec<PatchOperation>,
    },
    /// A run of [`SharedState`](crate::SharedState) changes from `base`
    /// (what the peer holds) to `local`: their pre-encoded frames go out
    /// as they are, with no diff and no encoding of ours.
    Shared {
        base: Arc<Value>,
        frames: Vec<Arc<str>>,
    },
}

/// The sans-IO state machine of one Juggler peer (client or server: the
/// protocol is symmetric).
///
/// The engine never reads a clock, never touches a socket and never blocks.
/// A driver feeds it what happens and carries out what it asks for.
///
/// # Methods by family
///
/// - **Getters**: [`local_data`](Self::local_data),
///   [`remote_data`](Self::remote_data), [`is_closed`](Self::is_closed),
///   [`close_reason`](Self::close_reason), [`config`](Self::config),
///   [`queued_transmits`](Self::queued_transmits).
///   Data getters hand out shared snapshots (`Arc<Value>`), never deep copies.
/// - **Application commands**: [`set_local_data`](Self::set_local_data),
///   [`update_local_data`](Self::update_local_data),
///   [`flush_local_data`](Self::flush_local_data),
///   [`send_message`](Self::send_message), [`send_ping`](Self::send_ping),
///   [`close`](Self::close).
/// - **Inputs** from the driver: [`handle_text`](Self::handle_text) for each
///   incoming text frame (or [`handle_frame`](Self::handle_frame) with the
///   frame decoded beforehand), [`handle_protocol_error`](Self::handle_protocol_error)
///   for violations only the transport sees (binary frame, invalid UTF-8,
///   oversized frame), [`handle_timeout`](Self::handle_timeout) when the
///   deadline passes, [`handle_transport_closed`](Self::handle_transport_closed)
///   when the socket ends.
/// - **Outputs** the driver pulls: [`poll_transmit`](Self::poll_transmit)
///   (frames to write, in order), [`poll_event`](Self::poll_event)
///   (events for the application), [`poll_timeout`](Self::poll_timeout) (when
///   to call `handle_timeout` next).
///
/// # The driver contract
///
/// After every input and every application command, the driver:
///
/// 1. calls `poll_transmit` until it returns `None`, writing each frame to the
///    socket in that order (a frame's [`Transmit::seq`] tells which
///    [`FlushTicket`]s its write completes);
/// 2. calls `poll_event` until it returns `None`, handing each event to the
///    application; after [`Event::Closed`] it writes the frames still polled
///    (if the close was [`CloseReason::Local`]), sends a WebSocket close frame
///    ([`CloseReason::close_frame`]) and drops the socket;
/// 3. calls `poll_timeout` and arms its timer for the returned instant,
///    replacing any earlier timer; `None` means no timer.
///
/// A driver may defer step 1 while its socket is not ready for writing:
/// frames wait in the engine, in order, and [`queued_transmits`](Self::queued_transmits)
/// says how many.
///
/// Every `now` handed in must come from a monotonic clock (`Instant`) and
/// never go backwards.
///
/// # Example
///
/// A driver loop over an in-memory "socket" (two engines back to back):
///
/// ```
/// use std::time::Instant;
/// use juggler_core::{AutoflushPolicy, Config, Engine, Event};
/// use serde_json::json;
///
/// let now = Instant::now();
/// let mut client = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
/// let mut server = Engine::new(Config::default());
///
/// client.set_local_data(now, json!({"counter": 1})).unwrap();
/// client.send_message(&json!("hello")).unwrap();
///
/// // 1. write every frame the client has for the socket ...
/// while let Some(transmit) = client.poll_transmit() {
///     // ... which here is the server's input.
///     server.handle_text(transmit.text.as_str()).unwrap();
/// }
/// // 2. hand events to the application.
/// let mut events = Vec::new();
/// while let Some(event) = server.poll_event() {
///     events.push(event);
/// }
/// assert_eq!(events, [Event::RemoteDataChanged, Event::Message(json!("hello"))]);
/// assert_eq!(**server.remote_data(), json!({"counter": 1}));
/// // 3. arm the timer (the immediate policy never needs one).
/// assert_eq!(client.poll_timeout(), None);
/// ```
#[derive(Debug)]
pub struct Engine {
    config: Config,
    local: Arc<Value>,
    remote: RemoteDocument,
    change: LocalChange,
    deadline: Option<Instant>,
    transmits: TransmitQueue,
    /// See [`Engine::collapsed_data_frames`].
    collapsed_data_frames: u64,
    events: VecDeque<Event>,
    closed: Option<CloseReason>,
    /// The parts of `local` that groups own.
    mounts: Mounts,
}

impl Engine {
    /// A new engine: all data `null`, open, nothing queued.
    pub fn new(mut config: Config) -> Self {
        if config.autoflush == AutoflushPolicy::Delayed(Duration::ZERO) {
            config.autoflush = AutoflushPolicy::Immediate;
        }
        Engine {
            config,
            local: Arc::new(Value::Null),
            remote: RemoteDocument::new(),
            change: LocalChange::None,
            deadline: None,
            transmits: TransmitQueue::default(),
            collapsed_data_frames: 0,
            events: VecDeque::new(),
            closed: None,
            mounts: Mounts::default(),
        }
    }

    // ---- getters ----------------------------------------------------------

    /// The local data as last set. Clone the `Arc` for a snapshot; note that
    /// a snapshot held while the data is updated in place makes the update
    /// copy the value once.
    pub fn local_data(&self) -> &Arc<Value> {
        &self.local
    }

    /// The peer's local data as last received.
    pub fn remote_data(&self) -> &Arc<Value> {
        self.remote.value()
    }

    /// An estimate of what the remote data takes in memory, decoded, as
    /// counted against [`Config::max_remote_data_size`].
    pub fn remote_data_size(&self) -> usize {
        self.remote.cost()
    }

    /// Whether the engine is closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why the engine closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many frames wait for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_transmits(&self) -> usize {
        self.transmits.len()
    }

    /// The text bytes of the frames waiting for
    /// [`poll_transmit`](Self::poll_transmit): with
    /// [`queued_transmits`](Self::queued_transmits), what a driver bounds
    /// its send queue by.
    pub fn queued_transmit_bytes(&self) -> usize {
        self.transmits.bytes()
    }

    /// How many queued DATA frames were merged away since the engine
    /// started, because the peer lagged (see
    /// [`Config::max_queued_data_frames`]): a run of `n` frames that
    /// became one counts `n - 1`.
    pub fn collapsed_data_frames(&self) -> u64 {
        self.collapsed_data_frames
    }

    /// Whether local data has changes that have not been sent yet.
    pub fn has_unsent_changes(&self) -> bool {
        !matches!(self.change, LocalChange::None)
    }

    // ---- application commands ---------------------------------------------

    /// Replaces the local data and schedules a sync by the autoflush policy.
    ///
    /// The change sent is the diff from what the peer holds to `data`,
    /// computed when the sync goes out. Parts of the data that groups own
    /// ([`mount`](Self::mount)) stay as they are, whatever `data` has
    /// there. Fails only when the engine is closed, and then changes
    /// nothing.
    pub fn set_local_data(
        &mut self,
        now: Instant,
        data: impl Into<Arc<Value>>,
    ) -> Result<(), Closed> {
        self.ensure_open()?;
        let mut data = data.into();
        if !self.mounts.is_empty() {
            data = self.mounts.overlay(&self.local, data);
        }
        let old = std::mem::replace(&mut self.local, data);
        self.change = match std::mem::replace(&mut self.change, LocalChange::None) {
            LocalChange::None => LocalChange::Replaced {
                base: old,
                prefix: Vec::new(),
            },
            LocalChange::Ops(prefix) => LocalChange::Replaced {
                base: old,
                prefix: prefix.into_ops(),
            },
            replaced @ LocalChange::Replaced { .. } => replaced,
            LocalChange::Shared { base, .. } => LocalChange::Replaced {
                base,
                prefix: Vec::new(),
            },
        };
        self.schedule(now);
        Ok(())
    }

    /// [`set_local_data`](Self::set_local_data) with the diff computed
    /// beforehand, outside whatever lock guards the engine: `ops` must be
    /// `diff(base, data)`, and `base` the local data the caller read
    /// ([`local_data`](Self::local_data)). When `base` is still the local
    /// data and nothing is unsent, `ops` are what goes out and no diff runs
    /// here; otherwise (another change came between) it is
    /// `set_local_data(now, data)`, whose diff runs at the sync.
    ///
    /// ```
    /// use std::time::Instant;
    /// use juggler_core::{diff, AutoflushPolicy, Config, Engine};
    /// use serde_json::json;
    ///
    /// # let now = Instant::now();
    /// let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    /// engine.set_local_data(now, json!({"a": 1, "b": 2}))?;
    /// # while engine.poll_transmit().is_some() {}
    /// let base = engine.local_data().clone();          // under the lock
    /// let next = std::sync::Arc::new(json!({"a": 1, "b": 3}));
    /// let ops = diff(&base, &next);                      // no lock held
    /// engine.set_local_data_diffed(now, &base, next, ops)?;  // under the lock again
    /// let frame = engine.poll_transmit().unwrap();
    /// assert_eq!(frame.text.as_str(), r#"{"type":"DATA","payload":[{"op":"replace","path":"/b","value":3}]}"#);
    /// # Ok::<(), juggler_core::Closed>(())
    /// ```
    pub fn set_local_data_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        data: impl Into<Arc<Value>>,
        ops: Vec<PatchOperation>,
    ) -> Result<(), Closed> {
        self.ensure_open()?;
        let unchanged = Arc::ptr_eq(&self.local, base)
            && matches!(self.change, LocalChange::None)
            && self.mounts.is_empty();
        if !unchanged {
            return self.set_local_data(now, data);
        }
        self.local = data.into();
        if !ops.is_empty() {
            self.change = LocalChange::Ops(OpRuns::of(ops));
            self.schedule(now);
        }
        Ok(())
    }

    /// Applies a JSON Patch to the local data and schedules a sync by the
    /// autoflush policy.
    ///
    /// The operations themselves are what goes to the peer, so the cost is
    /// that of the change, not of the whole state (no diff), as long as no
    /// [`set_local_data`](Self::set_local_data) comes between two syncs. The
    /// patch applies whole or not at all; an op that would change a part
    /// a group owns ([`mount`](Self::mount)) fails it with
    /// [`UpdateError::Owned`].
    pub fn update_local_data(
        &mut self,
        now: Instant,
        ops: Vec<PatchOperation>,
    ) -> Result<(), UpdateError> {
        self.ensure_open()?;
        if ops.is_empty() {
            return Ok(());
        }
        self.mounts.check_own(&ops)?;
        crate::apply(Arc::make_mut(&mut self.local), &ops)
            .map_err(|err| UpdateError::Patch(err.to_string()))?;
        self.pend(ops);
        self.schedule(now);
        Ok(())
    }

    /// Records `run`, applied to `local` already, as unsent.
    fn pend(&mut self, run: impl Into<Run>) {
        self.change = match std::mem::replace(&mut self.change, LocalChange::None) {
            LocalChange::None => LocalChange::Ops(OpRuns::of(run)),
            LocalChange::Ops(mut pending) => {
                pending.push(run);
                LocalChange::Ops(pending)
            }
            replaced @ LocalChange::Replaced { .. } => replaced,
            LocalChange::Shared { base, .. } => LocalChange::Replaced {
                base,
                prefix: Vec::new(),
            },
        };
    }

    /// Sends the unsent local data changes now, whatever the policy, and
    /// cancels a pending deadline.
    ///
    /// The returned ticket completes once the DATA frame (if any: an empty
    /// change sends none) and every frame queued before it are written.
    pub fn flush_local_data(&mut self) -> Result<FlushTicket, Closed> {
        self.ensure_open()?;
        self.flush_now();
        Ok(self.transmits.ticket())
    }

    /// Queues one MESSAGE frame; the ticket completes once it is written.
    pub fn send_message(&mut self, message: &Value) -> Result<FlushTicket, Closed> {
        self.ensure_open()?;
        self.send_encoded(EncodedMessage::new(message))
    }

    /// Queues a MESSAGE frame encoded beforehand (see [`EncodedMessage`]);
    /// the ticket completes once it is written.
    pub fn send_encoded(&mut self, message: EncodedMessage) -> Result<FlushTicket, Closed> {
        self.ensure_open()?;
        self.queue(FrameKind::Message, message.into_text());
        Ok(self.transmits.ticket())
    }

    /// Queues one Juggler `PING` frame (the peer answers `PONG`).
    ///
    /// Only for applications that know their peer runs hat-juggler 0.5.13 or
    /// later: older peers close on it. Drivers detect dead peers with
    /// WebSocket ping control frames instead.
    pub fn send_ping(&mut self) -> Result<FlushTicket, Closed> {
        self.ensure_open()?;
        self.queue(
            FrameKind::Ping,
            encode(FrameKind::Ping, &Value::Object(Default::default())).into(),
        );
        Ok(self.transmits.ticket())
    }

    /// Closes the engine at the application's request.
    ///
    /// Unsent changes go out first unless the policy is manual; the frames
    /// already queued stay queued for the driver to write before its
    /// WebSocket close frame. Closing a closed engine does nothing.
    pub fn close(&mut self) {
        if self.is_closed() {
            return;
        }
        if self.config.autoflush != AutoflushPolicy::Manual {
            self.flush_now();
        }
        self.finish(CloseReason::Local);
    }

    // ---- inputs -------------------------------------------------------------

    /// Handles the text of one incoming WebSocket text frame.
    ///
    /// A protocol violation closes the engine with
    /// [`CloseReason::Protocol`] and is also returned; remote data is then
    /// exactly as before the frame. Input after the close is ignored.
    pub fn handle_text(&mut self, text: &str) -> Result<(), ProtocolError> {
        if self.is_closed() {
            return Ok(());
        }
        match Frame::decode(text) {
            Ok(frame) => self.handle_frame(frame),
            Err(err) => {
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    /// Handles one incoming frame that the driver decoded itself with
    /// [`Frame::decode`]: the same as [`handle_text`](Self::handle_text) of
    /// its text, for drivers that decode (the costly part) outside the lock
    /// that guards the engine. A text that did not decode goes to
    /// [`handle_protocol_error`](Self::handle_protocol_error) with the
    /// decode error.
    pub fn handle_frame(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        if self.is_closed() {
            return Ok(());
        }
        let result = self.apply_frame(frame);
        if let Err(err) = &result {
            self.fail(err.clone());
        }
        result
    }

    /// Reports a violation that only the transport can see: a binary frame
    /// ([`ProtocolError::BinaryFrame`]), invalid UTF-8, an oversized frame.
    /// Closes the engine with [`CloseReason::Protocol`].
    pub fn handle_protocol_error(&mut self, err: ProtocolError) {
        if !self.is_closed() {
            self.fail(err);
        }
    }

    /// Handles the passing of the deadline from [`poll_timeout`](Self::poll_timeout).
    /// Calls before the deadline, or without one, do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if matches!(self.deadline, Some(deadline) if deadline <= now) {
            self.flush_now();
        }
    }

    /// The two versions the sync due at `now` would diff (the data the
    /// peer will hold once the frames sent so far arrive, and the local
    /// data), for a driver that diffs them outside whatever lock guards
    /// the engine and then calls
    /// [`handle_timeout_diffed`](Self::handle_timeout_diffed). `None` when
    /// no sync is due, or the due one needs no diff (ops only, a shared
    /// change's frames, a whole new value): then
    /// [`handle_timeout`](Self::handle_timeout) is cheap.
    pub fn due_diff(&self, now: Instant) -> Option<(Arc<Value>, Arc<Value>)> {
        match self.deadline {
            Some(deadline) if deadline <= now => self.unsent_diff(),
            _ => None,
        }
    }

    /// The two versions the next sync diffs, due or not (see
    /// [`due_diff`](Self::due_diff)): for a flush whose diff runs outside
    /// the lock, with [`sync_diffed`](Self::sync_diffed).
    pub fn unsent_diff(&self) -> Option<(Arc<Value>, Arc<Value>)> {
        if self.is_closed() {
            return None;
        }
        match &self.change {
            LocalChange::Replaced { base, prefix }
                if !(prefix.is_empty() && replaces_root(base, &self.local)) =>
            {
                Some((base.clone(), self.local.clone()))
            }
            _ => None,
        }
    }

    /// [`handle_timeout`](Self::handle_timeout) with the diff of
    /// [`due_diff`](Self::due_diff)'s versions computed by the caller:
    /// `ops` must be `diff(base, local)`. It is
    /// [`sync_diffed`](Self::sync_diffed) when the sync is due, and
    /// `handle_timeout(now)` when that takes nothing (a flush came
    /// between).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use juggler_core::{diff, AutoflushPolicy, Config, Engine};
    /// use serde_json::json;
    ///
    /// # let now = Instant::now();
    /// let delay = Duration::from_millis(200);
    /// let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(delay)));
    /// engine.set_local_data(now, json!({"a": 1, "b": 2}))?;
    /// engine.handle_timeout(now + delay); // the first sync: the whole value
    /// # while engine.poll_transmit().is_some() {}
    /// engine.set_local_data(now + delay, json!({"a": 1, "b": 3}))?;
    /// let due = now + delay * 2;
    /// let (base, local) = engine.due_diff(due).expect("a diff is due"); // under the lock
    /// let ops = diff(&base, &local);                                    // no lock held
    /// engine.handle_timeout_diffed(due, &base, &local, ops);            // under the lock again
    /// assert!(engine.poll_transmit().is_some());
    /// assert!(!engine.has_unsent_changes());
    /// # Ok::<(), juggler_core::Closed>(())
    /// ```
    pub fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        local: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        let due = matches!(self.deadline, Some(deadline) if deadline <= now);
        if !(due && self.sync_diffed(base, local, ops)) {
            self.handle_timeout(now);
        }
    }

    /// Queues the unsent change from `base` with `ops = diff(base, local)`
    /// computed by the caller, with no diff here. When the local data
    /// moved on meanwhile, the ops to `local` go out and the rest stays
    /// unsent, to be diffed from there (the deadline, if due, stays due).
    /// Returns `false`, and does nothing, when the unsent change is no
    /// longer one from `base` (a sync came between) or the engine is
    /// closed.
    pub fn sync_diffed(
        &mut self,
        base: &Arc<Value>,
        local: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) -> bool {
        if self.is_closed() {
            return false;
        }
        let mut prefix = match &mut self.change {
            LocalChange::Replaced {
                base: pending,
                prefix,
            } if Arc::ptr_eq(pending, base) => std::mem::take(prefix),
            _ => return false,
        };
        prefix.extend(ops);
        if Arc::ptr_eq(&self.local, local) {
            self.change = LocalChange::None;
            self.deadline = None;
        } else {
            // Changed while diffing: what was diffed goes out, the rest
            // is diffed from there.
            self.change = LocalChange::Replaced {
                base: local.clone(),
                prefix: Vec::new(),
            };
        }
        if !prefix.is_empty() {
            let collapsed = self.collapsed_data_frames;
            self.queue(FrameKind::Data, encode(FrameKind::Data, &prefix).into());
            if self.collapsed_data_frames != collapsed {
                // The run became the whole local data: nothing is left.
                self.change = LocalChange::None;
                self.deadline = None;
            }
        }
        true
    }

    /// Reports that the transport ended: the peer closed, the socket failed,
    /// a keep-alive timed out. Frames not yet polled are dropped, since they
    /// can no longer be written.
    pub fn handle_transport_closed(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.transmits.clear();
        self.finish(reason);
    }

    // ---- outputs ------------------------------------------------------------

    /// The next frame to write, in order.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// the autoflush deadline, if one is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    // ---- internals ----------------------------------------------------------

    fn ensure_open(&self) -> Result<(), Closed> {
        if self.is_closed() {
            Err(Closed)
        } else {
            Ok(())
        }
    }

    fn schedule(&mut self, now: Instant) {
        match self.config.autoflush {
            AutoflushPolicy::Immediate => self.flush_now(),
            AutoflushPolicy::Delayed(delay) => {
                if self.deadline.is_none() {
                    self.deadline = Some(now + delay);
                }
            }
            AutoflushPolicy::Manual => {}
        }
    }

    fn flush_now(&mut self) {
        self.deadline = None;
        let ops = match std::mem::replace(&mut self.change, LocalChange::None) {
            LocalChange::None => return,
            LocalChange::Ops(runs) => {
                // All of them first, as for a shared run below.
                for run in runs.into_runs() {
                    let text = match run {
                        Run::Own(ops) if ops.is_empty() => continue,
                        Run::Own(ops) => encode(FrameKind::Data, &ops).into(),
                        Run::Mounted(mounted) => mounted.data_frame().clone().into(),
                    };
                    self.push_transmit(FrameKind::Data, text);
                }
                self.collapse_lagging_data();
                return;
            }
            LocalChange::Replaced { base, prefix }
                if prefix.is_empty() && replaces_root(&base, &self.local) =>
            {
                // The diff would be one op holding a deep copy of `local`
                // (a first sync): encode it from `local` itself.
                let text = encode_replace_root(&self.local);
                self.queue(FrameKind::Data, text.into());
                return;
            }
            LocalChange::Replaced { base, mut prefix } => {
                prefix.extend(crate::diff(&base, &self.local));
                prefix
            }
            LocalChange::Shared { frames, .. } => {
                // All of them first: only after the last does `local` say
                // where the run leads, which a collapse replaces it with.
                for frame in frames {
                    self.push_transmit(FrameKind::Data, frame.into());
                }
                self.collapse_lagging_data();
                return;
            }
        };
        if !ops.is_empty() {
            self.queue(FrameKind::Data, encode(FrameKind::Data, &ops).into());
        }
    }

    fn apply_frame(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        match frame {
            Frame::Data(mut ops) => {
                if ops.len() > self.config.max_patch_operations {
                    return Err(ProtocolError::TooManyOperations {
                        count: ops.len(),
                        limit: self.config.max_patch_operations,
                    });
                }
                self.remote
                    .apply(&mut ops, self.config.max_remote_data_size)?;
                self.events.push_back(Event::RemoteDataChanged);
            }
            Frame::Message(message) => self.events.push_back(Event::Message(message)),
            Frame::Ping(_) => {
                self.queue(
                    FrameKind::Pong,
                    encode(FrameKind::Pong, &Value::Object(Default::default())).into(),
                );
            }
            Frame::Pong(_) => {}
        }
        Ok(())
    }

    fn queue(&mut self, kind: FrameKind, text: FrameText) {
        // One unsent PONG answers any number of PINGs: a peer that pings
        // without reading cannot grow the queue.
        if kind == FrameKind::Pong && self.transmits.numbered().any(|t| t.kind == FrameKind::Pong) {
            return;
        }
        self.push_transmit(kind, text);
        if kind == FrameKind::Data {
            self.collapse_lagging_data();
        }
    }

    fn push_transmit(&mut self, kind: FrameKind, text: FrameText) {
        self.transmits.push(kind, text);
    }

    /// When more than `max_queued_data_frames` DATA frames wait in a row at
    /// the end of the queue, the peer is lagging: they become one frame
    /// that replaces its remote data with `local`, which is where all of
    /// them lead (frames are queued only as `local` is synced). It takes
    /// the last one's place and number, so the order with messages and
    /// every flush ticket stay right.
    fn collapse_lagging_data(&mut self) {
        let run = self
            .transmits
            .numbered()
            .rev()
            .take_while(|t| t.kind == FrameKind::Data)
            .count();
        if run <= self.config.max_queued_data_frames {
            return;
        }
        let seq = self.transmits.ticket().seq();
        self.collapsed_data_frames += (run - 1) as u64;
        self.transmits.truncate(self.transmits.numbered_len() - run);
        self.transmits.push_numbered(Transmit {
            seq,
            kind: FrameKind::Data,
            text: encode_replace_root(&self.local).into(),
        });
    }

    fn fail(&mut self, err: ProtocolError) {
        self.transmits.clear();
        self.finish(CloseReason::Protocol(err));
    }

    fn finish(&mut self, reason: CloseReason) {
        self.deadline = None;
        self.closed = Some(reason.clone());
        self.events.push_back(Event::Closed(reason));
    }
}
