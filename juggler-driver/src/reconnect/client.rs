//! The reconnecting client's handle and the state it shares with its
//! supervisor task.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use juggler_core::{CloseReason, Generation, PatchOperation, Value};
use tokio::sync::Notify;

use futures_util::future::BoxFuture;

use super::events::{ClientStatus, ReconnectEvents};
use super::options::ReconnectOptions;
use super::slot::{lost_connection, wait_on, Slot};
use super::supervisor::{Supervised, Supervision};
use crate::change_stream::{ChangeSource, ChangeStream};
use crate::{ClientOptions, Connection, Error, Runtime, WeakConnection};

type ChangeCallback = Arc<dyn Fn() + Send + Sync>;

/// A client that survives transport loss: one long-lived handle over a
/// series of connections to a list of addresses.
///
/// - **Attempts.** Each round tries the addresses in order, as the
///   reference JS `Application` does, and stops at the first that
///   connects. After a round in which none did (or after a connection
///   that did not last [`stable_after`](ReconnectOptions::stable_after)),
///   the next round waits by the [`Backoff`](super::Backoff).
///   [`max_failed_rounds`](ReconnectOptions::max_failed_rounds) failed
///   rounds in a row end the attempts (by default it tries forever).
/// - **Local data** lives here: every new connection gets it in full
///   before anything else, by its autoflush policy. Changes while
///   disconnected are kept and go out on the next connection.
/// - **Remote data** keeps its last value across a disconnect, until the
///   new connection's first DATA frame replaces it: no `null` in between,
///   and change subscribers see one change. (A 0.5 peer whose data is
///   `null` sends no DATA, so the old value stays until it has data.)
/// - **Messages.** [`send`](Self::send) goes to the current connection
///   and is not retried; without one it fails or waits by
///   [`WhileDisconnected`](crate::WhileDisconnected). [`receive`](Self::receive) returns messages of
///   every connection, in order, and waits across reconnects.
/// - **Events** ([`events`](Self::events)): connected (address,
///   generation), a failed attempt, disconnected (reason), gave up.
/// - **Closing.** [`close`](Self::close), or dropping the last handle,
///   flushes the open connection, closes it, and stops the attempts.
///
/// The runtime crates start one with `juggler_tokio::reconnecting` and
/// `juggler_smol::reconnecting`; docs/operations.md has the details.
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::{Error, ReconnectEvent, ReconnectingClient};
/// use serde_json::json;
///
/// /// Given a client from `reconnecting([...], ReconnectOptions::default())?`:
/// /// sets the local data once, for every connection to come, and reports.
/// async fn follow(client: ReconnectingClient) -> Result<(), Error> {
///     client.set_local_data(json!({"user": "alice"}))?; // re-sent on each reconnect
///     let mut events = client.events();
///     while let Some(event) = events.next().await {
///         match event {
///             ReconnectEvent::Connected { address, .. } => println!("up: {address}"),
///             ReconnectEvent::Disconnected { reason, .. } => {
///                 // The remote data stays as it was until the next connection's.
///                 println!("down ({reason:?}), showing {}", client.remote_data());
///             }
///             ReconnectEvent::GaveUp { .. } => break,
///             _ => {}
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct ReconnectingClient {
    handle: Arc<Handle>,
}

impl fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconnectingClient")
            .field("addresses", &self.handle.inner.supervision.addresses)
            .field("status", &self.status())
            .finish()
    }
}

/// Closes the client when the last [`ReconnectingClient`] goes.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.inner.close();
    }
}

/// What the handles and the supervisor task share.
pub struct Inner {
    supervision: Supervision,
    state: Mutex<ClientState>,
    /// Wakes whoever waits for a connection, a close or the end.
    status_changed: Notify,
    /// Wakes [`RemoteDataChanges`].
    remote_changed: Notify,
}

struct ClientState {
    /// The connections: current, draining, and how the client ended.
    slot: Slot<Connection>,
    /// The local data while no connection holds it.
    local: Arc<Value>,
    remote: Arc<Value>,
    /// Counts changes of `remote`.
    remote_version: u64,
    /// How many of the current connection's remote changes `remote` has.
    remote_seen: u64,
    callbacks: BTreeMap<u64, ChangeCallback>,
    next_callback_id: u64,
}

impl ClientState {
    /// The installed connection if it is open; a closed one is detached,
    /// and its local data (with every change that reached it) kept here.
    fn open_connection(&mut self) -> Option<Connection> {
        match self.slot.open() {
            Ok(open) => open,
            Err(closed) => {
                self.local = closed.local_data();
                None
            }
        }
    }

    fn detach(&mut self) {
        if let Some(connection) = self.slot.detach() {
            self.local = connection.local_data();
        }
    }
}

impl ReconnectingClient {
    /// Starts a client over `addresses` (`ws://` or `wss://` URLs, tried in
    /// this order) on `runtime`; the runtime crates' `reconnecting` is
    /// this with their runtime. Returns at once: the first attempt runs in
    /// the background (see [`events`](Self::events),
    /// [`wait_connected`](Self::wait_connected)). Fails with
    /// [`Error::InvalidAddress`] for an empty list or an address that is
    /// not a WebSocket URL.
    pub fn start<A: Into<String>>(
        addresses: impl IntoIterator<Item = A>,
        options: ReconnectOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<ReconnectingClient, Error> {
        let addresses: Vec<String> = addresses.into_iter().map(Into::into).collect();
        let supervision = Supervision::new(addresses, options, runtime.clone())?;
        let inner = Arc::new(Inner {
            supervision,
            state: Mutex::new(ClientState {
                slot: Slot::new(),
                local: Arc::new(Value::Null),
                remote: Arc::new(Value::Null),
                remote_version: 0,
                remote_seen: 0,
                callbacks: BTreeMap::new(),
                next_callback_id: 0,
            }),
            status_changed: Notify::new(),
            remote_changed: Notify::new(),
        });
        runtime.spawn(Box::pin(super::supervisor::run(inner.clone())));
        Ok(ReconnectingClient {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// The addresses, in the order they are tried.
    pub fn addresses(&self) -> &[String] {
        &self.inner().supervision.addresses
    }

    /// Where the client is now.
    pub fn status(&self) -> ClientStatus {
        self.inner().lock().slot.status()
    }

    /// The open connection, if any: for its
    /// [`span`](Connection::span), [`peer_addr`](Connection::peer_addr),
    /// or a layer such as juggler-rpc for the time it lasts. Keeping it
    /// does not stop the client from moving on to the next connection.
    pub fn connection(&self) -> Option<Connection> {
        self.inner().lock().open_connection()
    }

    /// Waits for an open connection, however long that takes; fails with
    /// [`Error::Closed`] once the client is closed and with
    /// [`Error::Disconnected`] once it gave up.
    pub async fn wait_connected(&self) -> Result<Connection, Error> {
        self.inner().wait_connected().await
    }

    /// The events since the start (for the first call) or since this
    /// call; see [`ReconnectEvents`].
    pub fn events(&self) -> ReconnectEvents {
        self.inner().supervision.events()
    }

    /// The local data as last set, whether or not a connection is open.
    pub fn local_data(&self) -> Arc<Value> {
        let mut state = self.inner().lock();
        match state.open_connection() {
            Some(connection) => connection.local_data(),
            None => state.local.clone(),
        }
    }

    /// Replaces the local data: on the open connection by its autoflush
    /// policy, and on every later connection in full.
    pub fn set_local_data(&self, data: impl Into<Arc<Value>>) -> Result<(), Error> {
        let data = data.into();
        let mut state = self.inner().lock();
        if state.slot.closing {
            return Err(Error::Closed);
        }
        if let Some(connection) = state.open_connection() {
            match connection.set_local_data(data.clone()) {
                Err(Error::Closed) => state.detach(),
                outcome => return outcome,
            }
        }
        state.local = data;
        Ok(())
    }

    /// Changes the local data by a JSON Patch, in O(change) (see
    /// [`Connection::update_local_data`]); without a connection the change
    /// is kept for the next one. Fails with [`Error::Patch`] when the
    /// patch does not apply; nothing changes then.
    pub fn update_local_data(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let mut state = self.inner().lock();
        if state.slot.closing {
            return Err(Error::Closed);
        }
        if let Some(connection) = state.open_connection() {
            match connection.update_local_data(ops.clone()) {
                Err(Error::Closed) => state.detach(),
                outcome => return outcome,
            }
        }
        juggler_core::apply(Arc::make_mut(&mut state.local), &ops)
            .map_err(|err| Error::Patch(err.to_string()))
    }

    /// Waits until the local data is sent on the open connection (see
    /// [`Connection::flush_local_data`]); without one, fails or waits by
    /// [`WhileDisconnected`](crate::WhileDisconnected).
    pub async fn flush_local_data(&self) -> Result<(), Error> {
        let connection = self.inner().connection_for_call().await?;
        connection.flush_local_data().await.map_err(lost_connection)
    }

    /// The peer's data as last received, kept across reconnects.
    pub fn remote_data(&self) -> Arc<Value> {
        self.inner().lock().remote.clone()
    }

    /// Calls `callback` once for every change of the remote data, on any
    /// connection; it runs on the connection's task, must not block, and
    /// may read the client. Dropping the handle unregisters it.
    #[must_use = "the callback is unregistered when the handle is dropped"]
    #[doc(alias("on_change", "subscribe"))]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> ClientChangeCallbackHandle {
        let mut state = self.inner().lock();
        let id = state.next_callback_id;
        state.next_callback_id += 1;
        state.callbacks.insert(id, Arc::new(callback));
        ClientChangeCallbackHandle {
            inner: Arc::downgrade(self.inner()),
            id,
        }
    }

    /// Remote data changes, across reconnects, as an async sequence.
    pub fn remote_changes(&self) -> RemoteDataChanges {
        ChangeStream::new(self.inner().clone())
    }

    /// Sends a MESSAGE on the open connection. Without one, fails or
    /// waits by [`WhileDisconnected`](crate::WhileDisconnected); a connection lost while the message
    /// waits to be written fails it with [`Error::Disconnected`]. Messages
    /// are never sent twice.
    pub async fn send(&self, message: &Value) -> Result<(), Error> {
        let connection = self.inner().connection_for_call().await?;
        connection.send(message).await.map_err(lost_connection)
    }

    /// The next message from the peer, of whichever connection, waiting
    /// across reconnects. Fails with [`Error::Closed`] once the client is
    /// closed, and with [`Error::Disconnected`] once it gave up, after
    /// the messages that arrived before. The messages a closed connection
    /// still holds are returned until the connection after it closes too.
    #[doc(alias = "recv")]
    pub async fn receive(&self) -> Result<Value, Error> {
        let inner = self.inner();
        let mut drained_epoch = 0;
        loop {
            let (connection, epoch) = inner
                .wait_status(|state| state.slot.next_to_drain(drained_epoch))
                .await?;
            match connection.receive().await {
                Ok(message) => return Ok(message),
                Err(_) => {
                    drained_epoch = epoch;
                    inner.lock().slot.drained(epoch);
                }
            }
        }
    }

    /// Stops the attempts, flushes and closes the open connection.
    /// Returns at once; see [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.inner().close();
    }

    /// Waits until the client has closed (or given up) and its last
    /// connection is gone.
    pub async fn wait_closed(&self) {
        self.inner()
            .wait_status(|state| state.slot.finished.then_some(()))
            .await;
    }

    /// [`close`](Self::close), then [`wait_closed`](Self::wait_closed).
    pub async fn shutdown(&self) {
        self.close();
        self.wait_closed().await;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, ClientState> {
        // Every critical section is short and panic-free.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn wait_status<T>(&self, check: impl FnMut(&mut ClientState) -> Option<T>) -> T {
        wait_on(&self.state, &self.status_changed, check).await
    }

    fn is_closing(&self) -> bool {
        self.lock().slot.closing
    }

    /// Waits until the application closes the client.
    async fn closing(&self) {
        self.wait_status(|state| state.slot.closing.then_some(()))
            .await;
    }

    async fn wait_connected(&self) -> Result<Connection, Error> {
        self.wait_status(|state| {
            if state.slot.closing {
                return Some(Err(Error::Closed));
            }
            match state.open_connection() {
                Some(connection) => Some(Ok(connection)),
                None => state.slot.ended().map(Err),
            }
        })
        .await
    }

    /// The open connection, for a call that needs one, by the
    /// [`WhileDisconnected`](crate::WhileDisconnected) policy.
    async fn connection_for_call(&self) -> Result<Connection, Error> {
        {
            let mut state = self.lock();
            if state.slot.closing {
                return Err(Error::Closed);
            }
            if let Some(connection) = state.open_connection() {
                return Ok(connection);
            }
        }
        self.supervision
            .while_disconnected(self.wait_connected())
            .await
    }

    pub(crate) fn close(&self) {
        let connection = { self.lock().slot.close() };
        if let Some(connection) = connection {
            connection.close();
        }
        self.wake_all();
    }

    fn wake_all(&self) {
        self.status_changed.notify_waiters();
        self.remote_changed.notify_waiters();
    }

    /// Makes `connection` the current one: it gets the local data, and
    /// its remote changes become the client's. `None` if the client is
    /// closing, in which case the connection is closed.
    fn install_connection(
        self: &Arc<Self>,
        connection: &Connection,
    ) -> Option<crate::ChangeCallbackHandle> {
        let epoch = {
            let mut state = self.lock();
            if state.slot.closing {
                drop(state);
                connection.close();
                return None;
            }
            if !state.local.is_null() {
                // A fresh connection is open and not closing yet, or it
                // closed already, which its supervisor sees next.
                let _ = connection.set_local_data(state.local.clone());
            }
            state.remote_seen = 0;
            state.slot.install(connection.clone())
        };
        let inner = Arc::downgrade(self);
        let weak = connection.downgrade();
        let callback = connection.register_change_cb(move || {
            if let Some(inner) = inner.upgrade() {
                inner.take_remote_changes(epoch, &weak);
            }
        });
        // Whatever arrived before the callback was registered.
        self.take_remote_changes(epoch, &connection.downgrade());
        self.wake_all();
        Some(callback)
    }

    /// The connection of `epoch` is closed: it is no longer current.
    fn uninstall_connection(&self, epoch_connection: &Connection) {
        {
            let mut state = self.lock();
            let current = state
                .slot
                .current()
                .is_some_and(|c| c.id() == epoch_connection.id());
            if current {
                state.detach();
            }
        }
        self.wake_all();
    }

    /// The supervisor has ended.
    fn finish_client(&self, gave_up: bool) {
        {
            let mut state = self.lock();
            state.detach();
            state.slot.finish(gave_up);
        }
        self.wake_all();
    }

    /// Copies the remote data of the connection of `epoch` if it changed
    /// since last copied, and tells the subscribers.
    fn take_remote_changes(&self, epoch: u64, connection: &WeakConnection) {
        let Some(connection) = connection.upgrade() else {
            return;
        };
        let (count, data) = connection.remote_changes_so_far();
        let callbacks: Vec<ChangeCallback> = {
            let mut state = self.lock();
            if state.slot.epoch != epoch || count <= state.remote_seen {
                return;
            }
            state.remote_seen = count;
            state.remote = data;
            state.remote_version += 1;
            state.callbacks.values().cloned().collect()
        };
        self.remote_changed.notify_waiters();
        for callback in callbacks {
            callback();
        }
    }
}

impl Supervised for Inner {
    type Session = Connection;
    type Installed = crate::ChangeCallbackHandle;

    fn supervision(&self) -> &Supervision {
        &self.supervision
    }

    fn connect(
        &self,
        address: &str,
        client: ClientOptions,
    ) -> BoxFuture<'static, Result<Connection, Error>> {
        let (address, runtime) = (address.to_owned(), self.supervision.runtime.clone());
        Box::pin(async move { crate::connect(&address, client, runtime).await })
    }

    fn generation(session: &Connection) -> Generation {
        session.generation()
    }

    fn closed(session: &Connection) -> BoxFuture<'_, CloseReason> {
        Box::pin(session.wait_closed())
    }

    fn install(self: &Arc<Self>, session: &Connection) -> Option<crate::ChangeCallbackHandle> {
        self.install_connection(session)
    }

    fn uninstall(&self, session: &Connection) {
        self.uninstall_connection(session);
    }

    fn is_closing(&self) -> bool {
        Inner::is_closing(self)
    }

    fn closing(&self) -> BoxFuture<'_, ()> {
        Box::pin(Inner::closing(self))
    }

    fn finish(&self, gave_up: bool) {
        self.finish_client(gave_up);
    }
}

/// Registration of a [`ReconnectingClient::register_change_cb`] callback;
/// dropping it unregisters the callback.
#[derive(Debug)]
pub struct ClientChangeCallbackHandle {
    inner: std::sync::Weak<Inner>,
    id: u64,
}

impl ClientChangeCallbackHandle {
    /// Unregisters the callback.
    pub fn cancel(self) {}
}

impl Drop for ClientChangeCallbackHandle {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let callback = inner.lock().callbacks.remove(&self.id);
            drop(callback);
        }
    }
}

/// Remote data changes of a [`ReconnectingClient`], across reconnects,
/// as an async sequence; see
/// [`ChangeStream`](crate::ChangeStream). Its
/// [`changed`](crate::ChangeStream::changed) fails with
/// [`Error::Closed`] once the client is closed, and with
/// [`Error::Disconnected`] once it gave up.
pub type RemoteDataChanges = ChangeStream<Inner>;

impl ChangeSource for Inner {
    const NAME: &'static str = "RemoteDataChanges";

    /// Waits for a change after version `seen`: the version and the data.
    async fn next_change(&self, seen: u64) -> Result<(u64, Arc<Value>), Error> {
        wait_on(&self.state, &self.remote_changed, |state| {
            if state.remote_version > seen {
                Some(Ok((state.remote_version, state.remote.clone())))
            } else {
                state.slot.ended().map(Err)
            }
        })
        .await
    }
}
