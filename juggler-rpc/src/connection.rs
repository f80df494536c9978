//! The async wrapper: [`RpcConnection`] over a Juggler [`Connection`].

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{select, Either};
use juggler_core::responder::answer;
use juggler_core::{value_cost, CloseReason, PatchOperation, ProtocolError};
use juggler_driver::responder;
use juggler_driver::{ChangeCallbackHandle, Connection, Error, HeldBytes, RemoteChanges};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::actions::Actions;
use crate::endpoint::{Endpoint, Inbound};
use crate::protocol::{InvalidRpc, Request, Response, RpcId};
use crate::RpcError;

/// The error text of a request whose action panicked.
pub const ACTION_PANICKED: &str = "action panicked";

/// Limits of an [`RpcConnection`] on what the peer can make it hold.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RpcOptions {
    /// Most plain (non-rpc) messages waiting for
    /// [`receive`](RpcConnection::receive). While that many wait, the
    /// connection stops taking messages from the Juggler connection, which
    /// in turn stops reading the socket (backpressure, as a bare
    /// `Connection` does): responses behind them then wait too, so read
    /// the plain messages the peer sends. Default 1024.
    pub max_receive_queue: usize,
    /// Most of the peer's requests handled at once (the action running,
    /// or its response waiting to be sent). A request beyond that is
    /// answered at once with `success: false` and
    /// [`TOO_MANY_REQUESTS`](crate::TOO_MANY_REQUESTS). Default 65,536.
    pub max_concurrent_requests: usize,
}

impl Default for RpcOptions {
    fn default() -> Self {
        RpcOptions {
            max_receive_queue: 1024,
            max_concurrent_requests: 1 << 16,
        }
    }
}

impl RpcOptions {
    /// Sets [`max_receive_queue`](Self::max_receive_queue) (at least 1).
    #[must_use]
    pub fn max_receive_queue(mut self, messages: usize) -> Self {
        self.max_receive_queue = messages.max(1);
        self
    }

    /// Sets [`max_concurrent_requests`](Self::max_concurrent_requests).
    #[must_use]
    pub fn max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests;
        self
    }
}

type Waiter = oneshot::Sender<Result<Value, RpcError>>;

/// What the handles, the message filter, the dispatch task and the action
/// tasks share.
struct Shared {
    /// The protocol state: this side's calls, the peer's running requests.
    endpoint: Mutex<Endpoint<Waiter>>,
    /// Becomes `true` once the dispatch task has seen the close; running
    /// actions are then cancelled.
    closed: watch::Sender<bool>,
}

impl Shared {
    fn endpoint(&self) -> MutexGuard<'_, Endpoint<Waiter>> {
        // Every critical section is a short, panic-free table operation.
        self.endpoint.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails every pending call with [`RpcError::Closed`] and refuses new
    /// ones; cancels running actions.
    fn close(&self) {
        let pending = self.endpoint().close();
        for (_, waiter) in pending {
            let _ = waiter.send(Err(RpcError::Closed));
        }
        self.closed.send_replace(true);
    }
}

/// Closes the connection when the last [`RpcConnection`] clone goes away.
struct Handle {
    connection: Connection,
    shared: Arc<Shared>,
    /// Plain messages from the dispatch task. Owned here, not in `Shared`,
    /// so that dropping the last handle also frees a dispatch task waiting
    /// for room in this queue.
    /// Plain messages, each with its bytes held against the connection's
    /// receive budget until taken.
    messages: tokio::sync::Mutex<mpsc::Receiver<(Value, HeldBytes)>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.connection.close();
    }
}

/// Remote procedure calls (SPEC §5) over a Juggler [`Connection`] of
/// either runtime, with the connection's own data and message API.
///
/// A cheap `Clone + Send + Sync` handle. [`new`](Self::new) spawns one
/// dispatch task on the connection's runtime that reads every message:
/// requests run their action, and an action that waits (for I/O, a timer,
/// another call) goes on in its own task, so a slow action holds up nothing
/// else (one that computes for long without waiting holds up the dispatch
/// of this connection's messages meanwhile); responses complete their [`call`](Self::call); plain
/// messages queue for [`receive`](Self::receive). A malformed rpc object
/// is a protocol error: it is logged and closes the connection with
/// [`ProtocolError::InvalidMessage`].
///
/// The `RpcConnection` takes the connection over: do not call `receive` on
/// the [`Connection`] itself (that would take messages from under it).
/// Dropping the last `RpcConnection` clone closes the connection even if
/// `Connection` clones remain elsewhere; the dispatch task then ends, and
/// running actions are cancelled, as they are whenever the connection
/// closes.
///
/// ```
/// use std::time::Duration;
/// use juggler_rpc::{Actions, RpcConnection, RpcError};
/// use juggler_tokio::{connect, listen, ServerOptions};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // A server whose clients may call `greet`; it keeps each RpcConnection
/// // until its client leaves.
/// let server = listen("127.0.0.1", 0, |connection| {
///     let actions = Actions::new().typed_action("greet", |(name,): (String,)| async move {
///         Ok::<_, String>(format!("hello, {name}"))
///     });
///     let rpc = RpcConnection::new(connection, actions);
///     tokio::spawn(async move { rpc.wait_closed().await });
/// }, ServerOptions::default()).await?;
///
/// // A client that offers no actions of its own.
/// let rpc = RpcConnection::new(connect(server.url()).await?, Actions::new());
/// let greeting: String = rpc.call_typed("greet", ("alice",)).await?;
/// assert_eq!(greeting, "hello, alice");
/// let answer = rpc.call_with_timeout("greet", vec![json!("bob")], Duration::from_secs(5)).await?;
/// assert_eq!(answer, json!("hello, bob"));
/// match rpc.call("missing", vec![]).await {
///     Err(RpcError::Remote(error)) => assert_eq!(error, json!("invalid action")),
///     other => panic!("{other:?}"),
/// }
/// rpc.shutdown().await;
/// server.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RpcConnection {
    handle: Arc<Handle>,
}

impl fmt::Debug for RpcConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcConnection")
            .field("connection", &self.handle.connection)
            .field(
                "pending_calls",
                &self.handle.shared.endpoint().pending_calls(),
            )
            .finish()
    }
}

impl RpcConnection {
    /// Wraps `connection`, answering the peer's requests with `actions`.
    pub fn new(connection: Connection, actions: Actions) -> Self {
        RpcConnection::with_options(connection, actions, RpcOptions::default())
    }

    /// [`new`](Self::new) with limits other than the defaults.
    pub fn with_options(connection: Connection, actions: Actions, options: RpcOptions) -> Self {
        let (closed, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            endpoint: Mutex::new(Endpoint::new(options.max_concurrent_requests)),
            closed,
        });
        let (sender, receiver) = mpsc::channel(options.max_receive_queue.max(1));
        let actions = Arc::new(actions);
        let dispatch = dispatch(connection.clone(), shared.clone(), actions.clone(), sender);
        let span = connection.span().clone();
        connection
            .runtime()
            .spawn(Box::pin(dispatch.instrument(span)));
        connection.set_message_filter(message_filter(&connection, &shared, &actions));
        RpcConnection {
            handle: Arc::new(Handle {
                connection,
                shared,
                messages: tokio::sync::Mutex::new(receiver),
            }),
        }
    }

    /// The wrapped connection.
    pub fn connection(&self) -> &Connection {
        &self.handle.connection
    }

    /// The local data as last set.
    pub fn local_data(&self) -> Arc<Value> {
        self.connection().local_data()
    }

    /// The peer's data as last received.
    pub fn remote_data(&self) -> Arc<Value> {
        self.connection().remote_data()
    }

    /// Calls `callback` once for every change of the remote data; see
    /// [`Connection::register_change_cb`].
    #[must_use = "the callback is unregistered when the handle is dropped"]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> ChangeCallbackHandle {
        self.connection().register_change_cb(callback)
    }

    /// An async stream of remote data changes; see
    /// [`Connection::remote_changes`].
    pub fn remote_changes(&self) -> RemoteChanges {
        self.connection().remote_changes()
    }

    /// Replaces the local data; see [`Connection::set_local_data`].
    pub fn set_local_data(&self, data: impl Into<Arc<Value>>) -> Result<(), Error> {
        self.connection().set_local_data(data)
    }

    /// Applies RFC 6902 operations to the local data; see
    /// [`Connection::update_local_data`].
    pub fn update_local_data(&self, ops: Vec<PatchOperation>) -> Result<(), Error> {
        self.connection().update_local_data(ops)
    }

    /// Sends unsent local data now; see [`Connection::flush_local_data`].
    pub async fn flush_local_data(&self) -> Result<(), Error> {
        self.connection().flush_local_data().await
    }

    /// Sends one plain message; see [`Connection::send`]. A message that
    /// is an object with `"type": "rpc"` is taken by the peer for an rpc
    /// object.
    pub async fn send(&self, message: &Value) -> Result<(), Error> {
        self.connection().send(message).await
    }

    /// The next message from the peer that is not an rpc object, waiting
    /// if there is none. Messages that arrived before the close are still
    /// returned; after them, fails with [`Error::Closed`].
    #[doc(alias = "recv")]
    pub async fn receive(&self) -> Result<Value, Error> {
        let mut messages = self.handle.messages.lock().await;
        let (message, _held) = messages.recv().await.ok_or(Error::Closed)?;
        Ok(message)
    }

    /// Calls the peer's action `action` with `args` and waits for its
    /// result. Fails with [`RpcError::Remote`] carrying the remote error
    /// text when the action failed (or does not exist: `"invalid
    /// action"`), and with [`RpcError::Closed`] if the connection closes
    /// first.
    ///
    /// Dropping the returned future gives the call up cleanly: its pending
    /// entry is removed and a late response is ignored.
    #[doc(alias("request", "invoke_raw"))]
    pub async fn call(&self, action: &str, args: Vec<Value>) -> Result<Value, RpcError> {
        self.recorded(self.call_inner(action, args)).await
    }

    /// Runs a call, counting its outcome and time in the metrics.
    async fn recorded(
        &self,
        call: impl std::future::Future<Output = Result<Value, RpcError>>,
    ) -> Result<Value, RpcError> {
        let started = crate::metrics::started(self.connection());
        let outcome = call.await;
        crate::metrics::call_finished(&outcome, crate::metrics::took(self.connection(), started));
        outcome
    }

    /// [`call`](Self::call), giving up with [`RpcError::Timeout`] after
    /// `timeout` (measured on the connection's runtime). The pending entry
    /// is removed then; a late response is ignored.
    pub async fn call_with_timeout(
        &self,
        action: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        self.recorded(async {
            let call = std::pin::pin!(self.call_inner(action, args));
            let runtime = self.connection().runtime();
            let Some(deadline) = runtime.now().checked_add(timeout) else {
                // Too far away for the clock: no timeout at all.
                return call.await;
            };
            let timer = runtime.sleep_until(deadline);
            match select(call, timer).await {
                Either::Left((outcome, _)) => outcome,
                // Dropping the call future here removes its pending entry.
                Either::Right(_) => Err(RpcError::Timeout),
            }
        })
        .await
    }

    /// [`call`](Self::call) with serde: `args` must serialize to a JSON
    /// array (a tuple such as `(123,)` for positional arguments, `()` for
    /// none); the result deserializes into `R`.
    pub async fn call_typed<A, R>(&self, action: &str, args: A) -> Result<R, RpcError>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        let args = match serde_json::to_value(args) {
            Ok(Value::Array(args)) => args,
            // `()` serializes to null: no arguments.
            Ok(Value::Null) => Vec::new(),
            Ok(other) => {
                return Err(RpcError::InvalidArgs(format!(
                    "arguments must serialize to a JSON array, not {other}"
                )))
            }
            Err(err) => return Err(RpcError::InvalidArgs(err.to_string())),
        };
        let result = self.call(action, args).await?;
        serde_json::from_value(result).map_err(RpcError::InvalidResult)
    }

    /// Calls an [`Action`](crate::Action) declared as a type: its name,
    /// arguments and result type come from the declaration (see
    /// [`Actions::handle`](crate::Actions::handle) for the other side).
    /// Fails as [`call_typed`](Self::call_typed) does.
    #[doc(alias = "call")]
    pub async fn invoke<A: crate::Action>(
        &self,
        _action: A,
        args: A::Args,
    ) -> Result<A::Output, RpcError> {
        self.call_typed(A::NAME, args).await
    }

    async fn call_inner(&self, action: &str, args: Vec<Value>) -> Result<Value, RpcError> {
        let (waiter, outcome) = oneshot::channel();
        let (id, request) = self
            .handle
            .shared
            .endpoint()
            .start_call(action, args, waiter)
            .map_err(|_| RpcError::Closed)?;
        let _pending = PendingCall {
            shared: &self.handle.shared,
            id,
        };
        self.connection()
            .send(&request)
            .await
            .map_err(RpcError::from)?;
        // The sender is dropped only by a cancel, which this future alone
        // does; treat it as closed all the same.
        outcome.await.unwrap_or(Err(RpcError::Closed))
    }

    /// How many of this side's calls wait for a response now.
    pub fn pending_calls(&self) -> usize {
        self.handle.shared.endpoint().pending_calls()
    }

    /// Starts closing the connection; see [`Connection::close`]. Pending
    /// calls fail with [`RpcError::Closed`].
    pub fn close(&self) {
        self.connection().close();
    }

    /// Waits until the connection is closed and returns why; see
    /// [`Connection::wait_closed`].
    pub async fn wait_closed(&self) -> CloseReason {
        self.connection().wait_closed().await
    }

    /// [`close`](Self::close), then [`wait_closed`](Self::wait_closed).
    pub async fn shutdown(&self) -> CloseReason {
        self.connection().shutdown().await
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.connection().is_open()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.connection().close_reason()
    }
}

/// Removes a call's pending entry when the call ends, however it ends
/// (answered: already gone; timed out or dropped: removed here).
struct PendingCall<'a> {
    shared: &'a Shared,
    id: RpcId,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        let waiter = self.shared.endpoint().cancel_call(self.id);
        drop(waiter);
    }
}

/// The dispatch task: reads every message the filter passed on until the
/// connection closes, then fails the pending calls and ends the
/// plain-message queue. It waits where the filter cannot: for room in the
/// plain-message queue, and to send the refusal of a request beyond
/// `max_concurrent_requests` (so a peer that floods requests and does not
/// read the answers is held back, down to the socket).
async fn dispatch(
    connection: Connection,
    shared: Arc<Shared>,
    actions: Arc<Actions>,
    messages: mpsc::Sender<(Value, HeldBytes)>,
) {
    while let Ok(message) = connection.receive().await {
        let inbound = shared.endpoint().handle_message(message);
        match inbound {
            Inbound::Plain(message) => {
                queue_message(&connection, &shared, &messages, message).await
            }
            Inbound::Refuse(response) => {
                crate::metrics::request_finished("refused", None);
                tracing::debug!(id = response.id, "rpc request refused: too many running");
                send_response(&connection, &response).await;
            }
            Inbound::Violation(err) => {
                protocol_error(&connection, err);
                break;
            }
            other => act(&connection, &shared, &actions, other),
        }
    }
    shared.close();
    // Dropping `messages` ends `receive` once the queue is drained.
}

/// The filter that handles rpc objects on the connection's driver task,
/// as they arrive: responses complete their calls, requests whose action
/// finishes at once are answered, and the rest start their action in a
/// task. Without it, each would take a trip through the dispatch task.
/// Plain messages pass, and so do requests the endpoint would refuse,
/// untouched: the dispatch task refuses those, waiting for room to send as
/// backpressure requires.
fn message_filter(
    connection: &Connection,
    shared: &Arc<Shared>,
    actions: &Arc<Actions>,
) -> impl Fn(Value) -> Option<Value> + Send + Sync + 'static {
    // Weak: the connection holds the filter.
    let connection = connection.downgrade();
    let shared = shared.clone();
    let actions = actions.clone();
    move |message| {
        let inbound = {
            let mut endpoint = shared.endpoint();
            if endpoint.would_refuse(&message) {
                return Some(message);
            }
            endpoint.handle_message(message)
        };
        match inbound {
            Inbound::Plain(message) => Some(message),
            other => {
                match connection.upgrade() {
                    Some(connection) => act(&connection, &shared, &actions, other),
                    // Every handle is gone: the connection is closing.
                    None if matches!(other, Inbound::Run(_)) => shared.endpoint().request_done(),
                    None => {}
                }
                None
            }
        }
    }
}

/// Does what the endpoint said a message asks for, without waiting: a
/// request runs (answered at once if its action finishes at once), a
/// response wakes its caller, a violation closes the connection. A refusal
/// is sent if the send queue has room; the filter never produces one, as
/// it passes such requests on to the dispatch task.
fn act(
    connection: &Connection,
    shared: &Arc<Shared>,
    actions: &Arc<Actions>,
    inbound: Inbound<Waiter>,
) {
    match inbound {
        Inbound::Plain(_) | Inbound::Ignored => {}
        Inbound::Run(request) => run_request(connection, shared, actions, request),
        Inbound::Refuse(response) => {
            if let Err(err) = connection.try_send(&response.encode()) {
                tracing::debug!(id = response.id, %err, "rpc refusal not sent");
            }
        }
        Inbound::Resolved {
            waiter, outcome, ..
        } => {
            let _ = waiter.send(outcome.map_err(RpcError::Remote));
        }
        Inbound::Unmatched(id) => tracing::debug!(id, "rpc response with no pending call; ignored"),
        Inbound::Violation(err) => protocol_error(connection, err),
    }
}

/// A malformed rpc object closes the connection.
fn protocol_error(connection: &Connection, err: InvalidRpc) {
    tracing::debug!(
        peer = ?connection.peer_addr(),
        %err,
        "rpc protocol error from the peer; closing connection"
    );
    connection.close_with_protocol_error(ProtocolError::InvalidMessage(err.0));
}

/// Queues a plain message for `receive`, waiting for room. Should the
/// connection close meanwhile, pending calls fail at once rather than
/// after the application has read the queue.
async fn queue_message(
    connection: &Connection,
    shared: &Shared,
    messages: &mpsc::Sender<(Value, HeldBytes)>,
    message: Value,
) {
    // Out of the connection's receive queue, into ours: still the peer's
    // bytes, waiting for the application.
    let held = connection.hold(value_cost(&message));
    let message = match messages.try_send((message, held)) {
        Ok(()) => return,
        // Every handle is gone: nobody will read it.
        Err(mpsc::error::TrySendError::Closed(_)) => return,
        Err(mpsc::error::TrySendError::Full(message)) => message,
    };
    let room = std::pin::pin!(messages.reserve());
    let closed = std::pin::pin!(connection.wait_closed());
    let room = match select(room, closed).await {
        Either::Left((room, _)) => room,
        Either::Right((_, room)) => {
            shared.close();
            room.await
        }
    };
    if let Ok(permit) = room {
        permit.send(message);
    }
}

/// Runs a request's action (its running slot already taken), then sends
/// the response: at once if the action finishes without waiting, else in
/// a task of its own.
fn run_request(
    connection: &Connection,
    shared: &Arc<Shared>,
    actions: &Arc<Actions>,
    request: Request,
) {
    let slot = RunningSlot(shared.clone());
    let connection_for_task = connection.clone();
    let actions = actions.clone();
    // The arguments are the peer's bytes until the action is done with
    // them: they count against the connection's receive budget.
    let held = connection.hold(request.args.iter().map(value_cost).sum());
    let task = async move {
        // The slot is held until the response is handed to the connection.
        let slot = slot;
        let _held = held;
        let connection = connection_for_task;
        let started = crate::metrics::started(&connection);
        let outcome = run_action(&slot.0, &actions, request.action, request.args).await;
        let took = crate::metrics::took(&connection, started);
        match outcome {
            Some(outcome) => {
                let label = if outcome.is_ok() {
                    "success"
                } else {
                    "failure"
                };
                crate::metrics::request_finished(label, took);
                send_response(&connection, &Response::from_outcome(request.id, outcome)).await
            }
            None => {
                crate::metrics::request_finished("cancelled", None);
                tracing::debug!(id = request.id, "rpc action cancelled: connection closed")
            }
        }
    };
    responder::answer_now_or_spawn(
        &*connection.runtime(),
        task.instrument(connection.span().clone()),
    );
}

async fn send_response(connection: &Connection, response: &Response) {
    if let Err(err) = connection.send(&response.encode()).await {
        tracing::debug!(id = response.id, %err, "rpc response not sent");
    }
}

/// The action's outcome (a panic becomes an error text), or `None` if the
/// connection closed first.
async fn run_action(
    shared: &Shared,
    actions: &Actions,
    name: String,
    args: Vec<Value>,
) -> Option<Result<Value, String>> {
    let mut closed = shared.closed.subscribe();
    let action = responder::catch_panic(async { actions.run(&name, args).await });
    let closing = std::pin::pin!(closed.wait_for(|closed| *closed));
    let finished = match select(std::pin::pin!(action), closing).await {
        Either::Left((ended, _)) => {
            if ended.is_err() {
                tracing::error!(action = %name, "rpc action panicked");
            }
            Some(answer(ended, || ACTION_PANICKED.to_owned()))
        }
        Either::Right(_) => None,
    };
    finished
}

/// The running slot the endpoint took for a request, freed on drop.
struct RunningSlot(Arc<Shared>);

impl Drop for RunningSlot {
    fn drop(&mut self) {
        self.0.endpoint().request_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_send_sync<T: Send + Sync + Clone + 'static>() {}
    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn handles_and_futures_are_send() {
        is_send_sync::<RpcConnection>();
        // Never polled: only the types matter.
        fn futures(rpc: &RpcConnection) {
            is_send(&rpc.call("a", Vec::new()));
            is_send(&rpc.call_with_timeout("a", Vec::new(), Duration::from_secs(1)));
            is_send(&rpc.call_typed::<(i64,), i64>("a", (1,)));
            is_send(&rpc.receive());
            is_send(&rpc.flush_local_data());
        }
        let _ = futures;
    }

    #[test]
    fn options_clamp_and_default() {
        let options = RpcOptions::default();
        assert_eq!(options.max_receive_queue, 1024);
        assert_eq!(options.max_concurrent_requests, 1 << 16);
        let options = options.max_receive_queue(0).max_concurrent_requests(0);
        assert_eq!(options.max_receive_queue, 1);
        assert_eq!(options.max_concurrent_requests, 0);
    }
}
