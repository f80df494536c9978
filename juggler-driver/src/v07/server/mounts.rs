//! A connection's parts that groups own: what [`Group`](crate::Group)
//! calls.

use juggler_core::{SharedChange, Value};

use super::Connection;
use crate::Error;

impl Connection {
    /// Gives the part at `pointer` to group `owner`, set to `data`.
    pub(crate) fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.mount(now, pointer, owner, data))?;
        self.changed();
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
        self.changed();
        Ok(())
    }
}
