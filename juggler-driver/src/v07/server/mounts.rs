//! What [`Group`](crate::Group) calls on a member. None of these tells
//! the change callbacks: the group calls [`Connection::changed`] once its
//! lock is released, so that a callback may use the group.

use std::sync::Arc;

use juggler_core::{SharedChange, Value};

use super::Connection;
use crate::Error;

impl Connection {
    /// Sets the whole state to the group's.
    pub(crate) fn show_untold(&self, state: Arc<Value>) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.set_state(now, state))
            .map_err(Error::from)
    }

    /// Shows a group's change of the whole state.
    pub(crate) fn set_state_shared_untold(&self, change: &SharedChange) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.set_state_shared(now, change))
            .map_err(Error::from)
    }

    /// Gives the part at `pointer` to group `owner`, set to `data`.
    pub(crate) fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.mount(now, pointer, owner, data))?;
        Ok(())
    }

    /// Takes the part at `pointer` back from group `owner`.
    pub(crate) fn unmount(&self, pointer: &str, owner: u64) -> bool {
        self.link.update(|link| link.engine.unmount(pointer, owner))
    }

    /// Applies the change of the group whose part is at `pointer`.
    pub(crate) fn set_state_shared_at(
        &self,
        pointer: &str,
        change: &SharedChange,
    ) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.set_state_shared_at(now, pointer, change))?;
        Ok(())
    }
}
