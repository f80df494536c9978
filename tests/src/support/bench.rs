//! The bench the hostile-input cases run against: one server with one
//! well-behaved Juggler client whose exchange is checked after every
//! hostile connection, raw WebSocket and HTTP clients, and a count of
//! panics on runtime threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use async_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_util::{AsyncReadExt, AsyncWriteExt, SinkExt, StreamExt};
use juggler_driver::{ClientOptions, CloseReason, Connection, Io, ProtocolError, ServerOptions};
use serde_json::{json, Value};

use crate::support::backend::{
    listen, within, Backend, Incoming, TestServer, HANG_GUARD, IMMEDIATE,
};

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
