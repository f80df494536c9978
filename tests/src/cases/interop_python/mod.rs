//! Interop with the pinned Python reference peer (hat-juggler 0.5.14), in
//! both directions: our server with a Python client, and a Python server
//! with our client. Each case starts one `tests/python/peer.py` process
//! (see [`crate::support::python`]) and drives it with JSON commands, reading its
//! JSON events.
//!
//! Without the peer (no `python3`, pip failing) each case prints a
//! `SKIPPED:` line and passes, except under `CI=true`, where it fails.
//!
//! The cases by topic: `data` (data sync, every autoflush policy),
//! `messages` (messages, PING, close) and `rpc`; the harness that links us
//! to the peer (`Py`, `Link`) is here.

mod data;
mod messages;
mod rpc;

pub use data::*;
pub use messages::*;
pub use rpc::*;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;

use juggler_driver::{
    ClientOptions, CloseReason, Connection, ConnectionOptions, Error, PatchOperation, ServerOptions,
};
use juggler_rpc::{Actions, RpcConnection, RpcError};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

use crate::cases::conformance::{data_sequences, message_sequences};
use crate::support::backend::{
    listen, record_changes, within, Backend, TestServer, HANG_GUARD, IMMEDIATE,
};
use crate::support::python::{start_peer, PythonPeer};

/// A delay that three back-to-back sets never outlast, even on a loaded
/// machine where a thread may wait a long while for a core.
const DELAYED: Option<Duration> = Some(Duration::from_secs(1));
/// Long enough never to fire during a case.
const NEVER: Option<Duration> = Some(Duration::from_secs(3600));
const MANUAL: Option<Duration> = None;
/// The Python peer's autoflush delays, in seconds; `None` is manual.
const PY_IMMEDIATE: Option<f64> = Some(0.0);
const PY_DELAYED: Option<f64> = Some(1.0);
const PY_MANUAL: Option<f64> = None;

/// Which side listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Topology {
    /// Our server, the Python client.
    RustServer,
    /// The Python server, our client.
    PythonServer,
}

const TOPOLOGIES: [Topology; 2] = [Topology::RustServer, Topology::PythonServer];

/// Values whose encoding is easy to get wrong: unicode, escapes, keys that
/// One connection between us and the Python peer.
struct Link<B: Backend> {
    /// Our side.
    rust: Connection,
    /// The Python side's number.
    conn: u64,
    /// Our server, when we listen.
    rust_server: Option<B::Server>,
    /// The Python server's number, when Python listens.
    python_server: Option<u64>,
}

/// The Python peer of one case.
struct Py<B> {
    peer: PythonPeer,
    _backend: PhantomData<fn() -> B>,
}

impl<B: Backend> Py<B> {
    /// The peer, or `None` (after a loud `SKIPPED:` line) if it cannot be
    /// had outside CI.
    fn start() -> Option<Self> {
        start_peer().map(|peer| Py {
            peer,
            _backend: PhantomData,
        })
    }

    fn command(&mut self, command: Value) {
        self.peer.command(&command);
    }

    async fn event(&mut self) -> Value {
        within::<B, _>(
            HANG_GUARD,
            "the Python peer's next event",
            self.peer.next_event(),
        )
        .await
    }

    /// The next event is `expected`, exactly.
    async fn expect(&mut self, expected: Value) {
        let event = self.event().await;
        assert_eq!(event, expected, "the Python peer's next event");
    }

    /// The next events are `expected`, in any order.
    async fn expect_unordered(&mut self, mut expected: Vec<Value>) {
        while !expected.is_empty() {
            let event = self.event().await;
            let Some(at) = expected.iter().position(|e| *e == event) else {
                panic!("unexpected event {event} from the Python peer; expected {expected:?}");
            };
            expected.remove(at);
        }
    }

    /// The next event is of kind `name`; returns it.
    async fn expect_kind(&mut self, name: &str) -> Value {
        let event = self.event().await;
        assert_eq!(
            event["event"], name,
            "the Python peer's next event: {event}"
        );
        event
    }

    /// Opens a connection. With `trace` the peer reports every frame it
    /// writes as a `frame_out` event.
    async fn link(
        &mut self,
        topology: Topology,
        rust_delay: Option<Duration>,
        python_delay: Option<f64>,
        trace: bool,
    ) -> Link<B> {
        self.link_with(topology, rust_delay, python_delay, trace, Value::Null)
            .await
    }

    /// [`link`](Self::link), with the peer's `rpc` option: `null` for a
    /// plain connection, `{"default_action": B}` for a hat-juggler
    /// `RpcConnection` around it.
    async fn link_with(
        &mut self,
        topology: Topology,
        rust_delay: Option<Duration>,
        python_delay: Option<f64>,
        trace: bool,
        rpc: Value,
    ) -> Link<B> {
        let rust_options = ConnectionOptions::default().autoflush_delay(rust_delay);
        self.link_options(topology, rust_options, python_delay, trace, rpc)
            .await
    }

    /// [`link_with`](Self::link_with), with all of our side's options.
    async fn link_options(
        &mut self,
        topology: Topology,
        rust_options: ConnectionOptions,
        python_delay: Option<f64>,
        trace: bool,
        rpc: Value,
    ) -> Link<B> {
        match topology {
            Topology::RustServer => {
                let (server, mut incoming) =
                    listen::<B>(ServerOptions::default().connection(rust_options)).await;
                self.command(json!({
                    "cmd": "connect",
                    "url": server.url(),
                    "autoflush_delay": python_delay,
                    "trace": trace,
                    "rpc": rpc,
                }));
                let connected = self.expect_kind("connected").await;
                let rust =
                    within::<B, _>(HANG_GUARD, "accepting the Python client", incoming.next())
                        .await;
                Link {
                    rust,
                    conn: connected["conn"].as_u64().expect("a connection number"),
                    rust_server: Some(server),
                    python_server: None,
                }
            }
            Topology::PythonServer => {
                self.command(json!({
                    "cmd": "listen",
                    "autoflush_delay": python_delay,
                    "trace": trace,
                    "rpc": rpc,
                }));
                let listening = self.expect_kind("listening").await;
                let url = format!("ws://127.0.0.1:{}/ws", listening["port"]);
                let rust = B::connect(&url, ClientOptions::default().connection(rust_options))
                    .await
                    .expect("connect to the Python server");
                // Wait until the Python side has its callbacks in place.
                let connected = self.expect_kind("connected").await;
                assert_eq!(connected["server"], listening["server"]);
                Link {
                    rust,
                    conn: connected["conn"].as_u64().expect("a connection number"),
                    rust_server: None,
                    python_server: listening["server"].as_u64(),
                }
            }
        }
    }

    /// Closes the link's server (and with it the connection, if still
    /// open) and consumes the Python events that brings.
    async fn unlink(&mut self, link: Link<B>, connection_open: bool) {
        let closed = json!({"event": "closed", "conn": link.conn});
        if let Some(server) = &link.rust_server {
            within::<B, _>(HANG_GUARD, "closing our server", server.close()).await;
            if connection_open {
                self.expect(closed.clone()).await;
            }
        }
        if let Some(server) = link.python_server {
            self.command(json!({"cmd": "close_server", "server": server}));
            let mut expected = vec![json!({"event": "server_closed", "server": server})];
            if connection_open {
                expected.push(closed);
            }
            self.expect_unordered(expected).await;
        }
        within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
    }

    /// Whether the Python side of `link` is open.
    async fn python_open(&mut self, link: &Link<B>) -> bool {
        self.command(json!({"cmd": "state", "conn": link.conn}));
        let state = self.expect_kind("state").await;
        state["open"].as_bool().expect("a boolean")
    }
}

/// Declares one `#[test]` per Python interop case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! python_interop_tests {
    ($backend:ty) => {
        $crate::python_interop_tests!(@cases $backend;
            set_local_data_sequences_both_ways,
            move_operations_apply_both_ways,
            json_values_survive_both_ways,
            immediate_autoflush_delivers_every_change,
            delayed_autoflush_delivers_the_latest_once,
            manual_flush_sends_only_on_flush,
            messages_in_order_both_ways,
            big_messages_both_ways,
            ping_is_answered_with_pong,
            closing_is_seen_by_the_other_side,
            rpc_calls_and_errors_both_ways,
            rpc_wire_format_is_the_references,
            rpc_default_actions_both_ways,
            rpc_concurrent_calls_both_ways,
            rpc_plain_messages_pass_beside_calls,
            rpc_pending_calls_fail_when_closed,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on(
                    $crate::cases::interop_python::$case::<$backend>(),
                );
            }
        )*
    };
}
