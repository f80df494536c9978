//! The server side of the 0.6/0.7 user layer as a sans-IO machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use json_patch::PatchOperation;
use serde_json::Value;

mod mounted;

use super::message::{
    decode_request, encode_notify, encode_response, encode_state, encode_whole_state, plain_ops,
    Request,
};
use super::output::{Framing, Input, Output};
use super::DEFAULT_MAX_MESSAGE_SIZE;
use crate::mount::Mounts;
use crate::op_runs::{OpRuns, Run};
use crate::UpdateError;
use crate::{apply, diff, AutoflushPolicy, CloseReason, Closed, FlushTicket, ProtocolError};

/// Settings of a [`ServerEngine`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// 0.6 (whole frames) or 0.7 (segments).
    pub framing: Framing,
    /// When state changes go out: 0.2 s (default), at once, or on flush.
    pub autoflush: AutoflushPolicy,
    /// The largest message a peer may send, joined from its segments.
    /// Default 64 MiB.
    pub max_message_size: usize,
}

impl ServerConfig {
    /// The 0.7 defaults: segments of 65,536 bytes, autoflush 0.2 s.
    pub fn v0_7() -> Self {
        ServerConfig {
            framing: Framing::Segmented {
                max_segment_size: super::DEFAULT_MAX_SEGMENT_SIZE,
            },
            autoflush: AutoflushPolicy::default(),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    /// The 0.6 defaults: whole frames, autoflush 0.2 s.
    pub fn v0_6() -> Self {
        ServerConfig {
            framing: Framing::Whole,
            ..ServerConfig::v0_7()
        }
    }

    /// These settings with another autoflush policy.
    #[must_use]
    pub fn autoflush(mut self, autoflush: AutoflushPolicy) -> Self {
        self.autoflush = autoflush;
        self
    }
}

/// What the server application must hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// A request to answer with [`ServerEngine::respond`]. (Requests with a
    /// falsy name are echoed, and those without data refused, by the
    /// engine, as the reference does; they do not show here.)
    Request(Request),
    /// The engine closed; it is the last event.
    Closed(CloseReason),
}

/// How the state differs from what the client holds once the queued
/// frames are out (as in the 0.5 engine: no second copy of the state is
/// kept unless the state was replaced).
#[derive(Debug, Default)]
enum Pending {
    /// The client will hold the state.
    #[default]
    None,
    /// These ops take the client's copy to the state (a group's change to
    /// its part as its message, encoded once for all).
    Ops(OpRuns),
    /// `prefix`, then the diff from `base` to the state.
    Replaced {
        base: Arc<Value>,
        prefix: Vec<PatchOperation>,
    },
    /// `state` messages of a [`SharedState`](crate::SharedState), encoded
    /// once for all its connections.
    Shared(Vec<Arc<str>>),
}

/// One server connection of the 0.6/0.7 generations (SPEC-0.7.md §5, §6).
///
/// The state flows one way, to the client, as JSON Patch made of `add`,
/// `remove` and `replace` only (never `test`, which the Python client
/// misapplies): the first `state` message is a whole `replace` at `""`,
/// and nothing is sent while the state is `null`. Requests come in as
/// [`ServerEvent::Request`]s to answer with [`respond`](Self::respond),
/// in any order.
///
/// The driver contract is the 0.5 [`Engine`](crate::Engine)'s: feed every
/// received text frame to [`handle_text`](Self::handle_text), write what
/// [`poll_transmit`](Self::poll_transmit) returns in order, call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and read
/// [`poll_event`](Self::poll_event) after each call. Pings and pongs come
/// out of `poll_transmit` ahead of queued messages, so a `2` is answered
/// at once, even between the segments of a message going out.
#[derive(Debug)]
pub struct ServerEngine {
    config: ServerConfig,
    input: Input,
    output: Output,
    state: Arc<Value>,
    pending: Pending,
    /// With shared changes pending, the state the client holds.
    sent_base: Option<Arc<Value>>,
    flush_at: Option<Instant>,
    events: VecDeque<ServerEvent>,
    closed: Option<CloseReason>,
    /// The parts of `state` that groups own.
    mounts: Mounts,
}

/// What a request without `data` gets, as from the reference (Python's
/// `KeyError` text).
const MISSING_DATA: &str = "'data'";

impl ServerEngine {
    /// A connection whose state starts as `state` (a shared state's
    /// current value, or `null`): a non-null one goes out by the autoflush
    /// policy, as the first change would.
    pub fn new(config: ServerConfig, state: impl Into<Arc<Value>>, now: Instant) -> Self {
        let input = Input::new(config.framing, config.max_message_size);
        let mut engine = ServerEngine {
            config,
            input,
            output: Output::default(),
            state: Arc::new(Value::Null),
            pending: Pending::None,
            sent_base: None,
            flush_at: None,
            events: VecDeque::new(),
            closed: None,
            mounts: Mounts::default(),
        };
        let _ = engine.set_state(now, state);
        engine
    }

    /// The state as last set.
    pub fn state(&self) -> &Arc<Value> {
        &self.state
    }

    /// Replaces the state; it goes out by the autoflush policy, as a diff.
    /// Parts that groups own ([`mount`](Self::mount)) stay as they are,
    /// whatever `state` has there.
    pub fn set_state(&mut self, now: Instant, state: impl Into<Arc<Value>>) -> Result<(), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        let mut state = state.into();
        if !self.mounts.is_empty() {
            state = self.mounts.overlay(&self.state, state);
        }
        let base = self.state.clone();
        self.pending = match std::mem::take(&mut self.pending) {
            Pending::None => Pending::Replaced {
                base,
                prefix: Vec::new(),
            },
            Pending::Ops(prefix) => Pending::Replaced {
                base,
                prefix: prefix.into_ops(),
            },
            replaced @ Pending::Replaced { .. } => replaced,
            // What the client holds is the base of the first shared change.
            Pending::Shared(_) => Pending::Replaced {
                base: self.sent_base.take().unwrap_or(base),
                prefix: Vec::new(),
            },
        };
        self.state = state;
        self.schedule(now);
        Ok(())
    }

    /// Whether the state has a change that has not gone out yet.
    pub fn has_unsent_changes(&self) -> bool {
        !matches!(self.pending, Pending::None)
    }

    /// [`set_state`](Self::set_state) with the diff computed beforehand,
    /// outside whatever lock guards the engine: `ops` must be
    /// `diff(base, state)`, and `base` the [`state`](Self::state) the
    /// caller read. When `base` is still the state, the client holds it
    /// (it is not `null`) and nothing is unsent, `ops` are what goes out
    /// and no diff runs here; otherwise (another change came between) it
    /// is `set_state(now, state)`, whose diff runs at the sync.
    ///
    /// ```
    /// use std::{sync::Arc, time::Instant};
    /// use juggler_core::v07::{ServerConfig, ServerEngine};
    /// use juggler_core::{diff, AutoflushPolicy};
    /// use serde_json::json;
    ///
    /// # let now = Instant::now();
    /// let config = ServerConfig::v0_7().autoflush(AutoflushPolicy::Immediate);
    /// let mut engine = ServerEngine::new(config, json!({"a": 1, "b": 2}), now);
    /// # while engine.poll_transmit().is_some() {}
    /// let base = engine.state().clone();               // under the lock
    /// let next = Arc::new(json!({"a": 1, "b": 3}));
    /// let ops = diff(&base, &next);                    // no lock held
    /// engine.set_state_diffed(now, &base, next, ops)?; // under the lock again
    /// let frame = engine.poll_transmit().unwrap();
    /// assert_eq!(
    ///     frame.text.as_str(),
    ///     r#"0{"type":"state","diff":[{"op":"replace","path":"/b","value":3}]}"#,
    /// );
    /// # Ok::<(), juggler_core::Closed>(())
    /// ```
    pub fn set_state_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        state: impl Into<Arc<Value>>,
        ops: Vec<PatchOperation>,
    ) -> Result<(), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        let unchanged = Arc::ptr_eq(&self.state, base)
            && matches!(self.pending, Pending::None)
            && !base.is_null()
            && self.mounts.is_empty();
        let state = state.into();
        if !unchanged || state.is_null() {
            return self.set_state(now, state);
        }
        self.state = state;
        if !ops.is_empty() {
            self.pending = Pending::Ops(OpRuns::of(ops));
            self.schedule(now);
        }
        Ok(())
    }

    /// Sets the state to a [`SharedState`](crate::SharedState)'s new
    /// version. When the state is the change's previous version and
    /// nothing else is unsent (or only earlier shared changes), the
    /// change's `state` message, encoded once for every connection, is
    /// what goes out by the autoflush policy: no diff, no encoding.
    /// Otherwise it is [`set_state`](Self::set_state) with the new version.
    pub fn set_state_shared(
        &mut self,
        now: Instant,
        change: &crate::SharedChange,
    ) -> Result<(), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        let fast = Arc::ptr_eq(&self.state, &change.base)
            && matches!(self.pending, Pending::None | Pending::Shared(_))
            // The client gets the first state whole, and nothing while null.
            && !change.base.is_null()
            && !change.data.is_null();
        let message = change.state_message().filter(|_| fast);
        let Some(message) = message else {
            return self.set_state(now, change.data.clone());
        };
        if let Pending::None = self.pending {
            self.sent_base = Some(self.state.clone());
            self.pending = Pending::Shared(Vec::new());
        }
        if let Pending::Shared(messages) = &mut self.pending {
            if change.frame.is_some() {
                messages.push(message.clone());
            }
        }
        self.state = change.data.clone();
        self.schedule(now);
        Ok(())
    }

    /// Changes the state by JSON Patch ops, in O(change): with nothing
    /// else pending, the ops themselves go out (ops other than `add`,
    /// `remove` and `replace` are applied, then sent as a diff). Fails with
    /// [`UpdateError::Patch`] when they do not apply, and with
    /// [`UpdateError::Owned`] when one would change a part a group owns
    /// ([`mount`](Self::mount)); nothing changes then.
    pub fn update_state(
        &mut self,
        now: Instant,
        ops: Vec<PatchOperation>,
    ) -> Result<(), UpdateError> {
        if self.closed.is_some() {
            return Err(UpdateError::Closed);
        }
        self.mounts.check_own(&ops)?;
        if !plain_ops(&ops) {
            let mut changed = (*self.state).clone();
            apply(&mut changed, &ops).map_err(|err| UpdateError::Patch(err.to_string()))?;
            return self.set_state(now, changed).map_err(UpdateError::from);
        }
        apply(Arc::make_mut(&mut self.state), &ops)
            .map_err(|err| UpdateError::Patch(err.to_string()))?;
        self.pend(ops);
        self.schedule(now);
        Ok(())
    }

    /// Records `run`, applied to the state already, as unsent.
    fn pend(&mut self, run: impl Into<Run>) {
        self.pending = match std::mem::take(&mut self.pending) {
            Pending::None => Pending::Ops(OpRuns::of(run)),
            Pending::Ops(mut queued) => {
                queued.push(run);
                Pending::Ops(queued)
            }
            replaced @ Pending::Replaced { .. } => replaced,
            Pending::Shared(_) => Pending::Replaced {
                base: self.sent_base.take().unwrap_or_default(),
                prefix: Vec::new(),
            },
        };
    }

    fn schedule(&mut self, now: Instant) {
        match self.config.autoflush {
            AutoflushPolicy::Immediate => self.sync(),
            // The first change opens the window; later ones do not
            // extend it (as the reference's loop).
            AutoflushPolicy::Delayed(delay) => {
                if self.flush_at.is_none() && !matches!(self.pending, Pending::None) {
                    self.flush_at = Some(now + delay);
                }
            }
            AutoflushPolicy::Manual => {}
        }
    }

    /// Queues the pending change as one `state` message, if it changes
    /// anything.
    fn sync(&mut self) {
        self.flush_at = None;
        self.sent_base = None;
        let diff = match std::mem::take(&mut self.pending) {
            Pending::None => return,
            Pending::Ops(runs) => {
                for run in runs.into_runs() {
                    let message = match run {
                        Run::Own(ops) if ops.is_empty() => continue,
                        Run::Own(ops) => encode_state(&ops).into(),
                        Run::Mounted(mounted) => mounted.state_message().clone(),
                    };
                    self.output.push_message(self.config.framing, message);
                }
                return;
            }
            // The first state (or one after `null`) goes whole: encoded
            // from the state itself, not copied into an op first.
            Pending::Replaced { base, prefix } if prefix.is_empty() && base.is_null() => {
                if !self.state.is_null() {
                    self.output
                        .push_message(self.config.framing, encode_whole_state(&self.state));
                }
                return;
            }
            Pending::Replaced { base, mut prefix } => {
                prefix.extend(diff(&base, &self.state));
                prefix
            }
            Pending::Shared(messages) => {
                for message in messages {
                    self.output.push_message(self.config.framing, message);
                }
                return;
            }
        };
        if !diff.is_empty() {
            self.output
                .push_message(self.config.framing, encode_state(&diff));
        }
    }

    /// Sends the pending state change now (whatever the policy). The
    /// ticket completes once it is written.
    pub fn flush(&mut self) -> Result<FlushTicket, Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        self.sync();
        Ok(self.output.ticket())
    }

    /// Queues a notification. It may reach the client before a state
    /// change still in its autoflush window; [`flush`](Self::flush) first
    /// to send that first.
    pub fn notify(&mut self, name: &str, data: &Value) -> Result<FlushTicket, Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        Ok(self
            .output
            .push_message(self.config.framing, encode_notify(name, data)))
    }

    /// [`notify`](Self::notify) with a notification encoded beforehand,
    /// once for many connections.
    pub fn notify_encoded(
        &mut self,
        notification: &super::message::EncodedNotify,
    ) -> Result<FlushTicket, Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        Ok(self
            .output
            .push_message(self.config.framing, notification.text()))
    }

    /// Answers the request with `id` (copied verbatim): `Ok(data)` is
    /// `success: true`, `Err(data)` `success: false` (the reference sends
    /// the error's text).
    pub fn respond(
        &mut self,
        id: &Value,
        result: Result<Value, Value>,
    ) -> Result<FlushTicket, Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        let (success, data) = match result {
            Ok(data) => (true, data),
            Err(data) => (false, data),
        };
        Ok(self
            .output
            .push_message(self.config.framing, encode_response(id, success, &data)))
    }

    /// Queues a transport ping with `payload` (0.7 only; the keep-alive
    /// machine, [`Liveness`](crate::Liveness), says when).
    pub fn send_ping(&mut self, payload: &str) -> Result<(), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        self.output.push_ping(self.config.framing, payload);
        Ok(())
    }

    /// Takes one received text frame. A violation closes the engine and
    /// is returned.
    pub fn handle_text(&mut self, frame: &str) -> Result<(), ProtocolError> {
        if self.closed.is_some() {
            return Ok(());
        }
        let outcome = self
            .input
            .take(frame, &mut self.output)
            .and_then(|text| text.map(|text| decode_request(&text)).transpose());
        let request = match outcome {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(err) => {
                self.handle_protocol_error(err.clone());
                return Err(err);
            }
        };
        if request.wants_echo() {
            let data = request.data.unwrap_or(Value::Null);
            let _ = self.respond(&request.id, Ok(data));
        } else if request.data.is_none() {
            let _ = self.respond(&request.id, Err(Value::from(MISSING_DATA)));
        } else {
            self.events.push_back(ServerEvent::Request(request));
        }
        Ok(())
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<crate::Transmit> {
        self.output.pop()
    }

    /// Frames waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_frames(&self) -> usize {
        self.output.frames()
    }

    /// Their text bytes.
    pub fn queued_bytes(&self) -> usize {
        self.output.bytes()
    }

    /// 0.6 (whole frames) or 0.7 (segments).
    pub(crate) fn framing(&self) -> Framing {
        self.config.framing
    }

    /// Bytes of a message that waits for its last segment.
    pub fn buffered_input(&self) -> usize {
        self.input.buffered()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: the end of
    /// the autoflush window.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.flush_at
    }

    /// Time has reached `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.flush_at.is_some_and(|at| at <= now) {
            self.sync();
        }
    }

    /// The two versions the sync due at `now` would diff (the state the
    /// client will hold, and the state), for a driver that diffs them
    /// outside its lock and calls
    /// [`handle_timeout_diffed`](Self::handle_timeout_diffed); as the 0.5
    /// [`Engine::due_diff`](crate::Engine::due_diff). `None` when no sync
    /// is due or it needs no diff.
    pub fn due_diff(&self, now: Instant) -> Option<(Arc<Value>, Arc<Value>)> {
        match self.flush_at {
            Some(at) if at <= now => self.unsent_diff(),
            _ => None,
        }
    }

    /// The two versions the next sync diffs, due or not, for a flush
    /// whose diff runs outside the lock ([`sync_diffed`](Self::sync_diffed)).
    pub fn unsent_diff(&self) -> Option<(Arc<Value>, Arc<Value>)> {
        if self.closed.is_some() {
            return None;
        }
        match &self.pending {
            Pending::Replaced { base, prefix } if !(prefix.is_empty() && base.is_null()) => {
                Some((base.clone(), self.state.clone()))
            }
            _ => None,
        }
    }

    /// [`handle_timeout`](Self::handle_timeout) with `ops = diff(base,
    /// state)` of [`due_diff`](Self::due_diff)'s versions computed by the
    /// caller, as the 0.5
    /// [`Engine::handle_timeout_diffed`](crate::Engine::handle_timeout_diffed).
    pub fn handle_timeout_diffed(
        &mut self,
        now: Instant,
        base: &Arc<Value>,
        state: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        let due = self.flush_at.is_some_and(|at| at <= now);
        if !(due && self.sync_diffed(base, state, ops)) {
            self.handle_timeout(now);
        }
    }

    /// Queues the pending change from `base` with `ops = diff(base,
    /// state)` computed by the caller, as the 0.5
    /// [`Engine::sync_diffed`](crate::Engine::sync_diffed): a state set
    /// meanwhile stays pending, to be diffed from there; `false`, and
    /// nothing done, when the pending change is no longer from `base`.
    pub fn sync_diffed(
        &mut self,
        base: &Arc<Value>,
        state: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let mut prefix = match &mut self.pending {
            Pending::Replaced {
                base: pending,
                prefix,
            } if Arc::ptr_eq(pending, base) => std::mem::take(prefix),
            _ => return false,
        };
        prefix.extend(ops);
        self.sent_base = None;
        if Arc::ptr_eq(&self.state, state) {
            self.pending = Pending::None;
            self.flush_at = None;
        } else {
            self.pending = Pending::Replaced {
                base: state.clone(),
                prefix: Vec::new(),
            };
        }
        if !prefix.is_empty() {
            self.output
                .push_message(self.config.framing, encode_state(&prefix));
        }
        true
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// Closes the engine (the driver sends its close frame); pending
    /// output stays to be written first.
    pub fn close(&mut self) {
        self.finish(CloseReason::Local);
    }

    /// The transport closed.
    pub fn handle_transport_closed(&mut self, reason: CloseReason) {
        self.finish(reason);
    }

    /// Why the engine closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// A violation the driver found (a binary frame, a frame over the
    /// WebSocket limit): the engine closes with it, dropping queued output.
    pub fn handle_protocol_error(&mut self, err: ProtocolError) {
        self.output.clear();
        self.finish(CloseReason::Protocol(err));
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.closed.is_none() {
            self.flush_at = None;
            self.closed = Some(reason.clone());
            self.events.push_back(ServerEvent::Closed(reason));
        }
    }

    /// The delay after which a change goes out (`None`: manual).
    pub fn autoflush_delay(&self) -> Option<Duration> {
        self.config.autoflush.delay()
    }
}
