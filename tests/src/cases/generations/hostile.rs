//! Hostile input for the 0.6 and 0.7 generations, through real sockets:
//! each closes its own connection with the right code, and a healthy
//! connection beside it goes on.

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use juggler_core::v07::transport::{Package, Reassembler};
use juggler_driver::v07::{Client, Notifications, Options};
use juggler_driver::{Generation, Generations};
use serde_json::{json, Value};

use super::echo_server;
use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};
use crate::support::bench::{raw_connect, RawClient};

/// The close code the raw client gets next, skipping data frames; `None`
/// when the socket ends without a close frame.
pub(crate) async fn close_code<B: Backend>(raw: &mut RawClient) -> Option<u16> {
    within::<B, _>(HANG_GUARD, "close", async {
        loop {
            match raw.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|frame| u16::from(frame.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
}

async fn still_echoes<B: Backend>(client: &Client) {
    let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!("alive"))).await;
    assert_eq!(echoed.unwrap(), json!("alive"));
}

/// A request frame of `generation` with `message` as its JSON.
fn frame(generation: Generation, message: &str) -> Message {
    match generation {
        Generation::V0_6 => Message::text(message),
        _ => Message::text(format!("0{message}")),
    }
}

/// A binary frame, bad JSON, a message of the wrong direction, a request
/// without an id, an unknown header and an empty frame each close their
/// connection with a protocol code; a healthy connection is unaffected.
pub async fn hostile_frames_close_only_their_connection<B: Backend>(generation: Generation) {
    let options = Options::default().generation(generation);
    let server = echo_server::<B>(Generations::Only(generation), options.clone()).await;
    let healthy = B::connect_v07(&server.url(), options).await.unwrap();
    let cases = [
        (Message::binary(vec![0u8; 4]), 1003),
        (frame(generation, "{bad json"), 1002),
        (
            frame(generation, r#"{"type":"notify","name":"x","data":1}"#),
            1002,
        ),
        (
            frame(
                generation,
                r#"{"type":"response","id":1,"success":true,"data":1}"#,
            ),
            1002,
        ),
        (
            frame(generation, r#"{"type":"request","name":"echo","data":1}"#),
            1002,
        ),
        (frame(generation, "[1, 2]"), 1002),
        (Message::text("9{}"), 1002),
        (Message::text(""), 1002),
    ];
    for (hostile, code) in cases {
        let mut raw = raw_connect::<B>(&server).await;
        raw.send(hostile.clone()).await.unwrap();
        assert_eq!(
            close_code::<B>(&mut raw).await,
            Some(code),
            "{generation} {hostile:?}"
        );
        still_echoes::<B>(&healthy).await;
    }
    server.close().await;
}

/// The 0.7 response to a request, read from a raw client: pongs are
/// returned apart, segments joined.
async fn read_message<B: Backend>(raw: &mut RawClient, pongs: &mut Vec<String>) -> Value {
    let mut reassembler = Reassembler::new(1 << 20);
    within::<B, _>(HANG_GUARD, "message", async {
        loop {
            let Some(Ok(Message::Text(text))) = raw.next().await else {
                panic!("the connection ended");
            };
            match reassembler.handle_frame(&text).unwrap() {
                Package::Message(message) => return serde_json::from_str(&message).unwrap(),
                Package::Pong => pongs.push(text.as_str()[1..].to_owned()),
                _ => {}
            }
        }
    })
    .await
}

/// A ping between two segments of a request is answered at once, before
/// the request is complete; the request is then answered.
pub async fn a_ping_between_segments_is_answered_at_once<B: Backend>() {
    let server = echo_server::<B>(Generations::Only(Generation::V0_7), Options::default()).await;
    let mut raw = raw_connect::<B>(&server).await;
    raw.send(Message::text(r#"1{"type":"requ"#)).await.unwrap();
    raw.send(Message::text("2hello-ping")).await.unwrap();
    let pong = within::<B, _>(HANG_GUARD, "pong", raw.next()).await;
    assert!(
        matches!(&pong, Some(Ok(Message::Text(text))) if text.as_str() == "3hello-ping"),
        "{pong:?}"
    );
    raw.send(Message::text(r#"1est","id":10,"name":"echo","#))
        .await
        .unwrap();
    raw.send(Message::text(r#"0"data":"seg"}"#)).await.unwrap();
    let response = read_message::<B>(&mut raw, &mut Vec::new()).await;
    assert_eq!(
        response,
        json!({"type": "response", "id": 10, "success": true, "data": "seg"})
    );
    server.close().await;
}

/// Segments past the message limit close with 1009; a flood of pings from
/// a client that reads nothing meanwhile is answered with pongs in order
/// (never more than the pings; that an unsent pong is replaced by the next
/// is the core's unit test), and the client is served after.
pub async fn segment_floods_and_ping_floods_are_bounded<B: Backend>() {
    let options = Options::default().max_message_size(1000);
    let server = echo_server::<B>(Generations::Only(Generation::V0_7), options.clone()).await;
    let healthy = B::connect_v07(&server.url(), options).await.unwrap();

    let mut flood = raw_connect::<B>(&server).await;
    let segment = format!("1{}", "x".repeat(600));
    let _ = flood.send(Message::text(segment.clone())).await;
    let _ = flood.send(Message::text(segment)).await;
    assert_eq!(close_code::<B>(&mut flood).await, Some(1009));
    still_echoes::<B>(&healthy).await;

    let mut pinger = raw_connect::<B>(&server).await;
    let pings = 5_000;
    for index in 0..pings {
        pinger
            .feed(Message::text(format!("2{index}")))
            .await
            .unwrap();
    }
    pinger
        .send(Message::text(
            r#"0{"type":"request","id":1,"name":"echo","data":"after"}"#,
        ))
        .await
        .unwrap();
    let mut pongs = Vec::new();
    let response = read_message::<B>(&mut pinger, &mut pongs).await;
    assert_eq!(response["data"], json!("after"));
    assert!(
        !pongs.is_empty() && pongs.len() <= pings,
        "{} pongs",
        pongs.len()
    );
    // Each pong answers a ping, in order.
    let numbers: Vec<u64> = pongs.iter().map(|pong| pong.parse().unwrap()).collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "{numbers:?}"
    );
    still_echoes::<B>(&healthy).await;
    server.close().await;
}

/// A segmented message that never ends, from a client that then says
/// nothing and answers no ping, is cut off by the ping timeout.
pub async fn a_message_that_never_ends_is_cut_off<B: Backend>() {
    let options =
        Options::default().ping(Some(Duration::from_millis(100)), Duration::from_millis(100));
    let server = echo_server::<B>(Generations::Only(Generation::V0_7), options.clone()).await;
    let mut raw = raw_connect::<B>(&server).await;
    raw.send(Message::text(r#"1{"type":"request","id":1,"#))
        .await
        .unwrap();
    // The server pings (`2`), gets no answer, and drops the socket.
    let mut pinged = false;
    within::<B, _>(HANG_GUARD, "cut off", async {
        while let Some(Ok(message)) = raw.next().await {
            pinged |= matches!(&message, Message::Text(text) if text.as_str() == "2");
        }
    })
    .await;
    assert!(pinged);
    let summary = server.close().await;
    assert_eq!(
        summary.closed, 0,
        "the connection was gone before the close"
    );
}

/// A client that floods requests a slow handler holds: once the requests
/// being handled take `max_pending_bytes`, the connection reads nothing
/// more (not even a ping) until one is answered; then all are answered.
pub async fn requests_being_handled_are_bounded_in_bytes<B: Backend>() {
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let release = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let (count, gate) = (started.clone(), release.clone());
    let handlers = juggler_driver::v07::Handlers::new().on_request(move |_, _, data| {
        let (count, gate, started_tx) = (count.clone(), gate.clone(), started_tx.clone());
        async move {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = started_tx.send(());
            gate.acquire().await.unwrap().forget();
            Ok(json!(data["n"]))
        }
    });
    // Each request's data costs over 5,000 bytes: two reach the limit.
    // Requests run at once, so that their data is held together.
    let options = Options::default()
        .max_pending_bytes(10_000)
        .parallel_requests(true);
    let server_options = juggler_driver::ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(options)
        .v07_handlers(handlers);
    let server = B::listen(server_options, drop).await.unwrap();
    let mut raw = raw_connect::<B>(&server).await;
    let filler = "x".repeat(5_000);
    for n in 0..20 {
        let request =
            json!({"type": "request", "id": n, "name": "hold", "data": {"n": n, "fill": filler}});
        raw.feed(Message::text(format!("0{request}")))
            .await
            .unwrap();
    }
    raw.send(Message::text("2after")).await.unwrap();
    for _ in 0..2 {
        within::<B, _>(HANG_GUARD, "a request starts", started_rx.recv()).await;
    }
    // Nothing more is read: no third request starts and the ping waits.
    let quiet = B::sleep(Duration::from_secs(2));
    let more = async {
        futures_util::future::select(
            std::pin::pin!(started_rx.recv()),
            std::pin::pin!(raw.next()),
        )
        .await;
    };
    let read_on = matches!(
        futures_util::future::select(std::pin::pin!(more), std::pin::pin!(quiet)).await,
        futures_util::future::Either::Left(_)
    );
    assert!(!read_on, "read past the limit");
    assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 2);
    release.add_permits(20);
    let mut answered = std::collections::BTreeSet::new();
    let mut pongs = Vec::new();
    while answered.len() < 20 {
        let response = read_message::<B>(&mut raw, &mut pongs).await;
        assert_eq!(response["success"], json!(true), "{response}");
        answered.insert(response["data"].as_u64().unwrap());
    }
    server.close().await;
}

/// A server that floods a client with notifications the application does
/// not take: once they hold `max_receive_bytes` (decoded), the client
/// reads nothing more, so it holds at most that plus the one that crossed
/// it; then every notification arrives, in order, and the state sent
/// after them.
pub async fn unread_notifications_are_bounded_in_bytes<B: Backend>() {
    const FLOOD: usize = 40;
    const LIMIT: usize = 256 << 10;
    let filler = "x".repeat(64 << 10);
    let one = json!({"n": FLOOD, "fill": filler});
    let handlers = juggler_driver::v07::Handlers::new().on_request(move |connection, _, _| {
        let filler = filler.clone();
        async move {
            for n in 0..FLOOD {
                let data = json!({"n": n, "fill": filler});
                connection
                    .notify("flood", &data)
                    .await
                    .map_err(|err| juggler_driver::v07::RequestError::new(err.to_string()))?;
            }
            connection.set_state(json!({"flooded": FLOOD}));
            Ok(json!(null))
        }
    });
    let server_options = juggler_driver::ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers);
    let server = B::listen(server_options, drop).await.unwrap();
    let client = within::<B, _>(
        HANG_GUARD,
        "connect",
        B::connect_v07(
            &server.url(),
            Options::default()
                .max_receive_bytes(LIMIT)
                .notifications(Notifications::Queue),
        ),
    )
    .await
    .unwrap();
    let budget = client.memory_budget();
    assert_eq!(budget.limit(), LIMIT);
    // The request's answer comes after the flood, so it waits too.
    let mut answer = std::pin::pin!(client.send("flood", json!(null)));
    let full = std::pin::pin!(budget.until_full());
    let filled = select(answer.as_mut(), full);
    if let Either::Left((answer, _)) = within::<B, _>(HANG_GUARD, "the budget fills", filled).await
    {
        panic!("the flood was all read before the budget filled: {answer:?}");
    }
    // Absence can only be watched for a while: a client that read on
    // would have the answer in well under this (a few MB over loopback).
    let watch = std::pin::pin!(B::sleep(Duration::from_millis(300)));
    let quiet = select(answer.as_mut(), watch).await;
    assert!(
        matches!(quiet, Either::Right(_)),
        "the client read on past its full budget: {} bytes held",
        budget.used()
    );
    let mut taken = Vec::new();
    for _ in 0..FLOOD {
        let notification = within::<B, _>(HANG_GUARD, "a notification", client.receive())
            .await
            .expect("a notification");
        assert_eq!(notification.name, "flood");
        taken.push(notification.data["n"].clone());
    }
    assert_eq!(taken, (0..FLOOD).map(|n| json!(n)).collect::<Vec<_>>());
    let answer = within::<B, _>(HANG_GUARD, "the answer", answer).await;
    assert_eq!(answer.unwrap(), json!(null));
    let (_, state) = within::<B, _>(HANG_GUARD, "the state", client.state_changed(0))
        .await
        .unwrap();
    assert_eq!(*state, json!({"flooded": FLOOD}));
    let one_cost = juggler_driver::value_cost(&one) + "flood".len();
    assert!(
        budget.peak() <= LIMIT + one_cost,
        "unread notifications held {} bytes, over {LIMIT} + one of {one_cost}",
        budget.peak()
    );
    assert_eq!(budget.used(), 0);
    client.close();
    within::<B, _>(HANG_GUARD, "client closed", client.wait_closed()).await;
    within::<B, _>(HANG_GUARD, "server closed", server.close()).await;
}
