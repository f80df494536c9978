//! What a user of juggler-tokio or juggler-smol needs beside the runtime's
//! own `connect`, `listen` and `JugglerEndpoint`: one list, re-exported
//! whole by both (`pub use juggler_driver::exports::*`), so that the two
//! crates offer the same names and no user depends on juggler-driver.

pub use crate::{
    connections_in_memory, crypto_provider, describe_metrics, forwarded_client, Admission,
    AdmissionFuture, AutoflushPolicy, ChangeCallbackHandle, CloseReason, Compression, Connection,
    ConnectionOptions, EncodedMessage, Error, Generation, HeldBytes, KeepAlive, MemoryBudget,
    PeerCertificates, ProtocolError, RemoteChanges, SharedChange, SharedState, TypedConnection,
    TypedRemoteChanges, UpgradeRequest, Value, WeakConnection, WebSocketError,
};

#[cfg(feature = "client")]
pub use crate::{
    Backoff, ClientChangeCallbackHandle, ClientOptions, ClientStatus, HeaderCallback,
    ReconnectEvent, ReconnectEvents, ReconnectOptions, ReconnectingClient, RemoteDataChanges,
    WhileDisconnected,
};

#[cfg(feature = "server")]
pub use crate::{
    Generations, Group, GroupMember, HttpTimeouts, MountError, OriginPolicy, Server, ServerOptions,
    ShutdownSummary, SlowMembers,
};

#[cfg(feature = "basic-auth")]
pub use crate::{unauthorized, Htpasswd};

/// One operation of a JSON Patch (RFC 6902), as `update_local_data` and
/// `Group::update_state` take them. Build one from its JSON, or from its
/// struct and a [`PointerBuf`]:
///
/// ```
/// use juggler_driver::exports::{PatchOperation, PointerBuf, ReplaceOperation};
/// use serde_json::json;
///
/// let from_json: PatchOperation =
///     serde_json::from_value(json!({"op": "replace", "path": "/counter", "value": 1})).unwrap();
/// let built = PatchOperation::Replace(ReplaceOperation {
///     path: PointerBuf::parse("/counter").unwrap(),
///     value: json!(1),
/// });
/// assert_eq!(from_json, built);
/// ```
pub use juggler_core::PatchOperation;

pub use juggler_core::{
    AddOperation, CopyOperation, MoveOperation, Patch, Pointer, PointerBuf, RemoveOperation,
    ReplaceOperation, TestOperation,
};

/// The `http` crate, whose types the options and [`UpgradeRequest`] use
/// (headers for [`ClientOptions::header`], responses for an admission
/// hook's refusal).
pub use crate::http;
/// The `rustls` crate, whose configurations the server and client options
/// take.
pub use crate::rustls;

/// What a user of the runtime crates' `v07` modules needs beside their
/// own `listen` and `connect`: one list, re-exported whole by both
/// (`pub use juggler_driver::exports::v07::*`).
pub mod v07 {
    #[cfg(feature = "client")]
    pub use crate::v07::{Client, Notification, ReconnectingClient};
    #[cfg(feature = "server")]
    pub use crate::v07::{
        Connection, Handlers, RequestError, RequestFuture, RequestHandler, RequestResult,
        WeakConnection,
    };
    pub use crate::v07::{Notifications, Options, StateCallbackHandle};
}

/// The body of the runtime crates' `v07` modules, written once: the
/// [`v07`] names, and `listen`, `connect`, `connect_with` and
/// `reconnecting` on the
/// runtime that `$runtime` (an `Arc<dyn Runtime>` expression) gives and
/// the runtime crate's own `listen` (`$listen`). For juggler-tokio and juggler-smol;
/// the `cfg`s are the calling crate's `client` and `server` features.
#[doc(hidden)]
#[macro_export]
macro_rules! v07_module {
    ($runtime:expr, $listen:path) => {
        pub use $crate::exports::v07::*;

        /// Starts a server of one generation, `options.v07.generation` (0.7 by
        /// default), on `host:port` (port `0` picks a free one): the reference's
        /// `listen(host, port, connection_cb, request_cb)`. The HTTP side (static
        /// files, basic auth, TLS, origin checks) is `options`'.
        #[doc(alias("serve", "bind"))]
        #[cfg(feature = "server")]
        pub async fn listen(
            host: &str,
            port: u16,
            handlers: Handlers,
            options: $crate::ServerOptions,
        ) -> Result<$crate::Server, $crate::Error> {
            $listen(host, port, drop, options.v07_only(handlers)).await
        }

        /// Connects to a 0.7 (or, by `options.generation`, 0.6) server.
        #[cfg(feature = "client")]
        pub async fn connect(address: &str, options: Options) -> Result<Client, $crate::Error> {
            connect_with(address, options, $crate::ClientOptions::default()).await
        }

        /// [`connect`], with TLS, headers, the connect timeout and compression
        /// of `client`.
        #[cfg(feature = "client")]
        pub async fn connect_with(
            address: &str,
            options: Options,
            client: $crate::ClientOptions,
        ) -> Result<Client, $crate::Error> {
            $crate::v07::connect(address, options, client, $runtime).await
        }

        /// Starts a [`ReconnectingClient`] over `addresses` (tried in this
        /// order), each connection with `options`; returns at once.
        #[cfg(feature = "client")]
        pub fn reconnecting<A: Into<String>>(
            addresses: impl IntoIterator<Item = A>,
            options: Options,
            reconnect: $crate::ReconnectOptions,
        ) -> Result<ReconnectingClient, $crate::Error> {
            ReconnectingClient::start(addresses, options, reconnect, $runtime)
        }
    };
}

/// The runtime crates' 0.5 client functions, written once: `connect`,
/// `connect_with` and `reconnecting` on the runtime that `$runtime` (an
/// `Arc<dyn Runtime>` expression) gives; `$krate` names the calling crate
/// in the examples. The `cfg`s are the calling crate's `client` feature.
#[doc(hidden)]
#[macro_export]
macro_rules! client_functions {
    ($krate:ident, $runtime:expr) => {
        /// Connects to a Juggler server at a `ws://` or `wss://` URL with
        /// the default options (autoflush delay 0.2 s, keep-alive on).
        ///
        /// ```no_run
        #[doc = concat!("# async fn run() -> Result<(), ", stringify!($krate), "::Error> {")]
        #[doc = concat!("let connection = ", stringify!($krate), "::connect(\"ws://127.0.0.1:23023/ws\").await?;")]
        /// connection.set_local_data(serde_json::json!({"hello": "server"}))?;
        /// connection.flush_local_data().await?;
        /// # Ok(()) }
        /// ```
        #[cfg(feature = "client")]
        pub async fn connect(address: &str) -> Result<$crate::Connection, $crate::Error> {
            connect_with(address, $crate::ClientOptions::default()).await
        }

        /// Connects with the given options; see [`ClientOptions`](crate::ClientOptions).
        #[cfg(feature = "client")]
        pub async fn connect_with(
            address: &str,
            options: $crate::ClientOptions,
        ) -> Result<$crate::Connection, $crate::Error> {
            $crate::connect(address, options, $runtime).await
        }

        /// Starts a client that reconnects over `addresses` (tried in
        /// order) when the network drops; see
        /// [`ReconnectingClient`](crate::ReconnectingClient). Returns at
        /// once; the first attempt runs in the background.
        ///
        /// ```no_run
        #[doc = concat!("# async fn run() -> Result<(), ", stringify!($krate), "::Error> {")]
        #[doc = concat!("use ", stringify!($krate), "::{reconnecting, ReconnectEvent, ReconnectOptions};")]
        ///
        /// let client = reconnecting(
        ///     ["ws://10.0.0.1:23023/ws", "ws://10.0.0.2:23023/ws"],
        ///     ReconnectOptions::default(),
        /// )?;
        /// client.set_local_data(serde_json::json!({"hello": "server"}))?;
        /// let mut events = client.events();
        /// while let Some(event) = events.next().await {
        ///     if let ReconnectEvent::Connected { address, .. } = event {
        ///         println!("connected to {address}");
        ///     }
        /// }
        /// # Ok(()) }
        /// ```
        #[doc(alias("retry", "auto_reconnect"))]
        #[cfg(feature = "client")]
        pub fn reconnecting<A: Into<String>>(
            addresses: impl IntoIterator<Item = A>,
            options: $crate::ReconnectOptions,
        ) -> Result<$crate::ReconnectingClient, $crate::Error> {
            $crate::ReconnectingClient::start(addresses, options, $runtime)
        }
    };
}
