//! The application's handles on a 0.5 connection: [`Connection`], its weak
//! form, a change callback's registration and held bytes.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use juggler_core::{CloseReason, EncodedMessage, PatchOperation, ProtocolError, SharedChange};
use serde_json::Value;

use super::shared::{Shared, Waiting, Wake};
use super::RemoteChanges;
use crate::admission::UpgradeRequest;
use crate::change_stream::ChangeStream;
use crate::diff_outside::{diff_base, diff_unsent};
use crate::{Error, Runtime};

/// Bytes a layer above holds of what the peer sent; see
/// [`Connection::hold`]. Released when dropped.
#[must_use = "the bytes are released when the guard is dropped"]
pub struct HeldBytes {
    shared: Arc<Shared>,
    bytes: usize,
}

impl fmt::Debug for HeldBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldBytes")
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl HeldBytes {
    /// How many bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        let reader_waiting = {
            let mut state = self.shared.lock();
            state.inbox.bytes -= self.bytes;
            state.inbox.budget.release(self.bytes);
            state.inbox.reader_waiting
        };
        if reader_waiting {
            self.shared.reader_notify.notify_one();
        }
    }
}

/// Closes the connection when the last application handle goes away.
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// A Juggler connection, client or server side (the protocol is
/// symmetric): local and remote data, change notification, messages.
///
/// A cheap `Clone + Send + Sync` handle. When the last clone is dropped the
/// connection closes itself (flushing unsent data under an automatic
/// autoflush policy) and its driver task ends.
///
/// `juggler_tokio::Connection` and `juggler_smol::Connection` are this
/// type: `listen`'s callback gets one, `connect` returns one, and code that
/// takes a `Connection` works on either runtime.
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::{Connection, Error};
/// use serde_json::json;
///
/// /// Shows the client a greeting, then answers its messages until it leaves.
/// async fn serve(connection: Connection) -> Result<(), Error> {
///     connection.set_local_data(json!({"greeting": "hello"}))?; // synced by autoflush
///     let mut changes = connection.remote_changes();
///     loop {
///         tokio::select! {
///             message = connection.receive() => {
///                 let message = message?; // Err(Error::Closed) once it is gone
///                 connection.send(&json!({"echo": message})).await?;
///             }
///             data = changes.changed() => println!("the peer's data: {}", data?),
///         }
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer_addr", &self.handle.shared.peer_addr)
            .field("open", &self.is_open())
            .finish()
    }
}

impl Connection {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Connection {
            handle: Arc::new(Handle { shared }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    pub(crate) fn shared_arc(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// The runtime the connection runs on, for libraries layered on top
    /// (such as `juggler-rpc`) that spawn tasks or need timers.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        self.shared().runtime.clone()
    }

    /// The connection's `tracing` span, `juggler_connection` with its
    /// `id`, `role` (`server` or `client`), `peer`, `path` and protocol
    /// `generation`. The connection's own task runs in it and its close is
    /// logged in it; instrument tasks of yours with it
    /// (`future.instrument(connection.span().clone())`) to give their
    /// events the same context. See docs/guide.md, "Observing it".
    pub fn span(&self) -> &tracing::Span {
        &self.shared().span
    }

    /// The protocol generation the connection speaks.
    pub fn generation(&self) -> juggler_core::Generation {
        juggler_core::Generation::V0_5
    }

    /// How many remote data changes the connection has seen, and the
    /// remote data after them.
    pub(crate) fn remote_changes_so_far(&self) -> (u64, Arc<Value>) {
        let state = self.shared().lock();
        (state.changes.count, state.engine.remote_data().clone())
    }

    /// The connection's number in this process, as its span shows it.
    pub fn id(&self) -> u64 {
        self.shared().id
    }

    /// The address of the peer, when the transport has one (behind a
    /// reverse proxy, the proxy; see [`remote`](Self::remote)).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.shared().peer_addr
    }

    /// The HTTP request that opened this server-side connection: its URI
    /// with the query, its headers with the cookies. `None` on a client.
    pub fn upgrade_request(&self) -> Option<&UpgradeRequest> {
        self.handle.shared.admitted.request.as_deref()
    }

    /// The client's address: read from `Forwarded` / `X-Forwarded-For`
    /// when the server trusts them, else the peer's IP (the 0.7
    /// reference's `Connection.remote`). `None` on a client.
    pub fn remote(&self) -> Option<&str> {
        self.upgrade_request()?.remote.as_deref()
    }

    /// The certificate chain the client presented in a mutual TLS
    /// handshake, leaf first. `None` without one, and on a client.
    pub fn peer_certificates(&self) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        Some(&self.upgrade_request()?.peer_certificates.as_ref()?.0)
    }

    /// The context the server's admission hook attached to this
    /// connection, if it is a `T`.
    pub fn context<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.handle.shared.admitted.context.as_ref()?.downcast_ref()
    }

    /// The local data as last set: a shared snapshot, not a copy.
    pub fn local_data(&self) -> Arc<Value> {
        self.shared().lock().engine.local_data().clone()
    }

    /// The peer's data as last received: a shared snapshot, not a copy.
    #[doc(alias("remote_state", "state"))]
    pub fn remote_data(&self) -> Arc<Value> {
        self.shared().lock().engine.remote_data().clone()
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        !self.shared().lock().engine.is_closed()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared().lock().engine.close_reason().cloned()
    }

    /// The WebSocket close code and reason text the peer sent, if it closed
    /// with a close frame (for example 1009 when a message of ours was over
    /// its size limit).
    pub fn peer_close_frame(&self) -> Option<(u16, String)> {
        self.shared().lock().driver.peer_close.clone()
    }

    /// Sets a filter that every message from the peer passes before it
    /// is queued for [`receive`](Self::receive), replacing any earlier
    /// one: what it returns is queued, `None` drops the message. For
    /// layers such as `juggler-rpc` that consume some messages themselves
    /// and want to do so without a task switch.
    ///
    /// The filter runs on the connection's driver task, outside the
    /// connection's lock, once per message and in order. It must not block
    /// or wait: it may call this connection's non-waiting methods (such as
    /// [`try_send`](Self::try_send)), spawn tasks, or use a
    /// [`WeakConnection`]; a filter that owns a `Connection` keeps the
    /// connection from closing on drop.
    pub fn set_message_filter(
        &self,
        filter: impl Fn(Value) -> Option<Value> + Send + Sync + 'static,
    ) {
        self.shared().lock().inbox.filter = Some(Arc::new(filter));
    }

    /// A handle that does not keep the connection open (see
    /// [`WeakConnection`]).
    pub fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            handle: Arc::downgrade(&self.handle),
        }
    }

    /// Calls `callback` once for every change of the remote data. The
    /// callback runs on the driver task and must not block; it may read the
    /// connection. Dropping the returned handle unregisters it.
    #[must_use = "the callback is unregistered when the handle is dropped"]
    #[doc(alias("on_change", "subscribe"))]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> ChangeCallbackHandle {
        let mut state = self.shared().lock();
        let id = state.changes.next_callback_id;
        state.changes.next_callback_id += 1;
        state.changes.callbacks.insert(id, Arc::new(callback));
        ChangeCallbackHandle {
            shared: Arc::downgrade(&self.handle.shared),
            id,
        }
    }

    /// An async stream of remote data changes; see [`RemoteChanges`].
    #[doc(alias("watch", "changes"))]
    pub fn remote_changes(&self) -> RemoteChanges {
        ChangeStream::new(self.handle.shared.clone())
    }

    /// Replaces the local data; it syncs by the autoflush policy.
    /// `local_data()` returns the new value at once.
    #[doc(alias("set_local", "set_state"))]
    ///
    /// When the peer is in sync and both versions are objects (or both
    /// arrays), the diff runs here, on the caller's thread, before the
    /// connection's lock is taken: a large state's diff does not hold up
    /// the connection's reader and writer. (Otherwise it runs when the
    /// change is sent, as for any pending change.) The replaced data is
    /// freed outside the lock: when the change went out at once (autoflush
    /// 0), by the connection's writer after writing it, a slice at a time
    /// between its other work; otherwise here.
    pub fn set_local_data(&self, data: impl Into<Arc<Value>>) -> Result<(), Error> {
        let data = data.into();
        let base = {
            let state = self.shared().lock();
            let engine = &state.engine;
            diff_base(
                engine.local_data(),
                !engine.has_unsent_changes() && !engine.is_closed() && !engine.has_mounts(),
                &data,
            )
        };
        let ops = base.as_ref().map(|base| juggler_core::diff(base, &data));
        let now = self.shared().runtime.now();
        let (result, free_now) = self.shared().update(Wake::Application, |state| {
            let result = match (&base, ops) {
                (Some(base), Some(ops)) => state.engine.set_local_data_diffed(now, base, data, ops),
                _ => state.engine.set_local_data(now, data),
            };
            (result, base.and_then(|base| state.retire(base)))
        });
        drop(free_now);
        result.map_err(Error::from)
    }

    /// Sets the local data to a [`SharedState`](juggler_core::SharedState)'s
    /// new version: a connection that holds the previous version (with
    /// nothing else unsent) sends the change's pre-encoded frame as it is,
    /// by its autoflush policy, so one change reaches any number of
    /// connections with one diff and one encoding. Others sync it like
    /// [`set_local_data`](Self::set_local_data).
    pub fn set_local_data_shared(&self, change: &SharedChange) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.set_local_data_shared(now, change)
            })
            .map_err(Error::from)
    }

    /// Gives the part at `pointer` to group `owner`, set to `data` (what
    /// [`Group::join_at`](crate::Group::join_at) calls).
    pub(crate) fn mount(&self, pointer: &str, owner: u64, data: Value) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.mount(now, pointer, owner, data)
            })
            .map_err(Error::from)
    }

    /// Takes the part at `pointer` back from group `owner`.
    pub(crate) fn unmount(&self, pointer: &str, owner: u64) -> bool {
        self.shared().lock().engine.unmount(pointer, owner)
    }

    /// Applies the change of the group whose part is at `pointer`.
    pub(crate) fn set_local_data_shared_at(
        &self,
        pointer: &str,
        change: &SharedChange,
    ) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.set_local_data_shared_at(now, pointer, change)
            })
            .map_err(Error::from)
    }

    /// Applies RFC 6902 operations to the local data and syncs them by the
    /// autoflush policy. The operations themselves go to the peer: no diff
    /// of the whole state, so the cost is that of the change. Applies whole
    /// or not at all.
    pub fn update_local_data(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let now = self.shared().runtime.now();
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.update_local_data(now, ops)
            })
            .map_err(Error::from)
    }

    /// Sends unsent local data changes now and waits until they, and every
    /// frame queued before them, are written to the socket. A change that
    /// needs a diff is diffed in this call, with no lock held.
    #[doc(alias = "flush")]
    pub async fn flush_local_data(&self) -> Result<(), Error> {
        diff_unsent(
            || self.shared().lock().engine.unsent_diff(),
            |base, local, ops| {
                self.shared().update(Wake::Application, |state| {
                    if state.engine.sync_diffed(&base, local, ops) {
                        state.retire(base)
                    } else {
                        Some(base)
                    }
                })
            },
        );
        let ticket = self
            .shared()
            .update(Wake::Application, |state| state.engine.flush_local_data())?;
        self.shared()
            .wait_for(Waiting::Progress, |state| {
                if ticket.is_complete(state.driver.written) {
                    Some(Ok(()))
                } else if !state.writes_pending() {
                    Some(Err(Error::Closed))
                } else {
                    None
                }
            })
            .await
    }

    /// Queues one message for the peer, waiting while the send queue is
    /// full. Messages go out in the order they are queued; to know that
    /// they were written, await [`flush_local_data`](Self::flush_local_data).
    /// The message is encoded before the connection's lock is taken.
    pub async fn send(&self, message: &Value) -> Result<(), Error> {
        self.send_encoded(EncodedMessage::new(message)).await
    }

    /// [`send`](Self::send) for a message encoded beforehand, for example
    /// once for many connections with [`EncodedMessage::shared`].
    pub async fn send_encoded(&self, message: EncodedMessage) -> Result<(), Error> {
        let options = &self.shared().options;
        let mut message = Some(message);
        self.shared()
            .wait_for(Waiting::Progress, |state| {
                if state.engine.is_closed() {
                    Some(Err(Error::Closed))
                } else if !state.send_queue_full(options) {
                    let message = message.take()?;
                    Some(
                        state
                            .engine
                            .send_encoded(message)
                            .map(drop)
                            .map_err(Error::from),
                    )
                } else {
                    None
                }
            })
            .await?;
        self.shared().wake_writer();
        Ok(())
    }

    /// Like [`send`](Self::send) but never waits: fails with
    /// [`Error::QueueFull`] when the send queue is full.
    pub fn try_send(&self, message: &Value) -> Result<(), Error> {
        self.try_send_encoded(EncodedMessage::new(message))
    }

    /// [`try_send`](Self::try_send) for a message encoded beforehand.
    pub fn try_send_encoded(&self, message: EncodedMessage) -> Result<(), Error> {
        let options = &self.shared().options;
        self.shared().update(Wake::Application, |state| {
            if state.engine.is_closed() {
                Err(Error::Closed)
            } else if state.send_queue_full(options) {
                Err(Error::QueueFull)
            } else {
                state
                    .engine
                    .send_encoded(message)
                    .map(drop)
                    .map_err(Error::from)
            }
        })
    }

    /// Sends a Juggler `PING` frame; the peer answers `PONG`. Only for peers
    /// known to run hat-juggler 0.5.13 or later (older ones close on it);
    /// keep-alive uses WebSocket pings and needs no call.
    pub fn send_ping(&self) -> Result<(), Error> {
        self.shared()
            .update(Wake::Application, |state| {
                state.engine.send_ping().map(drop)
            })
            .map_err(Error::from)
    }

    /// The next message from the peer, waiting if there is none. Messages
    /// that arrived before the close are still returned; after them, fails
    /// with [`Error::Closed`].
    #[doc(alias = "recv")]
    pub async fn receive(&self) -> Result<Value, Error> {
        let (message, reader_waiting) = self
            .shared()
            .wait_for(Waiting::Message, |state| match state.inbox.pop() {
                Some(message) => Some((Ok(message), state.inbox.reader_waiting)),
                None if state.engine.is_closed() => Some((Err(Error::Closed), false)),
                None => None,
            })
            .await;
        // The reader rechecks its room when woken.
        if reader_waiting {
            self.shared().reader_notify.notify_one();
        }
        message
    }

    /// Counts `bytes` that a layer above holds of what the peer sent (a
    /// queue of its own, a request's arguments while its handler runs)
    /// against this connection's
    /// [`max_receive_bytes`](crate::ConnectionOptions::max_receive_bytes) and the
    /// server's budget, as if they still waited for `receive`, until the
    /// returned guard is dropped. juggler-rpc does so for its
    /// plain-message queue and its running requests.
    pub fn hold(&self, bytes: usize) -> HeldBytes {
        let shared = self.shared_arc().clone();
        {
            let mut state = shared.lock();
            state.inbox.bytes += bytes;
            state.inbox.budget.charge(bytes);
        }
        HeldBytes { shared, bytes }
    }

    /// The bytes of received messages that wait for
    /// [`receive`](Self::receive) (and that layers above
    /// [`hold`](Self::hold)), as counted against
    /// [`ConnectionOptions::max_receive_bytes`](crate::ConnectionOptions::max_receive_bytes) (decoded size, see
    /// [`value_cost`](juggler_core::value_cost)).
    pub fn buffered_bytes(&self) -> usize {
        self.shared().lock().inbox.bytes
    }

    /// Starts closing: unsent data is flushed (unless the policy is
    /// manual), then the WebSocket closes. Returns at once; see
    /// [`wait_closed`](Self::wait_closed).
    pub fn close(&self) {
        self.shared().close();
    }

    /// Closes the connection for a protocol violation found by a layer
    /// above Juggler (such as a malformed rpc object): the peer gets a
    /// close frame with the error's code and text, and `close_reason`
    /// reports it. Unsent frames are dropped, as for any protocol error.
    pub fn close_with_protocol_error(&self, err: ProtocolError) {
        self.shared().update(Wake::Application, |state| {
            state.engine.handle_protocol_error(err)
        });
    }

    /// Waits until the connection is closed and its socket released, and
    /// returns why it closed.
    #[doc(alias("closed", "join"))]
    pub async fn wait_closed(&self) -> CloseReason {
        self.shared().wait_done().await;
        self.close_reason()
            .expect("the driver closes the engine before it ends")
    }

    /// [`close`](Self::close), then [`wait_closed`](Self::wait_closed).
    pub async fn shutdown(&self) -> CloseReason {
        self.close();
        self.wait_closed().await
    }
}

/// A [`Connection`] handle that does not keep the connection open: the
/// connection closes when the last `Connection` goes away, however many
/// `WeakConnection`s remain. For callbacks and filters the connection
/// itself holds, which would otherwise keep it open forever.
#[derive(Clone, Debug)]
pub struct WeakConnection {
    handle: Weak<Handle>,
}

impl WeakConnection {
    /// The connection, unless every `Connection` handle is gone.
    pub fn upgrade(&self) -> Option<Connection> {
        self.handle.upgrade().map(|handle| Connection { handle })
    }
}

/// Registration of a change callback; dropping it (or calling
/// [`cancel`](Self::cancel)) unregisters the callback.
#[derive(Debug)]
pub struct ChangeCallbackHandle {
    shared: Weak<Shared>,
    id: u64,
}

impl ChangeCallbackHandle {
    /// Unregisters the callback.
    pub fn cancel(self) {}
}

impl Drop for ChangeCallbackHandle {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            // Drop the callback after the lock is released: it may own a
            // `Connection`, whose drop closes the connection, which locks.
            let callback = shared.lock().changes.callbacks.remove(&self.id);
            drop(callback);
        }
    }
}
