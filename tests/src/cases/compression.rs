//! permessage-deflate (RFC 7692) on both runtimes: negotiated by default
//! on every generation, off on the client unless asked, the threshold,
//! and the peer's violations (RSV1 where it may not be, corrupt data,
//! decompression bombs whole and fragmented), each closing only its
//! connection. What is on the wire is checked through a recording relay
//! ([`WireTap`]).

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::header::SEC_WEBSOCKET_EXTENSIONS;
use async_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::Message;
use async_tungstenite::WebSocketStream;
use futures_util::{SinkExt, StreamExt};
use juggler_deflate::ClientStream;
use juggler_driver::v07::{Handlers, Options};
use juggler_driver::{
    ClientOptions, CloseReason, Compression, Connection, Generation, Io, ProtocolError,
    ServerOptions,
};
use miniz_oxide::deflate::core::{compress_to_output, CompressorOxide, TDEFLFlush};
use miniz_oxide::deflate::CompressionLevel;
use miniz_oxide::DataFormat;
use serde_json::{json, Value};

use crate::support::backend::{echo, within, Backend, TestServer, HANG_GUARD, IMMEDIATE};
use crate::support::bench::Bench;
use crate::support::tap::{wire_frames, WireFrame, WireTap};

const TEXT: u8 = 1;

/// JSON of about 16 KB that compresses well.
fn repetitive() -> Value {
    json!({"rows": (0..400).map(|i| json!({"key": format!("k{}", i % 7), "value": "juggler"})).collect::<Vec<_>>()})
}

fn client_options() -> ClientOptions {
    ClientOptions::default()
        .autoflush_delay(IMMEDIATE)
        .compression(Compression::default())
}

/// The data frames of one direction that carry more than `min` bytes.
fn data_frames(bytes: &[u8]) -> Vec<WireFrame> {
    wire_frames(bytes)
        .into_iter()
        .filter(|frame| frame.opcode == TEXT)
        .collect()
}

fn answered_deflate(from_server: &[u8]) -> bool {
    let head_end = from_server
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    String::from_utf8_lossy(&from_server[..head_end])
        .to_ascii_lowercase()
        .contains("sec-websocket-extensions: permessage-deflate")
}

/// One detecting server: a 0.5, a 0.6 and a 0.7 client with compression
/// on exchange a 16 KB JSON both ways, and every one of those messages is
/// compressed on the wire (RSV1, at most a fifth of its size), both ways;
/// a client with compression off (the default) gets no answer and no
/// compressed frame.
pub async fn every_generation_is_compressed<B: Backend>() {
    let big = repetitive();
    let big_len = big.to_string().len();
    let state = big.clone();
    let handlers = Handlers::new()
        .on_connection(move |connection| connection.set_state(state.clone()))
        .on_request(|_, _, data| async move { Ok(data) });
    let options = crate::cases::generations::detecting_options(handlers);
    let server = B::listen(options, echo::<B>).await.expect("listen");
    let tap = WireTap::start(server.local_addr());
    let url = tap.url("/ws");

    let v05 = B::connect(&url, client_options()).await.unwrap();
    v05.send(&big).await.unwrap();
    let echo = within::<B, _>(HANG_GUARD, "0.5 echo", v05.receive()).await;
    assert_eq!(echo.unwrap(), big);
    for generation in [Generation::V0_6, Generation::V0_7] {
        let client = B::connect_v07_with(
            &url,
            Options::default().generation(generation),
            client_options(),
        )
        .await
        .unwrap();
        let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", big.clone())).await;
        assert_eq!(echoed.unwrap(), big);
        let (_, state) = within::<B, _>(HANG_GUARD, "state", client.state_changed(0))
            .await
            .unwrap();
        assert_eq!(*state, big);
        client.async_close().await;
    }
    let plain = B::connect(&url, ClientOptions::default().autoflush_delay(IMMEDIATE))
        .await
        .unwrap();
    plain.send(&big).await.unwrap();
    let echo = within::<B, _>(HANG_GUARD, "plain echo", plain.receive()).await;
    assert_eq!(echo.unwrap(), big);

    let recorded = tap.recorded();
    assert_eq!(recorded.len(), 4);
    for (index, connection) in recorded[..3].iter().enumerate() {
        assert!(
            answered_deflate(&connection.from_server),
            "connection {index}: answered"
        );
        for (side, bytes) in [
            ("client", &connection.from_client),
            ("server", &connection.from_server),
        ] {
            let compressed: Vec<_> = data_frames(bytes)
                .into_iter()
                .filter(|frame| frame.rsv1)
                .collect();
            assert!(
                !compressed.is_empty(),
                "connection {index}: the {side} compressed nothing"
            );
            for frame in compressed {
                assert!(
                    frame.len * 5 < big_len,
                    "connection {index}, {side}: {frame:?}"
                );
            }
        }
    }
    let uncompressed = &recorded[3];
    assert!(!answered_deflate(&uncompressed.from_server));
    for bytes in [&uncompressed.from_client, &uncompressed.from_server] {
        let frames = wire_frames(bytes);
        assert!(frames.iter().all(|frame| !frame.rsv1));
        assert!(frames.iter().any(|frame| frame.len >= big_len));
    }
    v05.close();
    plain.close();
    server.close().await;
}

/// A server with compression off answers no offer; our client then goes
/// on uncompressed. Below the threshold a message goes uncompressed.
pub async fn compression_off_and_the_threshold<B: Backend>() {
    for (compression, expect_answer) in [
        (Compression::disabled(), false),
        (
            Compression {
                threshold: 1000,
                ..Compression::default()
            },
            true,
        ),
    ] {
        let (server, mut incoming) = crate::support::backend::listen::<B>(
            ServerOptions::default()
                .compression(compression)
                .autoflush_delay(IMMEDIATE),
        )
        .await;
        let tap = WireTap::start(server.local_addr());
        let client = B::connect(&tap.url("/ws"), client_options()).await.unwrap();
        let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
        let small = json!("short, under the threshold");
        let big = repetitive();
        server_side.send(&small).await.unwrap();
        server_side.send(&big).await.unwrap();
        for expected in [small, big.clone()] {
            let message = within::<B, _>(HANG_GUARD, "message", client.receive()).await;
            assert_eq!(message.unwrap(), expected);
        }
        let recorded = tap.recorded();
        let from_server = &recorded[0].from_server;
        assert_eq!(answered_deflate(from_server), expect_answer);
        let frames = data_frames(from_server);
        let small_frame = frames.iter().find(|f| f.len < 100).expect("the short one");
        assert!(!small_frame.rsv1, "under the threshold: plain");
        let big_len = big.to_string().len();
        let big_frame = frames.last().unwrap();
        assert_eq!(big_frame.rsv1, expect_answer, "{big_frame:?}");
        assert_eq!(big_frame.len * 5 < big_len, expect_answer);
        client.close();
        server.close().await;
    }
}

/// A raw client that negotiated permessage-deflate: what it writes goes
/// through the layer (whole text messages compressed; frames already
/// with RSV1 unchanged).
pub type DeflateClient = WebSocketStream<ClientStream<Box<dyn Io>>>;

/// A raw client to `server` that offered permessage-deflate and had it
/// accepted.
pub async fn deflate_raw_connect<B: Backend>(server: &B::Server) -> DeflateClient {
    let io = B::tcp_connect(server.local_addr())
        .await
        .expect("TCP connect");
    let mut request = server.url().into_client_request().unwrap();
    request.headers_mut().insert(
        SEC_WEBSOCKET_EXTENSIONS,
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (mut socket, response) = async_tungstenite::client_async(request, ClientStream::new(io))
        .await
        .expect("WebSocket handshake");
    let answers = response
        .headers()
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|value| value.to_str().unwrap());
    let negotiated = Compression::default()
        .read_answer(answers)
        .expect("a valid answer")
        .expect("deflate agreed");
    socket.get_mut().negotiated(Some(negotiated), usize::MAX);
    socket
}

async fn deflate_connect<B: Backend>(bench: &mut Bench<B>) -> (DeflateClient, Connection) {
    let socket = deflate_raw_connect::<B>(&bench.server).await;
    let server_side = within::<B, _>(HANG_GUARD, "accepting", bench.incoming.next()).await;
    (socket, server_side)
}

/// Reads until the server's close frame: its code and reason.
pub async fn read_close_of(socket: &mut DeflateClient) -> (u16, String) {
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

fn with_rsv1(opcode: OpCode, payload: &[u8], fin: bool) -> Message {
    let mut frame = match opcode {
        OpCode::Control(Control::Ping) => Frame::ping(payload.to_vec()),
        _ => Frame::message(payload.to_vec(), opcode, fin),
    };
    frame.header_mut().rsv1 = true;
    Message::Frame(frame)
}

fn plain_frame(opcode: OpCode, payload: &[u8], fin: bool) -> Message {
    Message::Frame(Frame::message(payload.to_vec(), opcode, fin))
}

/// `size` bytes of one letter, compressed (sync flush, trailer removed),
/// without ever holding them uncompressed.
pub fn letter_bomb(size: usize) -> Vec<u8> {
    let mut compressor =
        CompressorOxide::with_format_and_level(DataFormat::Raw, CompressionLevel::BestCompression);
    let block = vec![b'a'; 1 << 20];
    let mut out = Vec::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        left -= n;
        let flush = if left == 0 {
            TDEFLFlush::Sync
        } else {
            TDEFLFlush::None
        };
        compress_to_output(&mut compressor, &block[..n], flush, |chunk| {
            out.extend_from_slice(chunk);
            true
        });
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// The frames of a compressed message: RSV1 on the first, `parts` frames.
pub fn compressed_frames(compressed: &[u8], parts: usize) -> Vec<Message> {
    let size = compressed.len().div_ceil(parts).max(1);
    let chunks: Vec<&[u8]> = compressed.chunks(size).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let last = index + 1 == chunks.len();
            if index == 0 {
                with_rsv1(OpCode::Data(Data::Text), chunk, last)
            } else {
                plain_frame(OpCode::Data(Data::Continue), chunk, last)
            }
        })
        .collect()
}

async fn deflate_violation<B: Backend>(
    bench: &mut Bench<B>,
    what: &str,
    hostile: Vec<Message>,
    code: u16,
    expected: impl Fn(&ProtocolError) -> bool,
) {
    let (mut socket, server_side) = deflate_connect(bench).await;
    // A compressed message first: the connection works.
    let hello = json!({"type": "MESSAGE", "payload": repetitive()});
    socket.send(Message::text(hello.to_string())).await.unwrap();
    let received = within::<B, _>(HANG_GUARD, "a compressed message", server_side.receive()).await;
    assert_eq!(received.unwrap(), repetitive(), "{what}");
    for message in hostile {
        if socket.feed(message).await.is_err() {
            break;
        }
    }
    let _ = socket.flush().await;
    let (close_code, reason) =
        within::<B, _>(HANG_GUARD, "the close frame", read_close_of(&mut socket)).await;
    assert_eq!(close_code, code, "{what}: close code ({reason})");
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
    bench.assert_connections(0);
    bench.check_good().await;
}

/// RSV1 without negotiation (1002), on a control frame (1002), on a
/// continuation frame (1002), a corrupt deflate stream (1007), and 64 MiB
/// of one letter compressed to about 64 KiB, whole and in 2 and 64
/// fragments (1009): each closes its own connection only.
pub async fn hostile_compressed_frames<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    bench
        .violation(
            "RSV1 without negotiation",
            &[],
            &Value::Null,
            vec![with_rsv1(OpCode::Data(Data::Text), b"{}", true)],
            1002,
            |err| matches!(err, ProtocolError::WebSocket(_)),
        )
        .await;
    let websocket = |err: &ProtocolError| matches!(err, ProtocolError::WebSocket(_));
    deflate_violation(
        &mut bench,
        "RSV1 on a ping",
        vec![with_rsv1(OpCode::Control(Control::Ping), b"x", true)],
        1002,
        websocket,
    )
    .await;
    let hello =
        juggler_deflate::codec::compress_message(br#"{"type":"MESSAGE","payload":1}"#, 15, 6);
    deflate_violation(
        &mut bench,
        "RSV1 on a continuation",
        vec![
            with_rsv1(OpCode::Data(Data::Text), &hello[..2], false),
            with_rsv1(OpCode::Data(Data::Continue), &hello[2..], true),
        ],
        1002,
        websocket,
    )
    .await;
    deflate_violation(
        &mut bench,
        "corrupt deflate",
        vec![with_rsv1(
            OpCode::Data(Data::Text),
            &[0xff, 0xff, 0xff, 0xff],
            true,
        )],
        1007,
        |err| *err == ProtocolError::CorruptCompressed,
    )
    .await;
    let bomb = letter_bomb(64 << 20);
    assert!(bomb.len() < 128 << 10, "{}", bomb.len());
    for parts in [1, 2, 64] {
        deflate_violation(
            &mut bench,
            &format!("64 MiB bomb in {parts} frames"),
            compressed_frames(&bomb, parts),
            1009,
            |err| matches!(err, ProtocolError::FrameTooLarge { .. }),
        )
        .await;
    }
    bench.finish().await;
}

/// Declares one `#[test]` per compression case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! compression_tests {
    ($backend:ty) => {
        $crate::compression_tests!(@cases $backend;
            every_generation_is_compressed,
            compression_off_and_the_threshold,
            hostile_compressed_frames,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::compression::$case::<$backend>());
            }
        )*
    };
}
