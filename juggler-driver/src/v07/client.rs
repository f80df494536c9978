//! The client side of a 0.6/0.7 connection: the reference's `Client`
//! with `state`, `send(name, data)` and notifications.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::WebSocketStream;
use futures_io::{AsyncRead, AsyncWrite};
use juggler_core::v07::{ClientEngine, ClientEvent};
use juggler_core::{CloseReason, Generation, Value};
use tokio::sync::oneshot;
use tracing::Instrument;

use super::link::{run, Dispatch, Link, LinkState};
use super::{Notifications, Options};
use crate::client::Target;
use crate::Io;
use crate::{ClientOptions, Error, MemoryBudget, Runtime};

/// A notification from the server.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Its name.
    pub name: String,
    /// Its data.
    pub data: Value,
}

/// Client connections' own part of the link state.
pub(crate) struct ClientExtra {
    /// Who waits for the answer to each request.
    waiting: HashMap<u64, oneshot::Sender<Result<Value, Error>>>,
    /// Notifications not taken yet, each with what it was charged to
    /// [`Client::budget`].
    notifications: VecDeque<(Notification, usize)>,
    /// Server states received, counted.
    state_changes: u64,
    /// Notifications dropped by the policy.
    dropped: u64,
}

type ClientLink = Link<ClientEngine, ClientExtra>;

/// A client of a 0.6/0.7 server: the reference's `hat.juggler.Client`.
/// Clones share it.
///
/// `juggler_tokio::v07::connect` and `juggler_smol::v07::connect` return
/// one.
///
/// ```
/// # mod juggler_tokio { pub use juggler_driver::exports::*; pub use juggler_driver::v07; }
/// use juggler_tokio::v07::Client;
/// use juggler_tokio::Error;
/// use serde_json::json;
///
/// /// Given `let client = v07::connect("ws://127.0.0.1:23023/ws",
/// ///     Options::default().notifications(Notifications::Queue)).await?;`
/// async fn use_it(client: Client) -> Result<(), Error> {
///     // Read the notifications: queued unread, they stop the client at 1,024.
///     let notifications = client.clone();
///     tokio::spawn(async move {
///         while let Some(notification) = notifications.receive().await {
///             println!("{}: {}", notification.name, notification.data);
///         }
///     });
///     match client.send("add", json!({"a": 1, "b": 2})).await {
///         Ok(sum) => println!("sum: {sum}"),
///         Err(Error::Remote(data)) => println!("refused: {data}"), // success: false
///         Err(other) => return Err(other),
///     }
///     let (mut seen, mut state) = client.state_changed(0).await?; // the first state
///     loop {
///         println!("state: {state}");
///         (seen, state) = client.state_changed(seen).await?; // Err(Error::Closed) at the end
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Client {
    link: Arc<ClientLink>,
    generation: Generation,
    /// What the notifications not taken yet hold, decoded, against
    /// [`Options::max_receive_bytes`]; the reader waits while it is full.
    budget: Arc<MemoryBudget>,
    /// [`register_change_cb`](Self::register_change_cb)'s.
    callbacks: Arc<crate::callbacks::Callbacks>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("v07::Client")
            .field("generation", &self.generation)
            .finish()
    }
}

impl Client {
    /// 0.6 or 0.7.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The server state as last received (`null` until the first).
    pub fn state(&self) -> Arc<Value> {
        self.link.read(|state| state.engine.state().clone())
    }

    /// Waits until the server state changes after `seen` changes (start
    /// with 0), and returns how many there were and the state then. Fails
    /// with [`Error::Closed`] once the connection is closed with nothing
    /// newer.
    pub async fn state_changed(&self, seen: u64) -> Result<(u64, Arc<Value>), Error> {
        self.link
            .wait_for(|state| {
                if state.extra.state_changes > seen {
                    Some(Ok((
                        state.extra.state_changes,
                        state.engine.state().clone(),
                    )))
                } else if state.done || state.engine.close_reason().is_some() {
                    Some(Err(Error::Closed))
                } else {
                    None
                }
            })
            .await
    }

    /// Sends a request and waits for its answer: the data of a `success:
    /// true` response, [`Error::Remote`] with the data of a failure,
    /// [`Error::Closed`] if the connection closes first, or
    /// [`Error::Timeout`] after [`Options::request_timeout`].
    pub async fn send(&self, name: &str, data: Value) -> Result<Value, Error> {
        let timeout = self.link.options.request_timeout;
        let now = self.link.runtime.now();
        let answer = self
            .link
            .push(|state| {
                let (id, _) = state.engine.request(now, name, &data, timeout)?;
                let (sender, answer) = oneshot::channel();
                state.extra.waiting.insert(id, sender);
                Ok(answer)
            })
            .await?;
        answer.await.unwrap_or(Err(Error::Closed))
    }

    /// Sends a transport ping (`2`) on 0.7; does nothing on 0.6, which
    /// has none. A client that only listens can ping at once, so that a
    /// server telling the generations apart by the first frame (SPEC-0.7.md
    /// §13) knows it speaks 0.7 without waiting for its sniff timeout.
    pub async fn ping(&self) -> Result<(), Error> {
        self.link
            .push(|state| state.engine.send_ping("").map_err(|_| Error::Closed))
            .await
    }

    /// The next notification, waiting for one; `None` once the connection
    /// is closed and every notification was taken. Each is taken once,
    /// by one caller. Only a client whose [`Options::notifications`] keeps
    /// them ever gets one: by default none are kept.
    pub async fn receive(&self) -> Option<Notification> {
        let link = self.link.clone();
        let taken = self
            .link
            .wait_for(|state| match state.extra.notifications.pop_front() {
                Some((notification, bytes)) => {
                    self.budget.release(bytes);
                    Some(Some(notification))
                }
                None if state.done || state.engine.close_reason().is_some() => Some(None),
                None => None,
            })
            .await;
        // Room in the queue: the reader may go on.
        link.update(|_| {});
        taken
    }

    /// How many notifications the [`Notifications`] policy dropped
    /// (`DropOldest`, `KeepLatest`); those `Ignore` never kept are not
    /// counted.
    pub fn dropped_notifications(&self) -> u64 {
        self.link.read(|state| state.extra.dropped)
    }

    /// The notifications as a stream (what the reference's `notify_cb`
    /// gets), ending once the connection is closed and every one was
    /// taken. Each is taken once: by this stream or by
    /// [`receive`](Self::receive), whichever asks first.
    #[doc(alias = "notify_cb")]
    pub fn notifications(
        &self,
    ) -> impl futures_util::Stream<Item = Notification> + Send + Unpin + 'static {
        Box::pin(futures_util::stream::unfold(
            self.clone(),
            |client| async move {
                let notification = client.receive().await?;
                Some((notification, client))
            },
        ))
    }

    /// The server state after each change, as a stream (the reference's
    /// `state.register_change_cb`), ending when the connection closes. As
    /// 0.5's `remote_changes`, it yields the current state first if one
    /// has arrived. A reader that falls behind gets the latest state, not
    /// each one in between.
    #[doc(alias = "register_change_cb")]
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

    /// Calls `callback` after each change of the server state (the
    /// reference's `state.register_change_cb`), on the connection's task,
    /// outside its lock: it must not block, and may read the
    /// [`state`](Self::state). Changes that arrive together call it once.
    /// Dropping the returned handle unregisters it.
    #[doc(alias("on_change", "subscribe"))]
    pub fn register_change_cb(
        &self,
        callback: impl Fn() + Send + Sync + 'static,
    ) -> crate::callbacks::StateCallbackHandle {
        self.callbacks.register(callback)
    }

    /// What the notifications not taken yet hold, decoded (see
    /// [`value_cost`](juggler_core::value_cost)), against
    /// [`Options::max_receive_bytes`]: [`used`](MemoryBudget::used),
    /// [`peak`](MemoryBudget::peak), and
    /// [`until_full`](MemoryBudget::until_full).
    pub fn memory_budget(&self) -> Arc<MemoryBudget> {
        self.budget.clone()
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.link.is_open()
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.link.close_reason()
    }

    /// Closes the connection (1000).
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
}

/// Connects to a 0.6/0.7 server at a `ws://` or `wss://` address on
/// `runtime`; `client` gives TLS, headers, the connect timeout and
/// compression (its connection options are for 0.5 and unused here).
pub async fn connect(
    address: &str,
    options: Options,
    client: ClientOptions,
    runtime: Arc<dyn Runtime>,
) -> Result<Client, Error> {
    let target = Target::parse(address)?;
    let attempt = async {
        let (stream, _peer) = runtime
            .connect_tcp(target.host.clone(), target.port)
            .await?;
        let stream: Box<dyn Io> = crate::client::wrap_tls(stream, &target, &client).await?;
        let mut request = address.into_client_request().map_err(Error::websocket)?;
        for (name, value) in &client.headers {
            request.headers_mut().append(name, value.clone());
        }
        let socket = crate::compression::client_upgrade(
            request,
            stream,
            options.websocket_config(),
            &client.compression,
        )
        .await?;
        Ok::<_, Error>(start(socket, options.clone(), runtime.clone()))
    };
    crate::client::within_connect_timeout(&*runtime, client.connect_timeout, attempt).await
}

/// Starts driving a client connection over an established WebSocket.
pub fn start<S>(socket: WebSocketStream<S>, options: Options, runtime: Arc<dyn Runtime>) -> Client
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let generation = options.generation;
    let span = tracing::info_span!(
        "juggler_connection",
        id = crate::connection::next_connection_id(),
        role = "client",
        generation = generation.as_str(),
    );
    let engine = ClientEngine::new(options.client_config());
    let budget = MemoryBudget::new(Some(options.max_receive_bytes));
    let extra = ClientExtra {
        waiting: HashMap::new(),
        notifications: VecDeque::new(),
        state_changes: 0,
        dropped: 0,
    };
    let link = Link::new(engine, extra, options, runtime.clone(), span.clone(), false);
    let callbacks = Arc::new(crate::callbacks::Callbacks::default());
    let dispatch = ClientDispatch {
        callbacks: callbacks.clone(),
        policy: link.options.notifications,
        receive_queue_size: link.options.receive_queue_size,
        budget: budget.clone(),
    };
    runtime.spawn(Box::pin(
        run(socket, link.clone(), dispatch, None).instrument(span),
    ));
    Client {
        link,
        generation,
        budget,
        callbacks,
    }
}

/// Client events are handled under the link's lock (see
/// [`ClientDispatch::reader_must_wait`]); nothing is left for outside.
struct ClientDispatch {
    /// Called once for each batch of events with a state change.
    callbacks: Arc<crate::callbacks::Callbacks>,
    /// What is kept of notifications.
    policy: Notifications,
    receive_queue_size: usize,
    /// The client's own [`Client::budget`].
    budget: Arc<MemoryBudget>,
}

impl Dispatch<ClientEngine, ClientExtra> for ClientDispatch {
    fn take(&self, extra: &mut ClientExtra, event: ClientEvent) -> Option<ClientEvent> {
        match event {
            ClientEvent::Notify { name, data } => {
                self.keep(extra, Notification { name, data });
                None
            }
            other => take_client_event(extra, other),
        }
    }

    fn dispatch(&self, events: Vec<ClientEvent>) {
        if events
            .iter()
            .any(|event| matches!(event, ClientEvent::StateChanged))
        {
            self.callbacks.call_all();
        }
    }

    fn reader_must_wait(&self, state: &LinkState<ClientEngine, ClientExtra>) -> bool {
        self.policy == Notifications::Queue
            && state.extra.notifications.len() >= self.receive_queue_size
    }

    fn budget(&self) -> Option<&Arc<MemoryBudget>> {
        // Only a queue holds the reader back; the other policies make
        // room by dropping.
        (self.policy == Notifications::Queue).then_some(&self.budget)
    }
}

impl ClientDispatch {
    /// Keeps a notification as the policy says, under the lock.
    fn keep(&self, extra: &mut ClientExtra, notification: Notification) {
        if self.policy == Notifications::Ignore {
            return;
        }
        let bytes =
            juggler_core::value_cost(&notification.data).saturating_add(notification.name.len());
        self.budget.charge(bytes);
        extra.notifications.push_back((notification, bytes));
        let keep = match self.policy {
            Notifications::KeepLatest => 1,
            Notifications::DropOldest => self.receive_queue_size,
            _ => return,
        };
        while extra.notifications.len() > keep
            || (extra.notifications.len() > 1 && self.budget.is_full())
        {
            if let Some((_, bytes)) = extra.notifications.pop_front() {
                self.budget.release(bytes);
                extra.dropped += 1;
            }
        }
    }
}

/// Takes the client engine's other events into the client's part of the
/// state, under the lock: answers to their waiters.
fn take_client_event(extra: &mut ClientExtra, event: ClientEvent) -> Option<ClientEvent> {
    match event {
        ClientEvent::StateChanged => {
            extra.state_changes += 1;
            // On to `dispatch`, for the callbacks, outside the lock.
            return Some(ClientEvent::StateChanged);
        }
        ClientEvent::Response { id, result } => {
            if let Some(waiter) = extra.waiting.remove(&id) {
                let _ = waiter.send(result.map_err(Error::Remote));
            }
        }
        ClientEvent::TimedOut { id } => {
            if let Some(waiter) = extra.waiting.remove(&id) {
                let _ = waiter.send(Err(Error::Timeout));
            }
        }
        ClientEvent::Failed { id } => {
            if let Some(waiter) = extra.waiting.remove(&id) {
                let _ = waiter.send(Err(Error::Closed));
            }
        }
        other => return Some(other),
    }
    None
}
