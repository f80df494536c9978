//! State shared by many connections: diffed once, encoded once.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use json_patch::jsonptr::{Pointer, PointerBuf};

use serde_json::Value;

use crate::frame::{encode, FrameKind};
use crate::mount::MountedChange;
use crate::{PatchOperation, UpdateError};

/// A state that a server shows to many connections.
///
/// Each change is diffed once and encoded once into a [`SharedChange`];
/// [`Engine::set_local_data_shared`](crate::Engine::set_local_data_shared)
/// then hands the very same frame bytes to every connection that holds the
/// previous version, with no per-connection diff or encoding, at any
/// autoflush policy. A connection that does not (a new one, or one with
/// other unsent changes) gets a diff of its own, so correctness never
/// depends on the fast path.
///
/// ```
/// use std::time::Instant;
/// use juggler_core::{AutoflushPolicy, Config, Engine, SharedState};
/// use serde_json::json;
///
/// let now = Instant::now();
/// let mut state = SharedState::new(json!({"clock": 0}));
/// let mut engines: Vec<Engine> = (0..3)
///     .map(|_| Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate)))
///     .collect();
/// for engine in &mut engines {
///     engine.set_local_data(now, state.data().clone()).unwrap(); // first sync: a diff each
///     engine.poll_transmit();
/// }
/// let change = state.set(json!({"clock": 1}));
/// for engine in &mut engines {
///     engine.set_local_data_shared(now, &change).unwrap(); // same bytes, no diff
/// }
/// let frames: Vec<_> = engines.iter_mut().map(|e| e.poll_transmit().unwrap().text).collect();
/// assert!(frames.iter().all(|text| text == &frames[0]));
/// ```
#[derive(Debug, Clone)]
pub struct SharedState {
    data: Arc<Value>,
}

/// One change of a [`SharedState`]: the version it applies to, the new
/// version, and the DATA frame between them (none if nothing changed).
#[derive(Debug, Clone)]
pub struct SharedChange {
    pub(crate) base: Arc<Value>,
    pub(crate) data: Arc<Value>,
    pub(crate) frame: Option<Arc<str>>,
    /// The ops of the change, for the 0.6/0.7 `state` message.
    ops: Arc<[PatchOperation]>,
    /// That message, encoded once on first use by a 0.6/0.7 connection;
    /// `None` when the ops are not all `add`/`remove`/`replace`, which
    /// those connections must not send.
    state_message: Arc<OnceLock<Option<Arc<str>>>>,
    /// The change under each pointer a group's part is mounted at.
    mounted: Arc<Mutex<MountedByPointer>>,
}

/// A change as each pointer's parts see it, made on first use.
type MountedByPointer = Vec<(PointerBuf, Arc<MountedChange>)>;

impl SharedChange {
    /// The state after the change.
    pub fn data(&self) -> &Arc<Value> {
        &self.data
    }

    /// Whether the change changed anything.
    pub fn is_empty(&self) -> bool {
        self.frame.is_none()
    }

    /// The change as the 0.6/0.7 `state` message, encoded once for every
    /// connection; `None` for ops other than `add`, `remove` and
    /// `replace`.
    pub(crate) fn state_message(&self) -> Option<&Arc<str>> {
        self.state_message
            .get_or_init(|| {
                crate::v07::message::plain_ops(&self.ops)
                    .then(|| Arc::from(crate::v07::message::encode_state(&self.ops)))
            })
            .as_ref()
    }

    /// The change as a group's part at `pointer` sees it, made once per
    /// pointer for every member; `None` when the change changed nothing.
    pub(crate) fn mounted_at(
        &self,
        pointer: &str,
    ) -> Result<Option<Arc<MountedChange>>, UpdateError> {
        if self.is_empty() {
            return Ok(None);
        }
        let parsed = Pointer::parse(pointer)
            .map_err(|_| UpdateError::Patch(format!("not a JSON pointer: {pointer:?}")))?;
        // The group publishes under its own lock: this is never contended.
        let mut cache = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, mounted)) = cache.iter().find(|(at, _)| at.as_str() == pointer) {
            return Ok(Some(mounted.clone()));
        }
        let mounted = Arc::new(MountedChange::new(parsed, &self.ops));
        cache.push((parsed.to_buf(), mounted.clone()));
        Ok(Some(mounted))
    }
}

impl SharedState {
    /// A shared state holding `data`.
    pub fn new(data: impl Into<Arc<Value>>) -> Self {
        SharedState { data: data.into() }
    }

    /// The current state.
    pub fn data(&self) -> &Arc<Value> {
        &self.data
    }

    /// Replaces the state: one diff, one encoding.
    pub fn set(&mut self, data: impl Into<Arc<Value>>) -> SharedChange {
        let data = data.into();
        let ops = crate::diff(&self.data, &data);
        self.advance(data, &ops)
    }

    /// Changes the state with RFC 6902 ops, which become the frame as they
    /// are (no diff). The state is copied once if connections still hold the
    /// previous version (they do, to compare against it); the patch applies
    /// whole or not at all.
    pub fn update(&mut self, ops: Vec<PatchOperation>) -> Result<SharedChange, UpdateError> {
        let mut data = self.data.clone();
        crate::apply(Arc::make_mut(&mut data), &ops)
            .map_err(|err| UpdateError::Patch(err.to_string()))?;
        Ok(self.advance(data, &ops))
    }

    fn advance(&mut self, data: Arc<Value>, ops: &[PatchOperation]) -> SharedChange {
        let base = std::mem::replace(&mut self.data, data.clone());
        let frame = (!ops.is_empty()).then(|| Arc::<str>::from(encode(FrameKind::Data, ops)));
        SharedChange {
            base,
            data,
            frame,
            ops: ops.into(),
            state_message: Arc::default(),
            mounted: Arc::default(),
        }
    }
}
