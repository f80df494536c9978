//! The members of a [`Group`](super::Group), of either generation, and
//! where each shows the group's state.

use std::sync::Arc;

use juggler_core::SharedChange;

use crate::{Connection, Error, WeakConnection};

/// A connection of any generation that can join a [`Group`](super::Group):
/// a 0.5 [`Connection`] shows the group's state in its local data, a
/// 0.6/0.7 [`v07::Connection`](crate::v07::Connection) in its state.
pub trait GroupMember: sealed::Sealed {}

impl GroupMember for Connection {}
impl GroupMember for crate::v07::Connection {}

/// A member as the group holds it: weakly, with where it shows the
/// group's state.
#[derive(Clone)]
pub(super) struct Joined {
    pub(super) member: Member,
    /// `None` for the whole state; else the pointer of the group's part.
    pub(super) at: Option<Arc<str>>,
}

/// A member of any generation.
#[derive(Clone)]
pub enum Member {
    V0_5(WeakConnection),
    V0_7(crate::v07::WeakConnection),
}

impl Member {
    pub(super) fn v0_5(&self) -> Option<Connection> {
        match self {
            Member::V0_5(member) => member.upgrade(),
            Member::V0_7(_) => None,
        }
    }

    pub(super) fn v0_7(&self) -> Option<crate::v07::Connection> {
        match self {
            Member::V0_7(member) => member.upgrade(),
            Member::V0_5(_) => None,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        match self {
            Member::V0_5(member) => member.upgrade().is_some_and(|c| c.is_open()),
            Member::V0_7(member) => member.upgrade().is_some_and(|c| c.is_open()),
        }
    }
}

impl Joined {
    /// Shows `change` to the member; whether it is still open. A 0.6/0.7
    /// member goes to `told`, whose change callbacks the caller calls once
    /// the group's lock is released. A part that can't take the change
    /// stays as it was, and the member stays.
    pub(super) fn publish(&self, change: &SharedChange, told: &mut Vec<Told>) -> bool {
        let outcome = match (&self.member, &self.at) {
            (Member::V0_5(member), None) => member
                .upgrade()
                .map(|connection| connection.set_local_data_shared(change)),
            (Member::V0_5(member), Some(at)) => member
                .upgrade()
                .map(|connection| connection.set_local_data_shared_at(at, change)),
            (Member::V0_7(member), at) => member.upgrade().map(|connection| {
                let outcome = match at {
                    None => connection.set_state_shared_untold(change),
                    Some(at) => connection.set_state_shared_at(at, change),
                };
                told.push(Told(Some(connection)));
                outcome
            }),
        };
        match outcome {
            Some(Ok(())) => true,
            Some(Err(Error::Closed)) | None => false,
            Some(Err(err)) => {
                tracing::warn!(error = %err, "a group's change does not fit a member's state");
                self.member.is_open()
            }
        }
    }

    /// Gives the member's part back to it, if it has one from group
    /// `owner`.
    pub(super) fn release(&self, owner: u64) {
        let Some(at) = &self.at else { return };
        if let Some(connection) = self.member.v0_5() {
            connection.unmount(at, owner);
        } else if let Some(connection) = self.member.v0_7() {
            connection.unmount(at, owner);
        }
    }
}

/// A member whose change callbacks are due once the group's lock is
/// released (none for 0.5, whose callbacks are for remote data).
pub struct Told(pub(super) Option<crate::v07::Connection>);

impl Told {
    /// Calls the change callbacks.
    pub(super) fn tell(self) {
        if let Some(connection) = self.0 {
            connection.changed();
        }
    }
}

pub(super) mod sealed {
    use juggler_core::Value;

    use super::{Member, Told};
    use crate::Error;

    /// What the group does with a member.
    pub trait Sealed {
        /// Its number in this process.
        fn member_id(&self) -> u64;
        /// Shows `state` as its whole state; fails when it is closed.
        fn show(&self, state: std::sync::Arc<Value>) -> Result<(), Error>;
        /// Gives its part at `pointer` to group `owner`, set to `data`.
        fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error>;
        /// Who to tell of a change made by `show` or `mount`, once the
        /// group's lock is released.
        fn told(&self) -> Told;
        /// How the group holds it.
        fn member(&self) -> Member;
    }

    impl Sealed for crate::Connection {
        fn member_id(&self) -> u64 {
            self.id()
        }
        fn show(&self, state: std::sync::Arc<Value>) -> Result<(), Error> {
            self.set_local_data(state)
        }
        fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error> {
            crate::Connection::mount(self, pointer, owner, data)
        }
        fn told(&self) -> Told {
            Told(None)
        }
        fn member(&self) -> Member {
            Member::V0_5(self.downgrade())
        }
    }

    impl Sealed for crate::v07::Connection {
        fn member_id(&self) -> u64 {
            self.id()
        }
        fn show(&self, state: std::sync::Arc<Value>) -> Result<(), Error> {
            self.show_untold(state)
        }
        fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error> {
            crate::v07::Connection::mount(self, pointer, owner, data)
        }
        fn told(&self) -> Told {
            Told(Some(self.clone()))
        }
        fn member(&self) -> Member {
            Member::V0_7(self.downgrade())
        }
    }
}
