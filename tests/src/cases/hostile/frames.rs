//! Frames that break the protocol, each closing its connection with the
//! right typed error and close code while the well-behaved client goes on.
//!
//! The engine proves every variant of a malformed frame without sockets
//! (juggler-core's `spec_transport::every_hostile_text_closes_with_its_error`);
//! here one of each kind goes over a real socket, plus what only the
//! transport sees: binary frames and invalid UTF-8.

use async_tungstenite::tungstenite::protocol::frame::coding::Data;
use async_tungstenite::tungstenite::Message;
use juggler_driver::ProtocolError;
use serde_json::{json, Value};

use crate::support::backend::Backend;
use crate::support::bench::*;
use juggler_driver::ServerOptions;

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

/// One row of [`frame_violations`]: a text frame and how it must close.
struct Violation {
    text: String,
    code: u16,
    expected: fn(&ProtocolError) -> bool,
}

fn row(text: impl Into<String>, code: u16, expected: fn(&ProtocolError) -> bool) -> Violation {
    Violation {
        text: text.into(),
        code,
        expected,
    }
}

/// One frame of each kind of malformed text, from a fresh raw client
/// each: the close code and typed error, nothing of it applied, and the
/// well-behaved client served after each.
pub async fn frame_violations<B: Backend>() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let rows = [
        row("not json", 1002, |err| {
            matches!(err, ProtocolError::InvalidJson(_))
        }),
        row(r#"{"type":"MESSAGE","payload":NaN}"#, 1002, |err| {
            matches!(err, ProtocolError::InvalidJson(_))
        }),
        row(
            format!(r#"{{"type":"MESSAGE","payload":{deep}}}"#),
            1002,
            |err| matches!(err, ProtocolError::InvalidJson(_)),
        ),
        row("[]", 1002, |err| *err == ProtocolError::NotAnObject),
        row(r#"{"type":"BOGUS","payload":1}"#, 1002, |err| {
            matches!(err, ProtocolError::UnknownType(_))
        }),
        row(
            json!({"type": "X".repeat(100_000), "payload": 1}).to_string(),
            1002,
            |err| matches!(err, ProtocolError::UnknownType(_)),
        ),
        row(r#"{"payload":1}"#, 1002, |err| {
            *err == ProtocolError::MissingType
        }),
        row(r#"{"type":"MESSAGE"}"#, 1002, |err| {
            *err == ProtocolError::MissingPayload
        }),
        row(r#"{"type":"DATA","payload":{}}"#, 1002, |err| {
            matches!(err, ProtocolError::InvalidPatch(_))
        }),
        row(
            r#"{"type":"DATA","payload":[{"op":"add","path":"a","value":1}]}"#,
            1002,
            |err| matches!(err, ProtocolError::InvalidPatch(_)),
        ),
        row(
            r#"{"type":"DATA","payload":[{"op":"remove","path":"/missing"}]}"#,
            1002,
            |err| matches!(err, ProtocolError::PatchFailed(_)),
        ),
    ];
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    for Violation {
        text: frame,
        code,
        expected,
    } in rows
    {
        let shown: String = frame.chars().take(60).collect();
        bench
            .violation(&shown, &[], &Value::Null, vec![text(frame)], code, expected)
            .await;
    }
    bench.finish().await;
}
