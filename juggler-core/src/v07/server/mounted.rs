//! Groups' parts of the state ("rooms"): see [`crate::mount`].

use std::time::Instant;

use serde_json::Value;

use super::ServerEngine;
use crate::mount::{apply_mounted, MountError};
use crate::{SharedChange, UpdateError};

impl ServerEngine {
    /// Gives the part of the state at `pointer` to the group `owner` (a
    /// number the caller picks, one per group) and sets it to the group's
    /// `data`, sent as one op by the autoflush policy, as
    /// [`Engine::mount`](crate::Engine::mount) does for 0.5: from then on
    /// the group changes the part with
    /// [`set_state_shared_at`](Self::set_state_shared_at), while
    /// [`set_state`](Self::set_state) keeps the part and
    /// [`update_state`](Self::update_state) refuses to touch it.
    ///
    /// ```
    /// use std::time::Instant;
    /// use juggler_core::v07::{ServerConfig, ServerEngine};
    /// use juggler_core::{AutoflushPolicy, SharedState};
    /// use serde_json::json;
    ///
    /// # let now = Instant::now();
    /// let mut chat = SharedState::new(json!([]));
    /// let config = ServerConfig::v0_7().autoflush(AutoflushPolicy::Immediate);
    /// let mut engine = ServerEngine::new(config, json!({"user": "ana"}), now);
    /// engine.mount(now, "/chat", 1, chat.data().as_ref().clone())?;
    /// # while engine.poll_transmit().is_some() {}
    /// let change = chat.set(json!(["hi"]));
    /// engine.set_state_shared_at(now, "/chat", &change)?;
    /// assert_eq!(
    ///     engine.poll_transmit().unwrap().text.as_str(),
    ///     r#"0{"type":"state","diff":[{"op":"add","path":"/chat/0","value":"hi"}]}"#,
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mount(
        &mut self,
        now: Instant,
        pointer: &str,
        owner: u64,
        data: Value,
    ) -> Result<(), MountError> {
        if self.closed.is_some() {
            return Err(MountError::Closed);
        }
        let op = self.mounts.mount(&mut self.state, pointer, owner, data)?;
        self.pend(vec![op]);
        self.schedule(now);
        Ok(())
    }

    /// Takes the part at `pointer` back from group `owner`: its value
    /// stays, now the connection's own. Whether the group had it.
    pub fn unmount(&mut self, pointer: &str, owner: u64) -> bool {
        self.mounts.unmount(pointer, owner)
    }

    /// Whether groups own parts of the state.
    pub fn has_mounts(&self) -> bool {
        !self.mounts.is_empty()
    }

    /// Applies `change`, of the group whose part is at `pointer`, to that
    /// part, in place, in O(change): its ops under `pointer` go out as one
    /// `state` message encoded once for every member with the part at
    /// `pointer`. When the part does not hold the group's previous
    /// version, or the ops are not all `add`/`remove`/`replace`, the new
    /// part is set whole instead.
    pub fn set_state_shared_at(
        &mut self,
        now: Instant,
        pointer: &str,
        change: &SharedChange,
    ) -> Result<(), UpdateError> {
        if self.closed.is_some() {
            return Err(UpdateError::Closed);
        }
        if let Some(run) = apply_mounted(&mut self.state, pointer, change, true)? {
            self.pend(run);
            self.schedule(now);
        }
        Ok(())
    }
}
