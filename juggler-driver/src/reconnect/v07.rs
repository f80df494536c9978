//! The reconnecting client of 0.6/0.7: the supervisor of every
//! generation over [`v07::Client`] connections.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use futures_util::future::BoxFuture;
use juggler_core::{CloseReason, Generation, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Notify;

use super::events::{ClientStatus, ReconnectEvents};
use super::options::ReconnectOptions;
use super::slot::{lost_connection, wait_on, Slot};
use super::supervisor::{Supervised, Supervision};
use crate::v07::{Client, Notification, Options};
use crate::{ClientOptions, Error, Runtime};

/// A 0.6/0.7 client that survives transport loss: one long-lived handle
/// over a series of [`Client`] connections to a list of addresses, as the
/// reference JS `Application`, with the same attempts, backoff, events and
/// [`ReconnectOptions`] as the 0.5 [`ReconnectingClient`](crate::ReconnectingClient)
/// (headers made anew for each attempt with
/// [`ReconnectOptions::headers`]).
///
/// - **State** keeps its last value across a disconnect, until the new
///   connection's first state replaces it: no `null` in between, and
///   [`state_changes`](Self::state_changes) sees one change.
/// - **Requests** ([`send`](Self::send), [`request`](Self::request)) go to
///   the current connection and are not retried; without one they fail at
///   once with [`Error::Disconnected`], or wait, by
///   [`WhileDisconnected`](crate::WhileDisconnected). A connection lost
///   while a request waits for its answer fails it with
///   [`Error::Disconnected`].
/// - **Notifications** ([`receive`](Self::receive)) of every connection, in
///   order, when [`Options::notifications`] keeps them.
///
/// ```no_run
/// use juggler_driver::v07::{Options, ReconnectingClient};
/// use juggler_driver::{ReconnectEvent, ReconnectOptions};
///
/// # async fn run(runtime: std::sync::Arc<dyn juggler_driver::Runtime>) -> Result<(), juggler_driver::Error> {
/// let client = ReconnectingClient::start(
///     ["ws://primary:23023/ws", "ws://standby:23023/ws"],
///     Options::default(),
///     ReconnectOptions::default(),
///     runtime,
/// )?;
/// let mut events = client.events();
/// while let Some(event) = events.next().await {
///     if let ReconnectEvent::Connected { address, .. } = event {
///         println!("on {address}, showing {}", client.state());
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ReconnectingClient {
    handle: Arc<Handle>,
}

impl fmt::Debug for ReconnectingClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("v07::ReconnectingClient")
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

pub(crate) struct Inner {
    supervision: Supervision,
    options: Options,
    state: Mutex<ClientState>,
    /// Wakes whoever waits for a connection, a state, a close or the end.
    changed: Notify,
}

struct ClientState {
    /// The connections: current, draining, and how the client ended.
    slot: Slot<Client>,
    state: Arc<Value>,
    /// Counts changes of `state`.
    state_version: u64,
}

impl ReconnectingClient {
    /// Starts a client over `addresses` (`ws://` or `wss://` URLs, tried
    /// in this order) on `runtime`, each connection with `options`.
    /// Returns at once: the first attempt runs in the background. Fails
    /// with [`Error::InvalidAddress`] for an empty list or an address that
    /// is not a WebSocket URL.
    pub fn start<A: Into<String>>(
        addresses: impl IntoIterator<Item = A>,
        options: Options,
        reconnect: ReconnectOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<ReconnectingClient, Error> {
        let addresses = addresses.into_iter().map(Into::into).collect();
        let supervision = Supervision::new(addresses, reconnect, runtime.clone())?;
        let inner = Arc::new(Inner {
            supervision,
            options,
            state: Mutex::new(ClientState {
                slot: Slot::new(),
                state: Arc::new(Value::Null),
                state_version: 0,
            }),
            changed: Notify::new(),
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

    /// The open connection, if any.
    pub fn client(&self) -> Option<Client> {
        self.inner().lock().slot.open().unwrap_or(None)
    }

    /// Waits for an open connection; fails with [`Error::Closed`] once the
    /// client is closed and with [`Error::Disconnected`] once it gave up.
    pub async fn wait_connected(&self) -> Result<Client, Error> {
        self.inner().wait_connected().await
    }

    /// The events since the start (for the first call) or since this
    /// call; see [`ReconnectEvents`].
    pub fn events(&self) -> ReconnectEvents {
        self.inner().supervision.events()
    }

    /// The server state as last received, kept across reconnects (`null`
    /// until the first).
    pub fn state(&self) -> Arc<Value> {
        self.inner().lock().state.clone()
    }

    /// The state as a `T`; [`Error::RemoteDataType`] when it isn't one.
    pub fn state_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&*self.state()).map_err(Error::RemoteDataType)
    }

    /// Waits until the state changes after `seen` changes (start with 0),
    /// on any connection, and returns how many there were and the state
    /// then. Fails with [`Error::Closed`] once the client is closed, and
    /// with [`Error::Disconnected`] once it gave up.
    pub async fn state_changed(&self, seen: u64) -> Result<(u64, Arc<Value>), Error> {
        self.inner()
            .wait(|state| {
                if state.state_version > seen {
                    Some(Ok((state.state_version, state.state.clone())))
                } else {
                    state.slot.ended().map(Err)
                }
            })
            .await
    }

    /// The state after each change, across reconnects, as a stream that
    /// yields the current state first if there is one, and ends when the
    /// client closes or gives up. A reader that falls behind gets the
    /// latest state.
    pub fn state_changes(
        &self,
    ) -> impl futures_util::Stream<Item = Arc<Value>> + Send + Unpin + 'static {
        Box::pin(futures_util::stream::unfold(
            (self.clone(), 0),
            |(client, seen)| async move {
                let (seen, state) = client.state_changed(seen).await.ok()?;
                Some((state, (client, seen)))
            },
        ))
    }

    /// Sends a request on the open connection and waits for its answer
    /// (see [`Client::send`]); without a connection, fails or waits by
    /// [`WhileDisconnected`](crate::WhileDisconnected). Never sent twice.
    pub async fn send(&self, name: &str, data: Value) -> Result<Value, Error> {
        let client = self.inner().client_for_call().await?;
        client.send(name, data).await.map_err(lost_connection)
    }

    /// [`send`](Self::send) with types (see [`Client::request`]).
    pub async fn request<Req, Resp>(&self, name: &str, data: &Req) -> Result<Resp, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let client = self.inner().client_for_call().await?;
        client.request(name, data).await.map_err(lost_connection)
    }

    /// The next notification, of whichever connection, waiting across
    /// reconnects; `None` once the client is closed or gave up. Only with
    /// an [`Options::notifications`] policy that keeps them.
    pub async fn receive(&self) -> Option<Notification> {
        let inner = self.inner();
        let mut drained_epoch = 0;
        loop {
            let (client, epoch) = inner
                .wait(|state| state.slot.next_to_drain(drained_epoch))
                .await
                .ok()?;
            if let Some(notification) = client.receive().await {
                return Some(notification);
            }
            drained_epoch = epoch;
            inner.lock().slot.drained(epoch);
        }
    }

    /// Stops the attempts and closes the open connection. Returns at
    /// once; see [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.inner().close();
    }

    /// Waits until the client has closed (or given up) and its last
    /// connection is gone.
    pub async fn wait_closed(&self) {
        self.inner()
            .wait(|state| state.slot.finished.then_some(()))
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

    async fn wait<T>(&self, check: impl FnMut(&mut ClientState) -> Option<T>) -> T {
        wait_on(&self.state, &self.changed, check).await
    }

    async fn wait_connected(&self) -> Result<Client, Error> {
        self.wait(|state| {
            if state.slot.closing {
                return Some(Err(Error::Closed));
            }
            match state.slot.open().unwrap_or(None) {
                Some(client) => Some(Ok(client)),
                None => state.slot.ended().map(Err),
            }
        })
        .await
    }

    async fn client_for_call(&self) -> Result<Client, Error> {
        {
            let mut state = self.lock();
            if state.slot.closing {
                return Err(Error::Closed);
            }
            if let Ok(Some(client)) = state.slot.open() {
                return Ok(client);
            }
        }
        self.supervision
            .while_disconnected(self.wait_connected())
            .await
    }

    fn close(&self) {
        let client = self.lock().slot.close();
        if let Some(client) = client {
            client.close();
        }
        self.changed.notify_waiters();
    }

    /// The connection of `epoch` has `state`: it becomes the client's if
    /// that connection is still the current one.
    fn take_state(&self, epoch: u64, state: Arc<Value>) {
        {
            let mut client = self.lock();
            if client.slot.epoch != epoch {
                return;
            }
            client.state = state;
            client.state_version += 1;
        }
        self.changed.notify_waiters();
    }
}

/// Copies each state of `client`, the connection of `epoch`, into the
/// reconnecting client, until the connection closes.
async fn follow_state(inner: Weak<Inner>, client: Client, epoch: u64) {
    // A client that only listens tells a server that sniffs the
    // generation at once which one it speaks.
    let _ = client.ping().await;
    let mut seen = 0;
    while let Ok((count, state)) = client.state_changed(seen).await {
        seen = count;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.take_state(epoch, state);
    }
}

impl Supervised for Inner {
    type Session = Client;
    type Installed = ();

    fn supervision(&self) -> &Supervision {
        &self.supervision
    }

    fn connect(
        &self,
        address: &str,
        client: ClientOptions,
    ) -> BoxFuture<'static, Result<Client, Error>> {
        let (address, options) = (address.to_owned(), self.options.clone());
        let runtime = self.supervision.runtime.clone();
        Box::pin(async move { crate::v07::connect(&address, options, client, runtime).await })
    }

    fn generation(session: &Client) -> Generation {
        session.generation()
    }

    fn closed(session: &Client) -> BoxFuture<'_, CloseReason> {
        Box::pin(async move {
            session.wait_closed().await;
            session.close_reason().unwrap_or(CloseReason::Local)
        })
    }

    fn install(self: &Arc<Self>, session: &Client) -> Option<()> {
        let epoch = {
            let mut state = self.lock();
            if state.slot.closing {
                drop(state);
                session.close();
                return None;
            }
            state.slot.install(session.clone())
        };
        let follow = follow_state(Arc::downgrade(self), session.clone(), epoch);
        self.supervision.runtime.spawn(Box::pin(follow));
        self.changed.notify_waiters();
        Some(())
    }

    fn uninstall(&self, session: &Client) {
        // The supervisor installs one session at a time: the one that
        // closed is the current one.
        let _ = session;
        self.lock().slot.detach();
        self.changed.notify_waiters();
    }

    fn is_closing(&self) -> bool {
        self.lock().slot.closing
    }

    fn closing(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.wait(|state| state.slot.closing.then_some(())))
    }

    fn finish(&self, gave_up: bool) {
        self.lock().slot.finish(gave_up);
        self.changed.notify_waiters();
    }
}
