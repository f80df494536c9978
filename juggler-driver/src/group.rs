//! Broadcast groups: one state and one message stream for many
//! connections.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use juggler_core::{path_edit, EncodedMessage, PatchOperation, SharedState, Value};

mod member;

pub use member::GroupMember;
use member::{Joined, Member, Told};

use crate::{Connection, Error};

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
    /// This group's number in the process: the owner of its members' parts.
    id: u64,
    state: SharedState,
    /// By connection id.
    members: BTreeMap<u64, Joined>,
    slow_members: SlowMembers,
    /// Copies of messages and notifications that members with a full send
    /// queue did not get.
    dropped: u64,
}

/// What [`Group::send`] and [`Group::notify`] do with a member whose send
/// queue is full: a broadcast never waits on one slow member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowMembers {
    /// The member misses that message; [`Group::dropped`] counts it. The
    /// default.
    #[default]
    Drop,
    /// The member is closed (and leaves the group): a client that can't
    /// keep up reconnects and starts from the whole state.
    Close,
}

static NEXT_GROUP_ID: AtomicU64 = AtomicU64::new(1);

impl Drop for GroupState {
    /// The members' parts become their own: no part stays owned by a group
    /// that is gone.
    fn drop(&mut self) {
        for joined in self.members.values() {
            joined.release(self.id);
        }
    }
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
                id: NEXT_GROUP_ID.fetch_add(1, Ordering::Relaxed),
                state: SharedState::new(state),
                members: BTreeMap::new(),
                slow_members: SlowMembers::default(),
                dropped: 0,
            })),
        }
    }

    /// Sets what a broadcast does with a member whose send queue is full
    /// (by default it drops that member's copy). A clone is the same
    /// group, so the policy holds for every clone, made before or after.
    #[must_use]
    pub fn slow_members(self, policy: SlowMembers) -> Self {
        self.lock().slow_members = policy;
        self
    }

    /// How many copies of messages and notifications members missed
    /// because their send queue was full ([`SlowMembers::Drop`]).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Counts one broadcast's outcome for a member: whether it got the
    /// copy; a full queue is handled by the policy.
    fn delivered(&self, outcome: Result<(), Error>, close: impl FnOnce()) -> bool {
        match outcome {
            Ok(()) => true,
            Err(Error::QueueFull) => {
                let mut group = self.lock();
                match group.slow_members {
                    SlowMembers::Close => {
                        drop(group);
                        close();
                    }
                    _ => group.dropped += 1,
                }
                false
            }
            Err(_) => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // Every critical section is short and leaves the state whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `connection`, of any generation: its local data (0.5) or its
    /// state (0.6/0.7) becomes the group's state (sent by its autoflush
    /// policy), and it gets every later change. Joining twice is joining
    /// once. Fails with [`Error::Closed`] for a closed connection.
    ///
    /// To show the group in a part of the connection's state, beside its
    /// own part and other groups', use [`join_at`](Self::join_at). (A
    /// connection that is in groups at pointers too keeps their parts
    /// over this group's state.)
    pub fn join(&self, connection: &impl GroupMember) -> Result<(), Error> {
        let mut group = self.lock();
        // A part this group had becomes the whole state.
        if let Some(before) = group.members.get(&connection.member_id()) {
            before.release(group.id);
        }
        connection.show(group.state.data().clone())?;
        let joined = Joined {
            member: connection.member(),
            at: None,
        };
        group.members.insert(connection.member_id(), joined);
        drop(group);
        connection.told().tell();
        Ok(())
    }

    /// Adds `connection`, of any generation, as a room: the group owns the
    /// part of the connection's state at JSON pointer `pointer` (`/chat`,
    /// `/plant/3`), which becomes the group's state. The rest stays the
    /// connection's own, and a connection can be in several groups at
    /// several pointers.
    ///
    /// - Each change of the group is diffed once and goes to every member
    ///   as the same ops under the pointer, encoded once per pointer and
    ///   applied to each member's state in place, in O(change).
    /// - The connection's own changes keep their hands off the part:
    ///   setting its whole state keeps the part as the group has it, and
    ///   an own patch op at, inside or around the part fails with
    ///   [`Error::Patch`].
    /// - Joining again at the same pointer sets the part again; at another
    ///   pointer it moves. [`leave`](Self::leave), or the group's end,
    ///   gives the part back to the connection as it is.
    ///
    /// A value on the way that is not an object or an array (a new
    /// connection's `null` state) becomes an object. Fails with
    /// [`Error::Mount`] (a [`MountError`](crate::MountError)) when another
    /// group owns a part that overlaps `pointer`, when `pointer` is not a
    /// JSON pointer or is `""` (that is [`join`](Self::join)), and when an
    /// array on the way has no such index; with [`Error::Closed`] for a
    /// closed connection. Nothing changes then.
    ///
    /// ```
    /// use juggler_driver::{Connection, Group};
    /// use serde_json::json;
    ///
    /// /// A server's `on_connection`: every page shows the chat and its
    /// /// plant, beside what is its own.
    /// fn on_connection(chat: &Group, plants: &[Group], plant: usize, connection: Connection) {
    ///     let _ = chat.join_at(&connection, "/chat");
    ///     let _ = plants[plant].join_at(&connection, "/plant");
    ///     let _ = connection.update_local_data(vec![serde_json::from_value(
    ///         json!({"op": "add", "path": "/user", "value": "ana"}),
    ///     ).unwrap()]);
    /// }
    ///
    /// let chat = Group::new(json!({"lines": []}));
    /// chat.set("/lines/-", "hello")?; // one diff, one encoding, every member
    /// # Ok::<(), juggler_driver::Error>(())
    /// ```
    pub fn join_at(&self, connection: &impl GroupMember, pointer: &str) -> Result<(), Error> {
        let mut group = self.lock();
        let id = connection.member_id();
        let moved = group
            .members
            .get(&id)
            .is_some_and(|joined| joined.at.as_deref() != Some(pointer));
        // Released first: the new part may lie inside or around the old.
        let before = if moved {
            group.members.remove(&id)
        } else {
            None
        };
        if let Some(before) = &before {
            before.release(group.id);
        }
        let data = Value::clone(group.state.data());
        if let Err(err) = connection.mount(pointer, group.id, data) {
            if let Some(before) = before {
                // Back where it was: the same part, set again.
                if let Some(at) = &before.at {
                    let _ = connection.mount(at, group.id, Value::clone(group.state.data()));
                }
                group.members.insert(id, before);
            }
            return Err(err);
        }
        let joined = Joined {
            member: connection.member(),
            at: Some(pointer.into()),
        };
        group.members.insert(id, joined);
        drop(group);
        connection.told().tell();
        Ok(())
    }

    /// Removes `connection`; whether it was a member. Its local data (or
    /// state) stays as it was; a part the group owned is the connection's
    /// own again.
    pub fn leave(&self, connection: &impl GroupMember) -> bool {
        let mut group = self.lock();
        let left = group.members.remove(&connection.member_id());
        if let Some(joined) = &left {
            joined.release(group.id);
        }
        left.is_some()
    }

    /// The open members now, of every generation.
    #[doc(alias("len"))]
    pub fn member_count(&self) -> usize {
        let mut group = self.lock();
        group.members.retain(|_, joined| joined.member.is_open());
        group.members.len()
    }

    /// The open 0.5 members now, as connections.
    pub fn members(&self) -> Vec<Connection> {
        self.open_members(Member::v0_5)
    }

    /// The open 0.6/0.7 members now, as connections.
    pub fn v07_members(&self) -> Vec<crate::v07::Connection> {
        self.open_members(Member::v0_7)
    }

    /// The open members `pick` takes, after dropping the closed ones.
    fn open_members<T>(&self, mut pick: impl FnMut(&Member) -> Option<T>) -> Vec<T> {
        let mut group = self.lock();
        group.members.retain(|_, joined| joined.member.is_open());
        group
            .members
            .values()
            .filter_map(|joined| pick(&joined.member))
            .collect()
    }

    /// The state as last set.
    pub fn state(&self) -> Arc<Value> {
        self.lock().state.data().clone()
    }

    /// Replaces the state: diffed once against the previous one, encoded
    /// once per generation, and set on every member.
    #[doc(alias("broadcast", "publish"))]
    pub fn set_state(&self, state: impl Into<Arc<Value>>) {
        let mut group = self.lock();
        let change = group.state.set(state);
        publish(group, &change);
    }

    /// Changes the state with `change` under the group's own lock, so that
    /// a read-modify-write from many tasks and threads loses no update
    /// (what Python's one thread gives `state.set('n', state.get('n') +
    /// 1)`; reading [`state`](Self::state) and then calling
    /// [`set_state`](Self::set_state) does not). The diff goes to every
    /// member, as for `set_state`, and what `change` returns is returned.
    /// `change` works on a copy of the state and must not use the group.
    ///
    /// ```
    /// use juggler_driver::Group;
    /// use serde_json::json;
    ///
    /// let group = Group::new(json!({"counter": 0}));
    /// let counter = group.modify(|state| {
    ///     state["counter"] = json!(state["counter"].as_i64().unwrap_or(0) + 1);
    ///     state["counter"].clone()
    /// });
    /// assert_eq!(counter, json!(1));
    /// ```
    pub fn modify<R>(&self, change: impl FnOnce(&mut Value) -> R) -> R {
        let mut group = self.lock();
        let mut state = Value::clone(group.state.data());
        let result = change(&mut state);
        let change = group.state.set(state);
        publish(group, &change);
        result
    }

    /// Changes the state by a JSON Patch, in O(change), sent once encoded
    /// to every member; fails with [`Error::Patch`] if the patch does not
    /// apply, and then nothing changes.
    pub fn update_state(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let mut group = self.lock();
        let change = group.state.update(ops).map_err(Error::from)?;
        publish(group, &change);
        Ok(())
    }

    /// The value at JSON pointer `pointer` (`""` is the whole state), as
    /// the reference's `json.Storage.get(path)`: `None` when there is none.
    pub fn get(&self, pointer: &str) -> Result<Option<Value>, Error> {
        let group = self.lock();
        Ok(path_edit::get_at(group.state.data(), pointer)?.cloned())
    }

    /// Sets the value at JSON pointer `pointer` to `value`, as the
    /// reference's `json.Storage.set(path, value)`, under the group's lock:
    /// members get it as one patch op (missing objects on the way are
    /// created in that op; see [`path_edit::set_op`]). An impossible path
    /// gives [`Error::Patch`] and changes nothing.
    ///
    /// ```
    /// use juggler_driver::Group;
    /// use serde_json::json;
    ///
    /// let state = Group::new(json!({"counter": 0, "log": []}));
    /// state.set("/counter", json!(1))?;
    /// state.set("/log/-", json!("started"))?;
    /// state.remove("/counter")?;
    /// assert_eq!(state.get("/log/0")?, Some(json!("started")));
    /// assert_eq!(*state.state(), json!({"log": ["started"]}));
    /// # Ok::<(), juggler_driver::Error>(())
    /// ```
    pub fn set(&self, pointer: &str, value: impl Into<Value>) -> Result<(), Error> {
        let mut group = self.lock();
        let op = path_edit::set_op(group.state.data(), pointer, value.into())?;
        let change = group.state.update(vec![op]).map_err(Error::from)?;
        publish(group, &change);
        Ok(())
    }

    /// Removes the value at JSON pointer `pointer`, as the reference's
    /// `json.Storage.remove(path)`: one patch op to the members, or
    /// nothing when there is no value there.
    pub fn remove(&self, pointer: &str) -> Result<(), Error> {
        let mut group = self.lock();
        if let Some(op) = path_edit::remove_op(group.state.data(), pointer)? {
            let change = group.state.update(vec![op]).map_err(Error::from)?;
            publish(group, &change);
        }
        Ok(())
    }

    /// Queues a notification, encoded once, on every 0.6/0.7 member, never
    /// waiting: a member whose send queue is full misses it or is closed,
    /// by the [`SlowMembers`] policy. Returns how many got it.
    pub async fn notify(&self, name: &str, data: &Value) -> usize {
        let members = self.v07_members();
        if members.is_empty() {
            return 0;
        }
        let encoded = juggler_core::v07::message::EncodedNotify::new(name, data);
        members
            .iter()
            .filter(|member| self.delivered(member.try_notify_encoded(&encoded), || member.close()))
            .count()
    }

    /// Queues `message`, encoded once, on every 0.5 member, never waiting:
    /// a member whose send queue is full misses it or is closed, by the
    /// [`SlowMembers`] policy. Returns how many members got it; members
    /// that closed meanwhile do not count.
    pub async fn send(&self, message: &Value) -> usize {
        let encoded = EncodedMessage::shared(message);
        let members = self.members();
        members
            .iter()
            .filter(|member| {
                self.delivered(member.try_send_encoded(encoded.clone()), || member.close())
            })
            .count()
    }
}

/// Shows `change` to every open member and forgets the others; then,
/// with the group's lock released, calls the members' change callbacks,
/// which may use the group.
fn publish(mut group: MutexGuard<'_, GroupState>, change: &juggler_core::SharedChange) {
    let mut told = Vec::new();
    group
        .members
        .retain(|_, joined| joined.publish(change, &mut told));
    drop(group);
    told.into_iter().for_each(Told::tell);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Threads that each read-modify-write the state lose no update.
    #[test]
    fn modify_loses_no_update_across_threads() {
        let group = Group::new(json!({"counter": 0}));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let group = group.clone();
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        group.modify(|state| {
                            let counter = state["counter"].as_i64().unwrap_or(0);
                            // A window where another thread would slip in
                            // if the lock were not held across it.
                            std::thread::yield_now();
                            state["counter"] = json!(counter + 1);
                        });
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*group.state(), json!({"counter": 4000}));
    }
}
