//! A group's state shown in the local data: whole (the group's
//! [`SharedChange`]s go out as they are) or as a part beside the
//! connection's own ("rooms", see [`crate::mount`]).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use super::{Engine, LocalChange};
use crate::mount::{apply_mounted, MountError};
use crate::{Closed, SharedChange, UpdateError};

impl Engine {
    /// Sets the local data to a [`SharedState`](crate::SharedState)'s new
    /// version. When this engine's local data is the change's previous
    /// version, and nothing else is unsent, the change's pre-encoded frame
    /// is what goes out, by the autoflush policy: no diff, no encoding,
    /// shared bytes. Changes made within one delay (or before a manual
    /// flush) go out as their frames, in order. Otherwise it is
    /// [`set_local_data`](Self::set_local_data) with the new version.
    pub fn set_local_data_shared(
        &mut self,
        now: Instant,
        change: &SharedChange,
    ) -> Result<(), Closed> {
        self.ensure_open()?;
        if !Arc::ptr_eq(&self.local, &change.base) {
            return self.set_local_data(now, change.data.clone());
        }
        match &mut self.change {
            LocalChange::None => {
                self.change = LocalChange::Shared {
                    base: self.local.clone(),
                    frames: Vec::new(),
                };
            }
            LocalChange::Shared { .. } => {}
            // Unsent changes of another kind: a diff covers them all.
            LocalChange::Ops(_) | LocalChange::Replaced { .. } => {
                return self.set_local_data(now, change.data.clone());
            }
        }
        if let LocalChange::Shared { frames, .. } = &mut self.change {
            frames.extend(change.frame.clone());
        }
        self.local = change.data.clone();
        self.schedule(now);
        Ok(())
    }

    /// Gives the part of the local data at `pointer` to the group
    /// `owner` (a number the caller picks, one per group), and sets it to
    /// the group's `data`, sent as one op by the autoflush policy. From
    /// then on the group changes the part with
    /// [`set_local_data_shared_at`](Self::set_local_data_shared_at), while
    /// [`set_local_data`](Self::set_local_data) keeps the part as it is
    /// and [`update_local_data`](Self::update_local_data) refuses to
    /// touch it. Mounting again with the same group and pointer sets the
    /// part again.
    ///
    /// Fails with [`MountError::Overlaps`] when another group owns a part
    /// at, inside or around `pointer`, with [`MountError::Root`] for
    /// `""`, and with [`MountError::Path`] for a pointer that is not one
    /// or an array on the way that has no such index; nothing changes
    /// then. A value on the way that is not an object or an array (a new
    /// connection's `null`) becomes an object.
    ///
    /// ```
    /// use std::time::Instant;
    /// use juggler_core::{AutoflushPolicy, Config, Engine, SharedState};
    /// use serde_json::json;
    ///
    /// # let now = Instant::now();
    /// let mut chat = SharedState::new(json!([]));
    /// let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
    /// engine.set_local_data(now, json!({"user": "ana"}))?;
    /// engine.mount(now, "/chat", 1, chat.data().as_ref().clone())?;
    /// # while engine.poll_transmit().is_some() {}
    /// let change = chat.set(json!(["hi"]));              // one diff for every member
    /// engine.set_local_data_shared_at(now, "/chat", &change)?;
    /// assert_eq!(
    ///     engine.poll_transmit().unwrap().text.as_str(),
    ///     r#"{"type":"DATA","payload":[{"op":"add","path":"/chat/0","value":"hi"}]}"#,
    /// );
    /// engine.set_local_data(now, json!({"user": "bo"}))?;   // the part stays
    /// assert_eq!(**engine.local_data(), json!({"user": "bo", "chat": ["hi"]}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mount(
        &mut self,
        now: Instant,
        pointer: &str,
        owner: u64,
        data: Value,
    ) -> Result<(), MountError> {
        self.ensure_open().map_err(|_| MountError::Closed)?;
        let op = self.mounts.mount(&mut self.local, pointer, owner, data)?;
        self.pend(vec![op]);
        self.schedule(now);
        Ok(())
    }

    /// Takes the part at `pointer` back from group `owner`: its value
    /// stays, now the connection's own. Whether the group had it.
    pub fn unmount(&mut self, pointer: &str, owner: u64) -> bool {
        self.mounts.unmount(pointer, owner)
    }

    /// Whether groups own parts of the local data.
    pub fn has_mounts(&self) -> bool {
        !self.mounts.is_empty()
    }

    /// Applies `change`, of the group whose part is at `pointer`, to that
    /// part, in place, in O(change): the change's ops under `pointer` go
    /// out as one DATA frame encoded once for every member with the part
    /// at `pointer` (kept in `change`), by the autoflush policy. When the
    /// part does not hold the group's previous version, the new one is
    /// set whole instead.
    pub fn set_local_data_shared_at(
        &mut self,
        now: Instant,
        pointer: &str,
        change: &SharedChange,
    ) -> Result<(), UpdateError> {
        self.ensure_open()?;
        if let Some(run) = apply_mounted(&mut self.local, pointer, change, false)? {
            self.pend(run);
            self.schedule(now);
        }
        Ok(())
    }
}
