//! Broadcast groups: one state and one message stream for many
//! connections.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use juggler_core::{EncodedMessage, PatchOperation, SharedState, Value};

use crate::{Connection, Error, WeakConnection};

/// Connections that show one state and get the same messages.
///
/// A connection [`join`](Self::join)s and gets the group's state as its
/// local data; from then on [`set_state`](Self::set_state) and
/// [`update_state`](Self::update_state) diff a change once and encode it
/// once (a [`SharedState`]), however many members there are, and
/// [`send`](Self::send) encodes a message once. The group holds its
/// members weakly: a member leaves when its connection closes or its last
/// handle is dropped, with no call, and [`member_count`](Self::member_count)
/// counts only the open ones. A clone is the same group.
///
/// ```
/// use juggler_driver::{Connection, Group};
/// use serde_json::json;
///
/// /// A server's `on_connection`: every page shows the board.
/// fn on_connection(board: &Group, connection: Connection) {
///     // A connection that closed already is simply not a member.
///     let _ = board.join(&connection);
///     // ... keep `connection` for as long as it should live
/// }
///
/// let board = Group::new(json!({"counter": 0}));
/// board.set_state(json!({"counter": 1})); // diffed once, sent to every member
/// assert_eq!(board.member_count(), 0);
/// ```
#[derive(Clone)]
pub struct Group {
    inner: Arc<Mutex<GroupState>>,
}

struct GroupState {
    state: SharedState,
    /// By connection id.
    members: BTreeMap<u64, WeakConnection>,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("members", &self.member_count())
            .finish()
    }
}

impl Group {
    /// A group with no members and `state`.
    pub fn new(state: impl Into<Arc<Value>>) -> Self {
        Group {
            inner: Arc::new(Mutex::new(GroupState {
                state: SharedState::new(state),
                members: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // Every critical section is short and leaves the state whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `connection`: its local data becomes the group's state (sent by
    /// its autoflush policy), and it gets every later change. Joining
    /// twice is joining once. Fails with [`Error::Closed`] for a closed
    /// connection.
    pub fn join(&self, connection: &Connection) -> Result<(), Error> {
        let mut group = self.lock();
        connection.set_local_data(group.state.data().clone())?;
        group
            .members
            .insert(connection.id(), connection.downgrade());
        Ok(())
    }

    /// Removes `connection`; whether it was a member. Its local data stays
    /// as it was.
    pub fn leave(&self, connection: &Connection) -> bool {
        self.lock().members.remove(&connection.id()).is_some()
    }

    /// The open members now.
    #[doc(alias("len"))]
    pub fn member_count(&self) -> usize {
        let mut group = self.lock();
        group.members.retain(|_, member| is_open(member));
        group.members.len()
    }

    /// The open members now, as connections.
    pub fn members(&self) -> Vec<Connection> {
        let mut group = self.lock();
        group.members.retain(|_, member| is_open(member));
        group
            .members
            .values()
            .filter_map(WeakConnection::upgrade)
            .collect()
    }

    /// The state as last set.
    pub fn state(&self) -> Arc<Value> {
        self.lock().state.data().clone()
    }

    /// Replaces the state: diffed once against the previous one, encoded
    /// once, and set on every member.
    #[doc(alias("broadcast", "publish"))]
    pub fn set_state(&self, state: impl Into<Arc<Value>>) {
        let mut group = self.lock();
        let change = group.state.set(state);
        publish(&mut group, |member| member.set_local_data_shared(&change));
    }

    /// Changes the state by a JSON Patch, in O(change), sent once encoded
    /// to every member; fails with [`Error::Patch`] if the patch does not
    /// apply, and then nothing changes.
    pub fn update_state(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let mut group = self.lock();
        let change = group.state.update(ops).map_err(Error::from)?;
        publish(&mut group, |member| member.set_local_data_shared(&change));
        Ok(())
    }

    /// Sends `message` to every member, encoded once, and waits until each
    /// has queued it (a member with a full send queue is waited for, as
    /// [`Connection::send`] does). Returns how many members got it;
    /// members that closed meanwhile do not count.
    pub async fn send(&self, message: &Value) -> usize {
        let encoded = EncodedMessage::shared(message);
        let members = self.members();
        let sends = members
            .iter()
            .map(|member| member.send_encoded(encoded.clone()));
        futures_util::future::join_all(sends)
            .await
            .into_iter()
            .filter(Result::is_ok)
            .count()
    }
}

fn is_open(member: &WeakConnection) -> bool {
    member
        .upgrade()
        .is_some_and(|connection| connection.is_open())
}

/// Applies `set` to every open member and forgets the others.
fn publish(group: &mut GroupState, set: impl Fn(&Connection) -> Result<(), Error>) {
    group.members.retain(|_, member| match member.upgrade() {
        Some(connection) => set(&connection).is_ok(),
        None => false,
    });
}
