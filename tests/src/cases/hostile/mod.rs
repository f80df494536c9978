//! The hostile-input matrix: a peer (or a plain TCP client) that breaks
//! the protocol, over real sockets on 127.0.0.1, written once for every
//! runtime.
//!
//! Every case runs against a [`Bench`]: one server with one well-behaved
//! juggler client connected. The offending connection must get a typed
//! error (a [`ProtocolError`] on the server side and the matching close
//! code on the wire, or an HTTP error status) and be closed; afterwards the
//! well-behaved client still exchanges messages and data correctly, the
//! server's `connection_count()` is back to the well-behaved connections
//! only, and no server or driver task has panicked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_util::{AsyncReadExt, AsyncWriteExt, SinkExt, StreamExt};
use juggler_driver::{
    ClientOptions, CloseReason, Connection, ConnectionOptions, Io, KeepAlive, ProtocolError,
    ServerOptions,
};
use serde_json::{json, Value};

use crate::backend::{listen, within, Backend, Incoming, TestServer, HANG_GUARD, IMMEDIATE};
use crate::web::{self_signed_pem, TempDir};

// ---- panics on runtime threads ----------------------------------------------

static RUNTIME_PANICS: AtomicUsize = AtomicUsize::new(0);

/// Counts panics on runtime threads (where the server, the connection
/// drivers and spawned tasks run). Both runtimes swallow a panicking task,
/// so without this a panic caused by peer input could go unnoticed.
pub fn watch_runtime_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if [
                "tokio-runtime-worker",
                "tokio-rt-worker",
                "smol-",
                "async-io",
                "blocking",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            {
                RUNTIME_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Fails if any runtime thread of this test process has panicked.
pub fn assert_no_runtime_panics() {
    assert_eq!(
        RUNTIME_PANICS.load(Ordering::SeqCst),
        0,
        "a task on a runtime thread panicked (its message is printed above)"
    );
}

// ---- raw clients ------------------------------------------------------------

/// A WebSocket client that sends whatever it is told to.
pub type RawClient = WebSocketStream<Box<dyn Io>>;

/// Opens a raw WebSocket client to a `ws://` server.
pub async fn raw_connect<B: Backend>(server: &B::Server) -> RawClient {
    let io = B::tcp_connect(server.local_addr())
        .await
        .expect("TCP connect");
    let (socket, _response) = async_tungstenite::client_async(server.url(), io)
        .await
        .expect("WebSocket handshake");
    socket
}

/// A text frame.
pub fn text(text: impl Into<String>) -> Message {
    Message::text(text.into())
}

/// A juggler frame `{"type": kind, "payload": payload}`.
pub fn juggler(kind: &str, payload: Value) -> Message {
    text(json!({"type": kind, "payload": payload}).to_string())
}

/// A raw data frame: `opcode` text, binary or continuation, any bytes.
pub fn raw_frame(bytes: &[u8], opcode: Data, is_final: bool) -> Message {
    Message::Frame(Frame::message(
        bytes.to_vec(),
        OpCode::Data(opcode),
        is_final,
    ))
}

/// Reads until the peer's close frame and returns its code and reason,
/// then completes the close handshake.
pub async fn read_close(socket: &mut RawClient) -> (u16, String) {
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                let close = (u16::from(frame.code), frame.reason.to_string());
                while let Some(Ok(_)) = socket.next().await {}
                return close;
            }
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("the socket failed before a close frame: {err}"),
            None => panic!("the socket ended without a close frame"),
        }
    }
}

/// Sends `request` on a fresh TCP connection and reads the answer: (status
/// code if there was an HTTP answer, the raw bytes). Reads until the server
/// closes the connection or one whole answer (head and `Content-Length`
/// body) has arrived, whichever comes first.
pub async fn http_exchange<B: Backend>(
    addr: std::net::SocketAddr,
    request: &[u8],
) -> (Option<u16>, Vec<u8>) {
    let exchange = async {
        let mut io = B::tcp_connect(addr).await.expect("TCP connect");
        io.write_all(request).await.expect("send the request");
        io.flush().await.expect("send the request");
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        // A reset counts as the end of the answer.
        while let Ok(read @ 1..) = io.read(&mut chunk).await {
            raw.extend_from_slice(&chunk[..read]);
            if answer_complete(&raw) {
                break;
            }
        }
        raw
    };
    let raw = within::<B, _>(HANG_GUARD, "an HTTP answer", exchange).await;
    let status = raw
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok())
        .and_then(|code| code.parse().ok());
    (status, raw)
}

/// Whether `raw` holds a whole HTTP answer with a `Content-Length` body.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(head_end) = raw.windows(4).position(|window| window == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok());
    length.is_some_and(|length| raw.len() >= head_end + 4 + length)
}

// ---- the bench ----------------------------------------------------------------

/// A server with one well-behaved juggler client, whose exchange is checked
/// after every hostile connection.
pub struct Bench<B: Backend> {
    /// The server under test.
    pub server: B::Server,
    /// Connections it accepts after the well-behaved one.
    pub incoming: Incoming,
    client: Connection,
    server_side: Connection,
    round: u64,
}

impl<B: Backend> Bench<B> {
    /// Starts a server (immediate autoflush, otherwise `options`) and
    /// connects the well-behaved client.
    pub async fn start(options: ServerOptions) -> Self {
        Self::start_with(options, ClientOptions::default()).await
    }

    /// [`start`](Self::start) with client options (a `wss://` server needs
    /// its certificate trusted).
    pub async fn start_with(options: ServerOptions, client_options: ClientOptions) -> Self {
        watch_runtime_panics();
        let (server, mut incoming) = listen::<B>(options.autoflush_delay(IMMEDIATE)).await;
        let client = B::connect(&server.url(), client_options.autoflush_delay(IMMEDIATE))
            .await
            .expect("the well-behaved client connects");
        let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
        let mut bench = Bench {
            server,
            incoming,
            client,
            server_side,
            round: 0,
        };
        bench.check_good().await;
        bench
    }

    /// One exchange with the well-behaved client: data and messages both
    /// ways, in order, with the right values.
    pub async fn check_good(&mut self) {
        self.round += 1;
        let round = self.round;
        let (client, server_side) = (&self.client, &self.server_side);
        client
            .set_local_data(json!({"round": round, "from": "client"}))
            .expect("the well-behaved client is open");
        for n in 0..3 {
            client.send(&json!([round, n])).await.unwrap();
        }
        for n in 0..3 {
            let message = within::<B, _>(HANG_GUARD, "a good message", server_side.receive())
                .await
                .expect("the well-behaved connection is open");
            assert_eq!(message, json!([round, n]));
        }
        // The DATA frame went before the messages, so it has arrived.
        assert_eq!(
            *server_side.remote_data(),
            json!({"round": round, "from": "client"})
        );
        server_side
            .set_local_data(json!({"round": round, "from": "server"}))
            .unwrap();
        server_side.send(&json!(["ack", round])).await.unwrap();
        let ack = within::<B, _>(HANG_GUARD, "a good ack", client.receive())
            .await
            .unwrap();
        assert_eq!(ack, json!(["ack", round]));
        assert_eq!(
            *client.remote_data(),
            json!({"round": round, "from": "server"})
        );
        assert!(client.is_open() && server_side.is_open());
    }

    /// Asserts that the server holds the well-behaved connection and
    /// `others` more, nothing else.
    pub fn assert_connections(&self, others: usize) {
        assert_eq!(
            self.server.connection_count(),
            1 + others,
            "connections the server still holds"
        );
    }

    /// A raw client and the server side of its connection.
    pub async fn raw(&mut self) -> (RawClient, Connection) {
        let socket = raw_connect::<B>(&self.server).await;
        let server_side =
            within::<B, _>(HANG_GUARD, "accepting the raw client", self.incoming.next()).await;
        (socket, server_side)
    }

    /// Sends `setup` then `hostile` from a fresh raw client and checks that
    /// the server closes that connection with a protocol error `expected`
    /// accepts and close `code`, that its remote data is `remote` (what the
    /// setup made it: never half-patched), and that nothing else suffers.
    pub async fn violation(
        &mut self,
        what: &str,
        setup: &[Message],
        remote: &Value,
        hostile: Vec<Message>,
        code: u16,
        expected: impl Fn(&ProtocolError) -> bool,
    ) {
        let (mut socket, server_side) = self.raw().await;
        for message in setup.iter().cloned().chain(hostile) {
            // The server may close before it reads everything.
            if socket.feed(message).await.is_err() {
                break;
            }
        }
        let _ = socket.flush().await;
        let (close_code, reason) =
            within::<B, _>(HANG_GUARD, "the close frame", read_close(&mut socket)).await;
        assert_eq!(close_code, code, "{what}: close code ({reason})");
        assert!(!reason.is_empty(), "{what}: the close frame says why");
        let closed = within::<B, _>(
            HANG_GUARD,
            "the server side closing",
            server_side.wait_closed(),
        )
        .await;
        match &closed {
            CloseReason::Protocol(err) if expected(err) => {}
            other => panic!("{what}: closed with {other:?}"),
        }
        assert!(!server_side.is_open());
        assert_eq!(*server_side.remote_data(), *remote, "{what}: remote data");
        assert!(matches!(
            server_side.receive().await,
            Err(juggler_driver::Error::Closed)
        ));
        self.assert_connections(0);
        self.check_good().await;
    }

    /// Runs [`violation`](Self::violation) for each text variant, sent as
    /// one text frame after no setup.
    pub async fn violations(
        &mut self,
        variants: &[&str],
        code: u16,
        expected: impl Fn(&ProtocolError) -> bool + Copy,
    ) {
        for variant in variants {
            let shown: String = variant.chars().take(80).collect();
            self.violation(
                &shown,
                &[],
                &Value::Null,
                vec![text(*variant)],
                code,
                expected,
            )
            .await;
        }
    }

    /// Checks the well-behaved client once more, closes the server and
    /// checks that no runtime thread panicked.
    pub async fn finish(mut self) {
        self.check_good().await;
        within::<B, _>(HANG_GUARD, "closing the server", self.server.close()).await;
        assert_eq!(self.server.connection_count(), 0);
        within::<B, _>(HANG_GUARD, "the client closing", self.client.wait_closed()).await;
        assert_no_runtime_panics();
    }
}

// ---- WebSocket-level violations -----------------------------------------------

/// A binary frame: 1003, `BinaryFrame`.
pub async fn binary_frame<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    for payload in [
        br#"{"type":"MESSAGE","payload":1}"#.to_vec(),
        Vec::new(),
        vec![0xff; 100],
    ] {
        bench
            .violation(
                "binary frame",
                &[],
                &Value::Null,
                vec![Message::binary(payload)],
                1003,
                |err| *err == ProtocolError::BinaryFrame,
            )
            .await;
    }
    // After a valid frame, too: remote data stays what that frame made it.
    bench
        .violation(
            "binary after DATA",
            &[juggler(
                "DATA",
                json!([{"op": "replace", "path": "", "value": {"a": 1}}]),
            )],
            &json!({"a": 1}),
            vec![Message::binary(b"x".to_vec())],
            1003,
            |err| *err == ProtocolError::BinaryFrame,
        )
        .await;
    bench.finish().await;
}

/// Text frames that are not UTF-8, whole or fragmented: 1007, `InvalidUtf8`.
pub async fn invalid_utf8<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let cases: Vec<(&str, Vec<Message>)> = vec![
        (
            "0xff in a string",
            vec![raw_frame(
                b"{\"type\":\"MESSAGE\",\"payload\":\"\xff\"}",
                Data::Text,
                true,
            )],
        ),
        (
            "lone continuation byte",
            vec![raw_frame(b"\x80", Data::Text, true)],
        ),
        (
            "overlong encoding",
            vec![raw_frame(b"\"\xc0\xaf\"", Data::Text, true)],
        ),
        (
            "UTF-16 surrogate",
            vec![raw_frame(b"\"\xed\xa0\x80\"", Data::Text, true)],
        ),
        (
            "truncated sequence",
            vec![raw_frame(b"\"\xe2\x82", Data::Text, true)],
        ),
        (
            "invalid across fragments",
            vec![
                raw_frame(
                    b"{\"type\":\"MESSAGE\",\"payload\":\"\xe2\x82",
                    Data::Text,
                    false,
                ),
                raw_frame(b"(\"}", Data::Continue, true),
            ],
        ),
    ];
    for (what, frames) in cases {
        bench
            .violation(what, &[], &Value::Null, frames, 1007, |err| {
                *err == ProtocolError::InvalidUtf8
            })
            .await;
    }
    bench.finish().await;
}

/// Text that is not JSON: 1002, `InvalidJson`.
pub async fn invalid_json<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violations(
            &[
                "",
                " ",
                "{",
                "not json",
                r#"{"type":"MESSAGE","payload":1"#,
                r#"{"type":"MESSAGE","payload":1} trailing"#,
                r#"{"type":"MESSAGE","payload":1,}"#,
                r#"{'type':'MESSAGE','payload':1}"#,
                r#"{"type":"MESSAGE","payload":01}"#,
                r#"{"type":"MESSAGE","payload":"\x"}"#,
                r#"{"type":"MESSAGE","payload":"\ud800"}"#,
                "{\"type\":\"MESSAGE\",\"payload\":\"\u{1}\"}",
                r#"{"type":"MESSAGE","payload":1} {"type":"MESSAGE","payload":2}"#,
                r#"/* comment */ {"type":"MESSAGE","payload":1}"#,
            ],
            1002,
            |err| matches!(err, ProtocolError::InvalidJson(_)),
        )
        .await;
    bench.finish().await;
}

/// JSON that is not an object: 1002, `NotAnObject`.
pub async fn json_not_an_object<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violations(
            &[
                "[]",
                r#"[{"type":"MESSAGE","payload":1}]"#,
                "1",
                "-0.5",
                r#""MESSAGE""#,
                "null",
                "true",
            ],
            1002,
            |err| *err == ProtocolError::NotAnObject,
        )
        .await;
    bench.finish().await;
}

/// An unknown or missing `type`: 1002, `UnknownType` / `MissingType`; the
/// close reason fits a close frame even for a huge type name.
pub async fn unknown_or_missing_type<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let huge = json!({"type": "X".repeat(100_000), "payload": 1}).to_string();
    bench
        .violations(
            &[
                r#"{"type":"BOGUS","payload":1}"#,
                r#"{"type":"message","payload":1}"#,
                r#"{"type":"","payload":1}"#,
                r#"{"type":"DATA ","payload":[]}"#,
                r#"{"type":"RPC","payload":{}}"#,
                &huge,
            ],
            1002,
            |err| matches!(err, ProtocolError::UnknownType(_)),
        )
        .await;
    bench
        .violations(
            &[
                "{}",
                r#"{"payload":1}"#,
                r#"{"type":null,"payload":1}"#,
                r#"{"type":1,"payload":1}"#,
                r#"{"type":["DATA"],"payload":[]}"#,
                r#"{"Type":"MESSAGE","payload":1}"#,
            ],
            1002,
            |err| *err == ProtocolError::MissingType,
        )
        .await;
    bench.finish().await;
}

/// A missing `payload`, or a DATA payload that is not a patch: 1002,
/// `MissingPayload` / `InvalidPatch`.
pub async fn missing_or_wrong_payload<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violations(
            &[
                r#"{"type":"MESSAGE"}"#,
                r#"{"type":"DATA"}"#,
                r#"{"type":"PING"}"#,
                r#"{"type":"MESSAGE","Payload":1}"#,
            ],
            1002,
            |err| *err == ProtocolError::MissingPayload,
        )
        .await;
    bench
        .violations(
            &[
                r#"{"type":"DATA","payload":[1]}"#,
                r#"{"type":"DATA","payload":[null]}"#,
                r#"{"type":"DATA","payload":[{"op":"bogus","path":""}]}"#,
                r#"{"type":"DATA","payload":[{"op":"add","path":"/a"}]}"#,
                r#"{"type":"DATA","payload":[{"path":"/a","value":1}]}"#,
                r#"{"type":"DATA","payload":[{"op":"remove"}]}"#,
                r#"{"type":"DATA","payload":[{"op":"move","path":"/a"}]}"#,
                r#"{"type":"DATA","payload":[{"op":"add","path":1,"value":1}]}"#,
            ],
            1002,
            |err| matches!(err, ProtocolError::InvalidPatch(_)),
        )
        .await;
    bench.finish().await;
}

/// A DATA payload that is not an array: 1002, `InvalidPatch`.
pub async fn data_payload_not_an_array<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violations(
            &[
                r#"{"type":"DATA","payload":{}}"#,
                r#"{"type":"DATA","payload":{"op":"add","path":"","value":1}}"#,
                r#"{"type":"DATA","payload":"[]"}"#,
                r#"{"type":"DATA","payload":null}"#,
                r#"{"type":"DATA","payload":1}"#,
                r#"{"type":"DATA","payload":true}"#,
            ],
            1002,
            |err| matches!(err, ProtocolError::InvalidPatch(_)),
        )
        .await;
    bench.finish().await;
}

/// What the setup DATA frame of the patch cases makes the remote data.
fn patch_base() -> Value {
    json!({"a": 1, "arr": [1, 2], "obj": {"k": "v"}, "s": "text"})
}

fn patch_setup() -> Vec<Message> {
    vec![juggler(
        "DATA",
        json!([{"op": "replace", "path": "", "value": patch_base()}]),
    )]
}

/// Runs each patch against [`patch_base`]; each must close with `code` and
/// an error `expected` accepts, leaving the base unchanged.
async fn failing_patches<B: Backend>(
    bench: &mut Bench<B>,
    patches: Vec<Value>,
    expected: impl Fn(&ProtocolError) -> bool + Copy,
) {
    let (setup, base) = (patch_setup(), patch_base());
    for patch in patches {
        let what = patch.to_string();
        bench
            .violation(
                &what,
                &setup,
                &base,
                vec![juggler("DATA", patch)],
                1002,
                expected,
            )
            .await;
    }
}

/// Patch ops that do not apply (missing paths, failed `test`, array
/// indexes out of range): 1002, `PatchFailed`, remote data unchanged.
pub async fn patch_ops_that_do_not_apply<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let patches = vec![
        json!([{"op": "remove", "path": "/missing"}]),
        json!([{"op": "remove", "path": "/obj/missing"}]),
        json!([{"op": "replace", "path": "/missing", "value": 1}]),
        json!([{"op": "add", "path": "/missing/child", "value": 1}]),
        json!([{"op": "add", "path": "/a/child", "value": 1}]),
        json!([{"op": "add", "path": "/s/0", "value": 1}]),
        json!([{"op": "test", "path": "/a", "value": 2}]),
        json!([{"op": "test", "path": "/a", "value": "1"}]),
        json!([{"op": "test", "path": "/a", "value": 1.5}]),
        json!([{"op": "test", "path": "/obj", "value": {"k": "w"}}]),
        json!([{"op": "test", "path": "/missing", "value": null}]),
        json!([{"op": "move", "from": "/missing", "path": "/b"}]),
        json!([{"op": "move", "from": "/obj", "path": "/obj/inside"}]),
        json!([{"op": "copy", "from": "/missing", "path": "/b"}]),
        // Array indexes out of range or not indexes.
        json!([{"op": "add", "path": "/arr/3", "value": 0}]),
        json!([{"op": "remove", "path": "/arr/2"}]),
        json!([{"op": "replace", "path": "/arr/5", "value": 0}]),
        json!([{"op": "remove", "path": "/arr/-"}]),
        json!([{"op": "add", "path": "/arr/-1", "value": 0}]),
        json!([{"op": "add", "path": "/arr/01", "value": 0}]),
        json!([{"op": "add", "path": "/arr/x", "value": 0}]),
        json!([{"op": "add", "path": "/arr/99999999999999999999999", "value": 0}]),
    ];
    failing_patches(&mut bench, patches, |err| {
        matches!(err, ProtocolError::PatchFailed(_))
    })
    .await;
    bench.finish().await;
}

/// Patches whose pointers are not JSON Pointers (RFC 6901), even after
/// valid ops: not a patch, so 1002, `InvalidPatch`, and the remote data
/// unchanged.
pub async fn patch_with_bad_pointer_syntax<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let patches = vec![
        json!([{"op": "add", "path": "a", "value": 1}]),
        json!([{"op": "add", "path": "a/b", "value": 1}]),
        json!([{"op": "add", "path": "/a~2", "value": 1}]),
        json!([{"op": "add", "path": "/a~", "value": 1}]),
        json!([{"op": "move", "from": "obj", "path": "/b"}]),
        json!([{"op": "add", "path": "/b", "value": 1}, {"op": "remove", "path": "x"}]),
    ];
    failing_patches(&mut bench, patches, |err| {
        matches!(err, ProtocolError::InvalidPatch(_))
    })
    .await;
    bench.finish().await;
}

/// A patch whose later op fails after earlier ops applied: `PatchFailed`
/// and the remote data exactly as before the frame.
pub async fn partially_applicable_patch_changes_nothing<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let patches = vec![
        json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "replace", "path": "/a", "value": 5},
            {"op": "remove", "path": "/arr/0"},
            {"op": "remove", "path": "/missing"},
        ]),
        json!([
            {"op": "add", "path": "/c", "value": 1},
            {"op": "test", "path": "/c", "value": 2},
        ]),
        json!([
            {"op": "copy", "from": "/obj", "path": "/obj2"},
            {"op": "move", "from": "/arr", "path": "/x"},
            {"op": "add", "path": "/obj/k2", "value": [1]},
            {"op": "add", "path": "/x/9", "value": 0},
        ]),
        json!([
            {"op": "replace", "path": "", "value": {"all": "new"}},
            {"op": "test", "path": "/all", "value": "old"},
        ]),
        json!([
            {"op": "remove", "path": "/obj/k"},
            {"op": "add", "path": "/obj/k/deeper", "value": 1},
        ]),
    ];
    failing_patches(&mut bench, patches, |err| {
        matches!(err, ProtocolError::PatchFailed(_))
    })
    .await;
    bench.finish().await;
}

/// 10,000-deep nesting in one frame (arrays, objects, in a message, in a
/// patch value, as the whole frame): 1002, `InvalidJson`, and no stack
/// overflow.
pub async fn deep_nesting_in_a_frame<B: Backend>() {
    const DEPTH: usize = 10_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH));
    let unclosed = "[".repeat(DEPTH);
    bench
        .violations(
            &[
                &arrays,
                &format!(r#"{{"type":"MESSAGE","payload":{arrays}}}"#),
                &format!(r#"{{"type":"MESSAGE","payload":{objects}}}"#),
                &format!(
                    r#"{{"type":"DATA","payload":[{{"op":"add","path":"/d","value":{objects}}}]}}"#
                ),
                &format!(r#"{{"type":{arrays},"payload":1}}"#),
                &format!(r#"{{"type":"MESSAGE","payload":{unclosed}"#),
            ],
            1002,
            |err| matches!(err, ProtocolError::InvalidJson(_)),
        )
        .await;
    bench.finish().await;
}

/// 10,000-deep nesting built by patch ops instead (each level three small
/// ops, so the frame parser's depth limit never sees it): the patch must
/// be refused like deep nesting in one frame, and in any case nothing may
/// crash. A deeper remote data than the parser accepts could not be
/// cloned, compared, encoded or even dropped without deep recursion.
///
/// Ignored while it fails: the patch is accepted, and dropping the value
/// overflows the stack (from about 3,000 levels in a debug build), which
/// aborts the whole test process. Run it alone.
pub async fn deep_nesting_built_by_patch_ops<B: Backend>() {
    const DEPTH: usize = 10_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    let mut ops = vec![json!({"op": "replace", "path": "", "value": {"x": 0}})];
    for _ in 0..DEPTH {
        ops.push(json!({"op": "add", "path": "/y", "value": {}}));
        ops.push(json!({"op": "move", "from": "/x", "path": "/y/x"}));
        ops.push(json!({"op": "move", "from": "/y", "path": "/x"}));
    }
    socket
        .send(juggler("DATA", Value::Array(ops)))
        .await
        .unwrap();
    socket
        .send(juggler("MESSAGE", json!("marker")))
        .await
        .unwrap();
    let received = within::<B, _>(HANG_GUARD, "marker or close", server_side.receive()).await;
    let accepted = received.is_ok();
    if accepted {
        // Release the deep value before failing, in the server's own way.
        drop(socket);
        within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    } else {
        let (code, _) = within::<B, _>(HANG_GUARD, "close frame", read_close(&mut socket)).await;
        assert_eq!(code, 1002);
        let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
        assert!(matches!(reason, CloseReason::Protocol(_)), "{reason:?}");
        assert_eq!(*server_side.remote_data(), Value::Null);
    }
    drop(server_side);
    bench.assert_connections(0);
    bench.check_good().await;
    assert_no_runtime_panics();
    assert!(
        !accepted,
        "the server accepted a remote data {DEPTH} levels deep, built by patch ops"
    );
    bench.finish().await;
}

/// Messages over `max_message_size`, whole or fragmented, or announced by
/// a frame header only: 1009, `FrameTooLarge`, nothing allocated for them.
pub async fn frame_over_the_size_limit<B: Backend>() {
    const LIMIT: usize = 1024;
    let options =
        ServerOptions::default().connection(ConnectionOptions::default().max_message_size(LIMIT));
    let mut bench = Bench::<B>::start(options).await;
    let big = json!({"type": "MESSAGE", "payload": "x".repeat(2 * LIMIT)}).to_string();
    let half = "y".repeat(LIMIT / 2 + 100);
    let cases: Vec<(&str, Vec<Message>)> = vec![
        ("one big text frame", vec![text(big.clone())]),
        (
            "one big binary frame",
            vec![Message::binary(big.into_bytes())],
        ),
        (
            "fragments over the limit together",
            vec![
                raw_frame(
                    format!(r#"{{"type":"MESSAGE","payload":"{half}"#).as_bytes(),
                    Data::Text,
                    false,
                ),
                raw_frame(half.as_bytes(), Data::Continue, false),
                raw_frame(br#""}"#, Data::Continue, true),
            ],
        ),
    ];
    let too_large = |err: &ProtocolError| matches!(err, ProtocolError::FrameTooLarge { limit, .. } if *limit == LIMIT);
    for (what, frames) in cases {
        bench
            .violation(what, &[], &Value::Null, frames, 1009, too_large)
            .await;
    }
    // A header that announces 2^62 bytes, and nothing after it.
    let (mut socket, server_side) = bench.raw().await;
    let mut header = vec![0x81, 0xff];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    socket.get_mut().write_all(&header).await.unwrap();
    socket.get_mut().flush().await.unwrap();
    let (code, _) = within::<B, _>(HANG_GUARD, "close frame", read_close(&mut socket)).await;
    assert_eq!(code, 1009);
    let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    assert!(
        matches!(&reason, CloseReason::Protocol(err) if too_large(err)),
        "{reason:?}"
    );
    bench.assert_connections(0);
    bench.finish().await;
}

/// NaN, Infinity and numbers out of range: 1002, `InvalidJson`.
pub async fn nan_and_infinity<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violations(
            &[
                r#"{"type":"MESSAGE","payload":NaN}"#,
                r#"{"type":"MESSAGE","payload":nan}"#,
                r#"{"type":"MESSAGE","payload":Infinity}"#,
                r#"{"type":"MESSAGE","payload":-Infinity}"#,
                r#"{"type":"MESSAGE","payload":[1,NaN]}"#,
                r#"{"type":"DATA","payload":[{"op":"add","path":"/a","value":NaN}]}"#,
                r#"{"type":"MESSAGE","payload":1e400}"#,
                r#"{"type":"MESSAGE","payload":-1e400}"#,
            ],
            1002,
            |err| matches!(err, ProtocolError::InvalidJson(_)),
        )
        .await;
    bench.finish().await;
}

/// A flood of 100,000 tiny (valid) frames: every one arrives, in order,
/// while the well-behaved client keeps being served.
pub async fn flood_of_tiny_frames<B: Backend>() {
    const FRAMES: u64 = 100_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    let flood = async {
        for n in 0..FRAMES {
            socket
                .feed(text(format!(r#"{{"type":"MESSAGE","payload":{n}}}"#)))
                .await
                .expect("the server keeps reading");
        }
        socket.flush().await.expect("the server keeps reading");
    };
    let drain = async {
        for n in 0..FRAMES {
            let message = server_side.receive().await.expect("the flood is valid");
            assert_eq!(message, json!(n));
        }
    };
    let good = async {
        for _ in 0..5 {
            bench.check_good().await;
        }
    };
    let started = Instant::now();
    within::<B, _>(
        HANG_GUARD * 3,
        "the flood",
        futures_util::future::join3(flood, drain, good),
    )
    .await;
    eprintln!("{FRAMES} frames in {:?}", started.elapsed());
    socket.close(None).await.unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await,
        CloseReason::Remote
    );
    bench.assert_connections(0);
    bench.finish().await;
}

/// A state of about 32 KiB, different for every `n`.
fn bulky_state(n: usize) -> Value {
    json!({"n": n, "blob": format!("{n:08}").repeat(4096)})
}

/// Pushes state to a client that never reads until the socket is stuck:
/// the server keeps going (`set_local_data` never waits), and the
/// well-behaved client is served.
async fn push_to_stuck_client<B: Backend>(
    bench: &mut Bench<B>,
    server_side: &Connection,
    sets: usize,
) {
    let push = async {
        for n in 0..sets {
            match server_side.set_local_data(bulky_state(n)) {
                Ok(()) => {}
                // Keep-alive may close the stuck connection mid-push; the
                // caller asserts how it closed.
                Err(juggler_driver::Error::Closed) => break,
                Err(err) => panic!("set_local_data failed: {err}"),
            }
        }
    };
    within::<B, _>(HANG_GUARD, "pushing state to a stuck client", push).await;
    bench.check_good().await;
}

/// A client that never reads while the server pushes state: the server's
/// keep-alive closes the connection with a typed (transport) error, as it
/// closes any peer that answers no ping, even though (especially when) the
/// server's writes to it are stuck.
pub async fn non_reading_client_is_closed_by_keep_alive<B: Backend>() {
    // A long timeout: the well-behaved client beside the stuck one must
    // answer its pings in time even on a loaded machine. The exact
    // deadlines are checked on a virtual clock in juggler-driver.
    let keep_alive = KeepAlive {
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(3),
    };
    let options = ServerOptions::default()
        .connection(ConnectionOptions::default().keep_alive(Some(keep_alive)));
    let mut bench = Bench::<B>::start(options).await;
    let (socket, server_side) = bench.raw().await;
    // 2,000 sets of 32 KiB: 64 MiB, more than the socket buffers hold
    // (up to 32 MiB of receive and 4 MiB of send buffer on Linux).
    push_to_stuck_client(&mut bench, &server_side, 2_000).await;
    let reason = within::<B, _>(
        HANG_GUARD,
        "the stuck connection closing",
        server_side.wait_closed(),
    )
    .await;
    assert!(matches!(reason, CloseReason::Transport(_)), "{reason:?}");
    drop(socket);
    bench.assert_connections(0);
    bench.finish().await;
}

/// A client that never reads while the server pushes 2,000 states of
/// 32 KiB: what waits for it stays bounded. `try_send` reports
/// `QueueFull` once `max_send_queue` frames wait, and when the client
/// finally reads it gets the latest state in far fewer DATA frames than
/// there were sets (only what the socket buffers and one write batch held,
/// plus one coalesced change), in order.
pub async fn non_reading_client_queue_stays_bounded<B: Backend>() {
    const SETS: usize = 2_000;
    const MAX_SEND_QUEUE: usize = 16;
    let options = ServerOptions::default()
        .connection(ConnectionOptions::default().max_send_queue(MAX_SEND_QUEUE));
    let mut bench = Bench::<B>::start(options).await;
    let (mut socket, server_side) = bench.raw().await;
    push_to_stuck_client(&mut bench, &server_side, SETS).await;
    let mut sent = 0;
    let full = loop {
        match server_side.try_send(&json!(["queued", sent])) {
            Ok(()) if sent <= MAX_SEND_QUEUE => sent += 1,
            Ok(()) => break false,
            Err(juggler_driver::Error::QueueFull) => break true,
            Err(err) => panic!("try_send: {err}"),
        }
    };
    assert!(full, "try_send never reported QueueFull");
    // Now read: DATA frames up to the latest state, then the messages.
    let mut data_frames = 0;
    let mut last_n: Option<u64> = None;
    let read = async {
        while last_n != Some(SETS as u64 - 1) {
            let Some(Ok(Message::Text(frame))) = socket.next().await else {
                panic!("the stuck connection ended");
            };
            let frame: Value = serde_json::from_str(&frame).unwrap();
            if frame["type"] != "DATA" {
                continue;
            }
            data_frames += 1;
            for op in frame["payload"].as_array().unwrap() {
                let n = match op["path"].as_str() {
                    Some("") => op["value"]["n"].as_u64(),
                    Some("/n") => op["value"].as_u64(),
                    _ => None,
                };
                if let Some(n) = n {
                    assert!(last_n < Some(n), "state went back from {last_n:?} to {n}");
                    last_n = Some(n);
                }
            }
        }
    };
    within::<B, _>(HANG_GUARD, "reading what was queued", read).await;
    eprintln!("{SETS} sets reached the late reader in {data_frames} DATA frames");
    assert!(
        data_frames <= SETS / 2,
        "{data_frames} DATA frames were queued for a client that did not read"
    );
    socket.close(None).await.unwrap();
    within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}

/// A flood of 100,000 PING frames from a client that never reads, after
/// the server has filled its socket buffers: the PONGs waiting for it do
/// not pile up (one waiting PONG answers them all), so when it reads at
/// last it gets far fewer PONGs than it sent PINGs, and everything else in
/// order.
pub async fn ping_flood_from_a_non_reading_client<B: Backend>() {
    const PINGS: u64 = 100_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    push_to_stuck_client(&mut bench, &server_side, 2_000).await;
    let flood = async {
        for n in 0..PINGS {
            socket
                .feed(juggler("PING", json!(n)))
                .await
                .expect("the server keeps reading");
        }
        socket
            .send(juggler("MESSAGE", json!("after the pings")))
            .await
            .expect("the server keeps reading");
    };
    within::<B, _>(HANG_GUARD, "the ping flood", flood).await;
    // The marker comes after every PING, so all of them have been read.
    let marker = within::<B, _>(HANG_GUARD, "the marker", server_side.receive()).await;
    assert_eq!(marker.unwrap(), json!("after the pings"));
    server_side.send(&json!("the end")).await.unwrap();
    bench.check_good().await;
    let mut pongs = 0;
    let read = async {
        loop {
            let Some(Ok(Message::Text(frame))) = socket.next().await else {
                panic!("the connection ended");
            };
            let frame: Value = serde_json::from_str(&frame).unwrap();
            match frame["type"].as_str() {
                Some("PONG") => pongs += 1,
                Some("MESSAGE") => {
                    assert_eq!(frame["payload"], json!("the end"));
                    break;
                }
                _ => {}
            }
        }
    };
    within::<B, _>(HANG_GUARD, "reading what was queued", read).await;
    eprintln!("{PINGS} PINGs from a stuck client were answered by {pongs} PONGs");
    assert!(pongs >= 1, "no PONG at all");
    assert!(
        pongs <= 1_000,
        "{pongs} PONGs were queued for a client that did not read"
    );
    socket.close(None).await.unwrap();
    within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}

/// The peer's TCP connection ends mid-frame (or between frames without a
/// close frame): the connection closes with a transport error, no panic.
pub async fn tcp_dropped_mid_frame<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let mut partial_payload = vec![0x81, 0xfe, 0x10, 0x00, 9, 9, 9, 9];
    partial_payload.extend_from_slice(&[b'x'; 100]);
    let mut fragment = Vec::new();
    // A whole masked non-final text frame "{" (mask 0), then nothing.
    fragment.extend_from_slice(&[0x01, 0x81, 0, 0, 0, 0, b'{']);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("in the payload", partial_payload),
        ("in the header", vec![0x81]),
        ("in the extended length", vec![0x81, 0xff, 0, 0]),
        ("in the mask", vec![0x81, 0x85, 1, 2]),
        ("inside a fragmented message", fragment),
        ("between frames", Vec::new()),
    ];
    for (what, bytes) in cases {
        let (mut socket, server_side) = bench.raw().await;
        socket
            .send(juggler(
                "DATA",
                json!([{"op": "add", "path": "", "value": {"kept": true}}]),
            ))
            .await
            .unwrap();
        let stream = socket.get_mut();
        stream.write_all(&bytes).await.unwrap();
        stream.flush().await.unwrap();
        drop(socket);
        let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
        assert!(
            matches!(reason, CloseReason::Transport(_)),
            "{what}: {reason:?}"
        );
        assert_eq!(*server_side.remote_data(), json!({"kept": true}), "{what}");
        bench.assert_connections(0);
        bench.check_good().await;
    }
    bench.finish().await;
}

// ---- HTTP-level abuse ---------------------------------------------------------

/// Path traversal against the static files, every trick at once, while a
/// WebSocket client is served: nothing outside `static_dir` leaks.
pub async fn http_path_traversal<B: Backend>() {
    let base = TempDir::new("hostile-static");
    let root = base.0.join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>index</h1>").unwrap();
    std::fs::write(root.join("sub/app.js"), "ok").unwrap();
    std::fs::write(base.0.join("secret.txt"), "SECRET").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(base.0.join("secret.txt"), root.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(&base.0, root.join("up")).unwrap();
    }
    let mut bench = Bench::<B>::start(ServerOptions::default().static_dir(&root)).await;
    let addr = bench.server.local_addr();
    let (status, answer) = http_exchange::<B>(
        addr,
        b"GET /sub/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(200));
    assert!(answer.ends_with(b"ok"));
    for path in [
        "/../secret.txt",
        "/../../../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/./../secret.txt",
        "/..;/secret.txt",
        "//secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "/%00/../secret.txt",
        "/sub/app.js%00.html",
        "/..\\secret.txt",
        "http://x/../secret.txt",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, answer) = http_exchange::<B>(addr, request.as_bytes()).await;
        assert!(
            status.is_none_or(|status| status >= 400),
            "{path} answered {status:?}"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("SECRET"),
            "{path} leaked the file"
        );
        bench.assert_connections(0);
    }
    bench.check_good().await;
    bench.finish().await;
}

/// Requests to `ws_path` that are not a WebSocket upgrade we accept get an
/// HTTP error and no connection.
pub async fn non_websocket_requests_to_ws_path<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let addr = bench.server.local_addr();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases: Vec<(String, Option<u16>)> = vec![
        ("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), Some(400)),
        (
            format!("POST /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
            Some(400),
        ),
        (
            format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n"),
            Some(426),
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".into(),
            Some(400),
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n".into(),
            Some(400),
        ),
        ("HEAD /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), Some(400)),
    ];
    for (request, expected) in cases {
        let (status, _) = http_exchange::<B>(addr, request.as_bytes()).await;
        assert_eq!(status, expected, "{request:?}");
        bench.assert_connections(0);
    }
    // Not HTTP at all: an HTTP error or a closed socket, nothing else.
    for garbage in [
        &b"HELLO\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
        &[0u8; 64][..],
    ] {
        let (status, _) = http_exchange::<B>(addr, garbage).await;
        assert!(status.is_none_or(|status| status >= 400), "{status:?}");
        bench.assert_connections(0);
    }
    bench.check_good().await;
    bench.finish().await;
}

/// TLS clients that stall the handshake are dropped after
/// `tls_handshake_timeout`, and meanwhile the server accepts and serves
/// others.
pub async fn stalled_tls_handshake<B: Backend>() {
    // Long enough for a good client's handshake on a loaded machine.
    const TLS_TIMEOUT: Duration = Duration::from_secs(3);
    let dir = TempDir::new("hostile-tls");
    let (server_pem, cert_pem) = self_signed_pem();
    let pem_file = dir.0.join("server.pem");
    std::fs::write(&pem_file, server_pem).unwrap();
    let mut options = ServerOptions::default().pem_file(&pem_file);
    options.tls_handshake_timeout = TLS_TIMEOUT;
    let trusting = ClientOptions::default()
        .trust_pem(cert_pem.as_bytes())
        .unwrap();
    let mut bench = Bench::<B>::start_with(options, trusting.clone()).await;
    let addr = bench.server.local_addr();

    let started = Instant::now();
    let mut silent = B::tcp_connect(addr).await.unwrap();
    let mut partial = B::tcp_connect(addr).await.unwrap();
    // A TLS record header announcing a 512-byte ClientHello, and 3 bytes of it.
    partial
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01])
        .await
        .unwrap();
    partial.flush().await.unwrap();

    // While they stall, a new client connects and both clients are served.
    let second = within::<B, _>(
        HANG_GUARD,
        "a TLS client during the stall",
        B::connect(&bench.server.url(), trusting.autoflush_delay(IMMEDIATE)),
    )
    .await
    .expect("connecting during the stall");
    let second_server = within::<B, _>(HANG_GUARD, "accepting", bench.incoming.next()).await;
    second.send(&json!("during the stall")).await.unwrap();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "a message", second_server.receive())
            .await
            .unwrap(),
        json!("during the stall")
    );
    bench.check_good().await;

    for (what, stalled) in [("silent", &mut silent), ("partial hello", &mut partial)] {
        let mut buffer = [0u8; 64];
        let read = within::<B, _>(
            HANG_GUARD,
            "the server dropping the staller",
            stalled.read(&mut buffer),
        )
        .await;
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{what}: the server answered {read:?}"
        );
    }
    let waited = started.elapsed();
    assert!(
        waited >= TLS_TIMEOUT,
        "dropped after {waited:?}, before the timeout"
    );
    second.shutdown().await;
    within::<B, _>(HANG_GUARD, "closing", second_server.wait_closed()).await;
    bench.assert_connections(0);
    bench.finish().await;
}

/// Declares one `#[test]` per hostile-input case for a [`Backend`].
#[macro_export]
macro_rules! hostile_tests {
    ($backend:ty) => {
        $crate::hostile_tests!(@cases $backend;
            binary_frame,
            invalid_utf8,
            invalid_json,
            json_not_an_object,
            unknown_or_missing_type,
            missing_or_wrong_payload,
            data_payload_not_an_array,
            patch_ops_that_do_not_apply,
            patch_with_bad_pointer_syntax,
            partially_applicable_patch_changes_nothing,
            deep_nesting_in_a_frame,
            deep_nesting_built_by_patch_ops,
            frame_over_the_size_limit,
            nan_and_infinity,
            flood_of_tiny_frames,
            ping_flood_from_a_non_reading_client,
            non_reading_client_is_closed_by_keep_alive,
            non_reading_client_queue_stays_bounded,
            tcp_dropped_mid_frame,
            http_path_traversal,
            non_websocket_requests_to_ws_path,
            stalled_tls_handshake,
        );
    };
    (@cases $backend:ty; $($(#[$attribute:meta])* $case:ident),* $(,)?) => {
        $(
            $(#[$attribute])*
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::hostile::$case::<$backend>());
            }
        )*
    };
}
