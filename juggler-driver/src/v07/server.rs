//! The server side of a 0.6/0.7 connection: the application's handle,
//! and the requests it answers.

mod mounts;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use juggler_core::v07::{ServerEngine, ServerEvent};
use juggler_core::{CloseReason, Generation, PatchOperation, Value};
use tracing::Instrument;

use super::link::{run, Dispatch, Link, LinkState};
use super::Options;
use crate::admission::{Admitted, UpgradeRequest};
use crate::budget::{Charge, MemoryBudget};
use crate::diff_outside::{diff_base, diff_unsent};
use crate::{BoxFuture, Error, Runtime};
use juggler_core::responder::{answer, Limits, Responder};
use juggler_core::value_cost;

/// What a request handler answers: data for `success: true`, or a
/// [`RequestError`] for `success: false`.
pub type RequestResult = Result<Value, RequestError>;

/// A failed request: its data goes to the client with `success: false`.
///
/// As the reference turns any exception into its text, any error that
/// displays converts into one, so `?` works in a handler on errors of
/// every kind: the client gets the error's text. For other data (an
/// object, say), build it with `RequestError(data)`.
///
/// ```
/// use juggler_driver::v07::RequestResult;
/// use serde_json::{json, Value};
///
/// fn parse_count(data: &Value) -> RequestResult {
///     let text = data.as_str().ok_or("count takes a string")?;
///     let count: u32 = text.parse()?; // "invalid digit found in string"
///     Ok(json!(count))
/// }
/// assert_eq!(parse_count(&json!("12")).unwrap(), json!(12));
/// assert_eq!(parse_count(&json!(12)).unwrap_err().0, json!("count takes a string"));
/// ```
// No Display or Error impl of its own: that keeps the blanket conversion
// from every displayable error coherent (as anyhow's Error does).
#[derive(Debug, Clone, PartialEq)]
pub struct RequestError(pub Value);

impl RequestError {
    /// An error whose data is `error`'s text.
    pub fn new(error: impl fmt::Display) -> Self {
        RequestError(Value::String(error.to_string()))
    }
}

impl<E: fmt::Display> From<E> for RequestError {
    fn from(error: E) -> Self {
        RequestError::new(error)
    }
}

/// The future a request handler returns.
pub type RequestFuture = Pin<Box<dyn Future<Output = RequestResult> + Send + 'static>>;

/// Answers requests: the reference's `request_cb(conn, name, data)`.
/// Any `Fn(Connection, String, Value) -> impl Future<Output =
/// RequestResult>` is one.
pub trait RequestHandler: Send + Sync + 'static {
    /// The answer to request `name` with `data` on `connection`.
    fn handle(&self, connection: Connection, name: String, data: Value) -> RequestFuture;
}

impl<F, Fut> RequestHandler for F
where
    F: Fn(Connection, String, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RequestResult> + Send + 'static,
{
    fn handle(&self, connection: Connection, name: String, data: Value) -> RequestFuture {
        Box::pin(self(connection, name, data))
    }
}

/// What a server does with its 0.6/0.7 connections: the reference's
/// `connection_cb` and `request_cb`.
///
/// ```
/// use juggler_driver::v07::{Handlers, RequestError};
/// use serde_json::json;
///
/// let handlers = Handlers::new()
///     .on_connection(|connection| connection.set_state(json!({"hello": "client"})))
///     .on_request(|_connection, name, data| async move {
///         match name.as_str() {
///             "add" => Ok(json!(data["a"].as_i64().unwrap_or(0) + data["b"].as_i64().unwrap_or(0))),
///             other => Err(RequestError::new(format!("unknown request {other}"))),
///         }
///     });
/// ```
#[derive(Clone, Default)]
pub struct Handlers {
    connection_cb: Option<Arc<dyn Fn(Connection) + Send + Sync>>,
    pub(super) request_cb: Option<Arc<dyn RequestHandler>>,
    /// The typed handlers by name, when there are any ([`Handlers::request`]).
    pub(super) routes: Option<super::typed::Routes>,
    /// The group every connection joins ([`Handlers::state`]).
    pub(super) state: Option<crate::Group>,
}

impl fmt::Debug for Handlers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handlers")
            .field("connection_cb", &self.connection_cb.is_some())
            .field("request_cb", &self.request_cb.is_some())
            .finish()
    }
}

impl Handlers {
    /// No callbacks: requests get `success: false`.
    pub fn new() -> Self {
        Handlers::default()
    }

    /// Whether any callback, route or state is set.
    pub(crate) fn is_set(&self) -> bool {
        self.connection_cb.is_some()
            || self.request_cb.is_some()
            || self.routes.is_some()
            || self.state.is_some()
    }

    /// Calls `callback` with each new connection, before its first
    /// request is read. It runs on the accepting task: spawn anything
    /// long.
    #[doc(alias = "connection_cb")]
    #[must_use]
    pub fn on_connection(mut self, callback: impl Fn(Connection) + Send + Sync + 'static) -> Self {
        self.connection_cb = Some(Arc::new(callback));
        self
    }

    /// Answers each request with `handler`, an async closure of the
    /// connection, the request's name and its data.
    #[doc(alias = "request_cb")]
    #[must_use]
    pub fn on_request<F, Fut>(self, handler: F) -> Self
    where
        F: Fn(Connection, String, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RequestResult> + Send + 'static,
    {
        self.on_request_handler(handler)
    }

    /// Answers each request with `handler`, a type of the application's.
    ///
    /// With typed handlers ([`request`](Self::request)), it answers the
    /// names they don't.
    #[must_use]
    pub fn on_request_handler(mut self, handler: impl RequestHandler) -> Self {
        let handler: Arc<dyn RequestHandler> = Arc::new(handler);
        self.request_cb = Some(match &mut self.routes {
            Some(routes) => routes.with_fallback(handler),
            None => handler,
        });
        self
    }
}

/// Server connections' own part of the link state.
pub(crate) struct ServerExtra {
    /// The requests taken and not answered yet, and what their data takes
    /// decoded ([`value_cost`]).
    responder: Responder<Pending>,
}

impl ServerExtra {
    fn new(options: &Options) -> Self {
        ServerExtra {
            responder: Responder::new(Limits {
                max_running: options.max_pending_requests,
                max_bytes: options.max_pending_bytes,
                parallel: options.parallel_requests,
            }),
        }
    }
}

type ServerLink = Link<ServerEngine, ServerExtra>;

/// A [`Connection`] that does not keep it in memory.
#[derive(Clone)]
pub struct WeakConnection {
    link: std::sync::Weak<ServerLink>,
    info: Arc<Info>,
}

impl fmt::Debug for WeakConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("v07::WeakConnection")
            .field("id", &self.info.id)
            .finish()
    }
}

impl WeakConnection {
    /// The connection, while its driver runs or a handle holds it.
    pub fn upgrade(&self) -> Option<Connection> {
        Some(Connection {
            link: self.link.upgrade()?,
            info: self.info.clone(),
        })
    }
}

/// One client of a 0.6/0.7 server: the reference's `Connection` with
/// `state`, `flush`, `notify` and `remote`. Clones share it.
///
/// The state flows one way, to the client, by the autoflush policy; the
/// client's requests go to the server's [`RequestHandler`].
///
/// [`Handlers`]' callbacks get one, as `juggler_tokio::v07::Connection`
/// (or `juggler_smol::v07::Connection`).
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::v07::{Connection, Handlers, RequestError, RequestResult};
/// use juggler_tokio::{PatchOperation, PointerBuf, ReplaceOperation};
/// use serde_json::{json, Value};
///
/// async fn on_request(connection: Connection, name: String, data: Value) -> RequestResult {
///     match name.as_str() {
///         // Replace the whole state: a diff goes out by the autoflush policy.
///         "reset" => connection.set_state(json!({"count": 0, "items": []})),
///         // Change one entry: the op goes out as it is, in O(change).
///         "count" => connection
///             .update_state(vec![PatchOperation::Replace(ReplaceOperation {
///                 path: PointerBuf::parse("/count").map_err(RequestError::new)?,
///                 value: data.clone(),
///             })])
///             .map_err(RequestError::new)?,
///         other => return Err(RequestError::new(format!("unknown request {other}"))),
///     }
///     connection.flush().await.map_err(RequestError::new)?; // sent and written
///     connection.notify("done", &json!(name)).await.map_err(RequestError::new)?;
///     Ok(json!({"client": connection.remote(), "state": *connection.state()}))
/// }
///
/// let handlers = Handlers::new()
///     .on_connection(|connection| connection.set_state(json!({"count": 0, "items": []})))
///     .on_request(on_request);
/// ```
#[derive(Clone)]
pub struct Connection {
    link: Arc<ServerLink>,
    info: Arc<Info>,
}

struct Info {
    id: u64,
    generation: Generation,
    peer_addr: Option<SocketAddr>,
    admitted: Admitted,
    /// [`Connection::register_change_cb`]'s.
    callbacks: Arc<crate::callbacks::Callbacks>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("v07::Connection")
            .field("id", &self.info.id)
            .field("generation", &self.info.generation)
            .field("peer_addr", &self.info.peer_addr)
            .finish()
    }
}

impl Connection {
    /// The connection's number in this process (unique across
    /// generations).
    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// 0.6 or 0.7.
    pub fn generation(&self) -> Generation {
        self.info.generation
    }

    /// The address of the peer.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.info.peer_addr
    }

    /// The client's address, as the reference's `Connection.remote`
    /// (forwarded headers only when the server trusts them).
    pub fn remote(&self) -> Option<&str> {
        self.upgrade_request()?.remote.as_deref()
    }

    /// The HTTP request that opened the connection.
    pub fn upgrade_request(&self) -> Option<&UpgradeRequest> {
        self.info.admitted.request.as_deref()
    }

    /// The context the server's admission hook attached, if it is a `T`.
    pub fn context<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.info.admitted.context.as_ref()?.downcast_ref()
    }

    /// The span of the connection's logs.
    pub fn span(&self) -> &tracing::Span {
        &self.link.span
    }

    /// The state as last set: a shared snapshot, not a copy.
    pub fn state(&self) -> Arc<Value> {
        self.link.read(|state| state.engine.state().clone())
    }

    /// Replaces the state. It goes out as a diff by the autoflush policy;
    /// on a closed connection it has no effect, as in the reference.
    ///
    /// When the client is in sync and both versions are objects (or both
    /// arrays), the diff runs here, on the caller's thread, before the
    /// connection's lock is taken: a large state's diff does not hold up
    /// the connection's reader and writer. (Otherwise it runs when the
    /// change is sent, as for any pending change.) The replaced state is
    /// freed outside the lock: when the change went out at once (autoflush
    /// 0), by the connection's writer after writing it, a slice at a time
    /// between its other work; otherwise here.
    pub fn set_state(&self, state: impl Into<Arc<Value>>) {
        let state = state.into();
        let base = self.link.read(|link| {
            let engine = &link.engine;
            let in_sync = !engine.has_unsent_changes()
                && engine.close_reason().is_none()
                && !engine.has_mounts();
            diff_base(engine.state(), in_sync, &state)
        });
        let ops = base.as_ref().map(|base| juggler_core::diff(base, &state));
        let now = self.link.runtime.now();
        let free_now = self.link.update(|link| {
            let _ = match (&base, ops) {
                (Some(base), Some(ops)) => link.engine.set_state_diffed(now, base, state, ops),
                _ => link.engine.set_state(now, state),
            };
            base.and_then(|base| link.retire(base))
        });
        drop(free_now);
        self.changed();
    }

    /// Changes the state with `change` under the connection's own lock, so
    /// that a read-modify-write from requests running at once loses no
    /// update (Python gets this from its one thread: `state.set('n',
    /// state.get('n') + 1)`). Returns what `change` returns; the change
    /// goes out as a diff by the autoflush policy. `change` works on a
    /// copy of the state and must not use this connection.
    pub fn modify_state<R>(&self, change: impl FnOnce(&mut Value) -> R) -> R {
        let now = self.link.runtime.now();
        let result = self.link.update(|link| {
            let mut state = Value::clone(link.engine.state());
            let result = change(&mut state);
            let _ = link.engine.set_state(now, Arc::new(state));
            result
        });
        self.changed();
        result
    }

    /// Sets the state to a [`SharedState`](juggler_core::SharedState)'s
    /// new version: a connection that holds the previous one sends the
    /// change's `state` message, encoded once for all (see
    /// [`Group`](crate::Group), which does this for its members).
    pub fn set_state_shared(&self, change: &juggler_core::SharedChange) -> Result<(), Error> {
        self.set_state_shared_untold(change)?;
        self.changed();
        Ok(())
    }

    /// A handle that does not keep the connection's state in memory once
    /// it is closed.
    pub fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            link: Arc::downgrade(&self.link),
            info: self.info.clone(),
        }
    }

    /// Changes the state by JSON Patch ops, in O(change). Fails with
    /// [`Error::Patch`] when they do not apply (nothing changes) and
    /// [`Error::Closed`] when the connection is.
    pub fn update_state(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        let now = self.link.runtime.now();
        self.link
            .update(|link| link.engine.update_state(now, ops))
            .map_err(Error::from)?;
        self.changed();
        Ok(())
    }

    /// The value at JSON pointer `pointer` of the state (`""` is all of
    /// it), as the reference's `json.Storage.get(path)`.
    pub fn get(&self, pointer: &str) -> Result<Option<Value>, Error> {
        let state = self.state();
        Ok(juggler_core::path_edit::get_at(&state, pointer)?.cloned())
    }

    /// Sets the value at JSON pointer `pointer`, as the reference's
    /// `json.Storage.set(path, value)`: one patch op, made and applied
    /// under the connection's lock (see
    /// [`set_op`](juggler_core::path_edit::set_op)). An impossible path
    /// gives [`Error::Patch`] and changes nothing.
    pub fn set(&self, pointer: &str, value: impl Into<Value>) -> Result<(), Error> {
        let value = value.into();
        let now = self.link.runtime.now();
        self.link.update(|link| {
            let op = juggler_core::path_edit::set_op(link.engine.state(), pointer, value)?;
            Ok::<_, Error>(link.engine.update_state(now, vec![op])?)
        })?;
        self.changed();
        Ok(())
    }

    /// Removes the value at JSON pointer `pointer`, as the reference's
    /// `json.Storage.remove(path)`: one patch op, or nothing when there
    /// is no value there.
    pub fn remove(&self, pointer: &str) -> Result<(), Error> {
        let now = self.link.runtime.now();
        let removed = self.link.update(|link| {
            match juggler_core::path_edit::remove_op(link.engine.state(), pointer)? {
                Some(op) => link.engine.update_state(now, vec![op]).map(|()| true),
                None => Ok(false),
            }
            .map_err(Error::from)
        })?;
        if removed {
            self.changed();
        }
        Ok(())
    }

    /// Calls `callback` after each change of this connection's state (the
    /// reference's `state.register_change_cb`), on the thread that made
    /// the change, outside the connection's lock (and a
    /// [`Group`](crate::Group)'s, for its changes): it must not block, and
    /// may read the [`state`](Self::state) or use the group. Dropping the
    /// returned handle unregisters it.
    #[doc(alias("on_change", "subscribe"))]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> crate::callbacks::StateCallbackHandle {
        self.info.callbacks.register(callback)
    }

    /// Tells the callbacks that the state changed.
    pub(crate) fn changed(&self) {
        self.info.callbacks.call_all();
    }

    /// Sends the pending state change now and waits until it is written.
    /// A pending change that needs a diff is diffed here, with no lock
    /// held.
    pub async fn flush(&self) -> Result<(), Error> {
        diff_unsent(
            || self.link.read(|link| link.engine.unsent_diff()),
            |base, state, ops| {
                self.link.update(|link| {
                    if link.engine.sync_diffed(&base, state, ops) {
                        link.retire(base)
                    } else {
                        Some(base)
                    }
                })
            },
        );
        let ticket = self.link.update(|link| link.engine.flush())?;
        self.link.written(ticket).await
    }

    /// Sends a notification; returns once it is queued (waiting while the
    /// send queue is full), as the reference's `notify`.
    pub async fn notify(&self, name: &str, data: &Value) -> Result<(), Error> {
        self.link
            .push(|link| Ok(link.engine.notify(name, data)?))
            .await
            .map(|_| ())
    }

    /// Like [`notify`](Self::notify) but never waits: fails with
    /// [`Error::QueueFull`] when the send queue is full.
    pub fn try_notify(&self, name: &str, data: &Value) -> Result<(), Error> {
        self.link
            .try_push(|link| Ok(link.engine.notify(name, data)?))
            .map(|_| ())
    }

    /// [`try_notify`](Self::try_notify) with a notification encoded once
    /// for a group's members.
    pub(crate) fn try_notify_encoded(
        &self,
        notification: &juggler_core::v07::message::EncodedNotify,
    ) -> Result<(), Error> {
        self.link
            .try_push(|link| Ok(link.engine.notify_encoded(notification)?))
            .map(|_| ())
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.link.is_open()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.link.close_reason()
    }

    /// Closes the connection (1000); queued frames go first.
    pub fn close(&self) {
        self.link.close();
    }

    /// Waits until the connection is closed and its socket gone.
    pub async fn wait_closed(&self) {
        self.link.wait_done().await
    }

    /// Closes and waits until the socket is gone.
    pub async fn async_close(&self) {
        self.close();
        self.wait_closed().await
    }

    /// Joins the new connection to the server's state, if it has one, and
    /// gives it to the application's `connection_cb`.
    pub(crate) fn announce(&self, handlers: &Handlers) {
        if let Some(state) = &handlers.state {
            // Only a connection closed already fails to join: nothing to do.
            let _ = state.join(self);
        }
        if let Some(callback) = &handlers.connection_cb {
            callback(self.clone());
        }
    }

    /// The connection as its server's registry holds it.
    pub(crate) fn registered(&self) -> Arc<dyn crate::server::Registered> {
        self.link.clone()
    }
}

impl crate::server::Registered for ServerLink {
    fn is_done(&self) -> bool {
        self.read(|state| state.done)
    }
    fn close(&self) {
        Link::close(self);
    }
    fn wait_done(&self) -> crate::runtime::BorrowedFuture<'_> {
        Box::pin(Link::wait_done(self))
    }
    fn close_timed_out(&self) -> bool {
        self.read(|state| state.close_timed_out)
    }
}

/// A server connection on an upgraded socket, and its driver: the
/// server [`announce`](Connection::announce)s the connection, then runs
/// the driver, so the application has it before the first frame is read. `first_frame` is the frame detection already read.
pub(crate) fn accept<S>(
    socket: WebSocketStream<S>,
    options: Options,
    handlers: &Handlers,
    admitted: Admitted,
    runtime: Arc<dyn Runtime>,
    budget: Arc<MemoryBudget>,
    first_frame: Option<String>,
) -> (Connection, BoxFuture)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = crate::connection::next_connection_id();
    let peer_addr = admitted
        .request
        .as_ref()
        .and_then(|request| request.peer_addr);
    let generation = options.generation;
    let span = tracing::info_span!(
        "juggler_connection",
        id,
        role = "server",
        peer = ?peer_addr,
        generation = generation.as_str(),
    );
    let engine = ServerEngine::new(options.server_config(), Value::Null, runtime.now());
    let link = Link::new(
        engine,
        ServerExtra::new(&options),
        options,
        runtime.clone(),
        span.clone(),
        true,
    );
    let connection = Connection {
        link: link.clone(),
        info: Arc::new(Info {
            id,
            generation,
            peer_addr,
            admitted,
            callbacks: Arc::default(),
        }),
    };
    let dispatch = ServerDispatch {
        connection: connection.clone(),
        handler: handlers.request_cb.clone(),
        budget,
    };
    let driver = run(socket, link, dispatch, first_frame).instrument(span);
    (connection, Box::pin(driver))
}

/// Answers the requests of one connection; the counting, the byte charge
/// and the order are the [`Responder`]'s in [`ServerExtra`].
struct ServerDispatch {
    connection: Connection,
    handler: Option<Arc<dyn RequestHandler>>,
    /// The server's byte budget, which requests being handled count
    /// against.
    budget: Arc<MemoryBudget>,
}

/// A request taken and not answered yet (running, or waiting its turn):
/// its bytes count against the server's budget until it is dropped.
struct Pending {
    request: juggler_core::v07::message::Request,
    _charge: Charge,
}

impl ServerDispatch {
    /// Answers `pending` (holding `bytes`), then the requests whose turn
    /// comes after it: at once if the handler does, else in a task.
    fn start(&self, pending: Pending, bytes: usize) {
        let answering = answer_in_turn(
            self.handler.clone(),
            self.connection.clone(),
            pending,
            bytes,
        );
        let link = &self.connection.link;
        crate::responder::answer_now_or_spawn(
            &*link.runtime,
            answering.instrument(link.span.clone()),
        );
    }
}

impl Dispatch<ServerEngine, ServerExtra> for ServerDispatch {
    fn take(&self, _extra: &mut ServerExtra, event: ServerEvent) -> Option<ServerEvent> {
        Some(event)
    }

    fn dispatch(&self, events: Vec<ServerEvent>) {
        for event in events {
            match event {
                ServerEvent::Request(request) => {
                    // The reader dispatches before it reads on, so the
                    // request counts before its next look at the limits.
                    let bytes = request.data.as_ref().map_or(0, value_cost);
                    let pending = Pending {
                        request,
                        _charge: Charge::new(&self.budget, bytes),
                    };
                    let now = self
                        .connection
                        .link
                        .update(|state| state.extra.responder.take(pending, bytes));
                    if let Some(pending) = now {
                        self.start(pending, bytes);
                    }
                }
                ServerEvent::Closed(reason) => {
                    tracing::debug!(%reason, "juggler connection closed");
                }
                _ => {}
            }
        }
    }

    fn reader_must_wait(&self, state: &LinkState<ServerEngine, ServerExtra>) -> bool {
        state.extra.responder.is_full()
    }

    fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        Some(&self.budget)
    }
}

/// Answers `pending`, then each request whose turn comes after it (when
/// requests must not run in parallel). A handler that panics answers
/// `success: false`, and the connection goes on.
async fn answer_in_turn(
    handler: Option<Arc<dyn RequestHandler>>,
    connection: Connection,
    mut pending: Pending,
    bytes: usize,
) {
    let mut turn = Turn {
        connection,
        bytes: Some(bytes),
    };
    loop {
        let name = pending.request.name.as_str().unwrap_or_default().to_owned();
        let data = pending.request.data.take().unwrap_or(Value::Null);
        // No clock read when nothing records it.
        let started = crate::METRICS_ENABLED.then(|| turn.connection.link.runtime.now());
        let ended = match &handler {
            Some(handler) => {
                let handling = handler.handle(turn.connection.clone(), name, data);
                crate::responder::catch_panic(handling).await
            }
            None => Ok(Err(RequestError::from("no request handler"))),
        };
        if ended.is_err() {
            tracing::error!("a request handler panicked");
        }
        let result = answer(ended, || RequestError::from("request handler panicked"));
        let bytes = turn.bytes.take().unwrap_or_default();
        let succeeded = result.is_ok();
        let (answered, next) = turn.connection.link.update(|state| {
            let answered = state
                .engine
                .respond(&pending.request.id, result.map_err(|err| err.0))
                .is_ok();
            (answered, state.extra.responder.finish(bytes))
        });
        if let Some(started) = started {
            let outcome = match (answered, succeeded) {
                (false, _) => "cancelled",
                (true, true) => "success",
                (true, false) => "failure",
            };
            let took = turn
                .connection
                .link
                .runtime
                .now()
                .saturating_duration_since(started);
            crate::metrics::v07_request_finished(outcome, took);
        }
        drop(pending);
        match next {
            Some((next, bytes)) => {
                pending = next;
                turn.bytes = Some(bytes);
            }
            None => return,
        }
    }
}

/// The turn of the request being answered: should its answering be
/// dropped unfinished (the runtime shutting down), its place is freed,
/// and the requests waiting behind it are dropped unanswered.
struct Turn {
    connection: Connection,
    /// The bytes of the request being answered; `None` once finished.
    bytes: Option<usize>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(bytes) = self.bytes.take() {
            let abandoned = self
                .connection
                .link
                .update(|state| state.extra.responder.abandon(bytes));
            drop(abandoned);
        }
    }
}
