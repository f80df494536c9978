//! One WebSocket path for every generation, told apart by the client's
//! first frame (SPEC-0.7.md §13).

use std::time::Duration;

use async_tungstenite::tungstenite::Message;
use futures_util::StreamExt;
use juggler_driver::v07::{Handlers, Notifications, Options};
use juggler_driver::{ClientOptions, Generation, Generations, ServerOptions};
use serde_json::json;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};
use crate::support::bench::raw_connect;

/// A detecting server: 0.5 connections get local data `{"gen": "0.5"}`,
/// 0.6/0.7 ones the state `{"gen": <generation>}` and an echo.
async fn detecting_server<B: Backend>(generations: Generations) -> B::Server {
    let handlers = Handlers::new()
        .on_connection(|connection| {
            connection.set_state(json!({"gen": connection.generation().as_str()}))
        })
        .on_request(|_, _, data| async move { Ok(data) });
    let options = ServerOptions::default()
        .generations(generations)
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers)
        .autoflush_delay(Some(Duration::ZERO));
    // A 0.5 connection closes with its last handle: the server keeps one.
    let kept = std::sync::Mutex::new(Vec::new());
    B::listen(options, move |connection| {
        let _ = connection.set_local_data(json!({"gen": "0.5"}));
        kept.lock().unwrap().push(connection);
    })
    .await
    .expect("listen")
}

/// One server, one path: a 0.5 client (whose first frame is a MESSAGE),
/// a 0.6 and a 0.7 client each get their generation's connection.
pub async fn one_path_serves_every_generation<B: Backend>() {
    let detect = Generations::Detect {
        default: Generation::V0_5,
        timeout: Duration::from_secs(3600),
    };
    let server = detecting_server::<B>(detect).await;
    let url = server.url();

    let v05 = B::connect(
        &url,
        ClientOptions::default().autoflush_delay(Some(Duration::ZERO)),
    )
    .await
    .unwrap();
    let mut changes = v05.remote_changes();
    v05.send(&json!("hello")).await.unwrap();
    let data = within::<B, _>(HANG_GUARD, "0.5 data", changes.changed())
        .await
        .unwrap();
    assert_eq!(*data, json!({"gen": "0.5"}));

    for generation in [Generation::V0_6, Generation::V0_7] {
        let client = B::connect_v07(&url, Options::default().generation(generation))
            .await
            .unwrap();
        let echoed = within::<B, _>(
            HANG_GUARD,
            "echo",
            client.send("echo", json!([generation.as_str()])),
        )
        .await;
        assert_eq!(echoed.unwrap(), json!([generation.as_str()]));
        let (_, state) = within::<B, _>(HANG_GUARD, "state", client.state_changed(0))
            .await
            .unwrap();
        assert_eq!(*state, json!({"gen": generation.as_str()}));
        client.async_close().await;
    }
    assert!(v05.is_open());
    v05.close();
    server.close().await;
}

/// A client that sends nothing is taken to speak the default generation
/// once the detection timeout passes: a listening 0.5 client gets its
/// data, a silent 0.7 client its state.
pub async fn a_silent_client_gets_the_default_generation<B: Backend>() {
    for default in [Generation::V0_5, Generation::V0_7] {
        let detect = Generations::Detect {
            default,
            timeout: Duration::from_millis(100),
        };
        let server = detecting_server::<B>(detect).await;
        if default == Generation::V0_5 {
            let client = B::connect(&server.url(), ClientOptions::default())
                .await
                .unwrap();
            let mut changes = client.remote_changes();
            let data = within::<B, _>(HANG_GUARD, "0.5 data", changes.changed())
                .await
                .unwrap();
            assert_eq!(*data, json!({"gen": "0.5"}));
        } else {
            let client = B::connect_v07(&server.url(), Options::default())
                .await
                .unwrap();
            let (_, state) = within::<B, _>(HANG_GUARD, "0.7 state", client.state_changed(0))
                .await
                .unwrap();
            assert_eq!(*state, json!({"gen": "0.7"}));
        }
        server.close().await;
    }
}

/// A first frame of no generation closes the socket with a protocol
/// error, before any connection exists; the next client is served.
pub async fn a_first_frame_of_no_generation_is_refused<B: Backend>() {
    let server = detecting_server::<B>(Generations::detect(Generation::V0_5)).await;
    for (frame, code) in [
        (Message::text("hello"), 1002u16),
        (Message::text(" {\"type\":\"DATA\"}"), 1002),
        (Message::text("{\"type\":\"notify\"}"), 1002),
        (Message::binary(vec![1u8, 2, 3]), 1003),
    ] {
        let mut raw = raw_connect::<B>(&server).await;
        raw.send(frame.clone()).await.unwrap();
        let answer = within::<B, _>(HANG_GUARD, "close frame", raw.next()).await;
        match answer {
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), code, "{frame:?}")
            }
            other => panic!("{frame:?}: expected a close frame, got {other:?}"),
        }
    }
    assert_eq!(server.connection_count(), 0);
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(1))).await;
    assert_eq!(echoed.unwrap(), json!(1));
    server.close().await;
}

/// One live state for every generation: a [`juggler_driver::Group`] with a 0.5, a 0.6
/// and a 0.7 member on one detecting path shows each change to all, as
/// local data to 0.5 and as state to 0.6/0.7.
pub async fn a_group_shows_one_state_to_every_generation<B: Backend>() {
    let group = juggler_driver::Group::new(json!({"counter": 0}));
    let v07_group = group.clone();
    let handlers = Handlers::new()
        .on_connection(move |connection| v07_group.join(&connection).unwrap())
        .on_request(|_, _, data| async move { Ok(data) });
    let options = super::detecting_options(handlers);
    let v05_group = group.clone();
    let kept = std::sync::Mutex::new(Vec::new());
    let server = B::listen(options, move |connection| {
        v05_group.join(&connection).unwrap();
        kept.lock().unwrap().push(connection);
    })
    .await
    .unwrap();

    let v05 = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let mut v05_changes = v05.remote_changes();
    v05.send(&json!("hello")).await.unwrap();
    let mut clients = Vec::new();
    for generation in [Generation::V0_6, Generation::V0_7] {
        let kept = Options::default()
            .generation(generation)
            .notifications(Notifications::Queue);
        let client = B::connect_v07(&server.url(), kept).await.unwrap();
        // The first request reveals the generation; the server joins it.
        within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(1)))
            .await
            .unwrap();
        clients.push(client);
    }
    for counter in 1..=3 {
        let state = json!({"counter": counter, "text": "é"});
        group.set_state(state.clone());
        loop {
            let data = within::<B, _>(HANG_GUARD, "0.5 data", v05_changes.changed())
                .await
                .unwrap();
            if *data == state {
                break;
            }
        }
        for client in &clients {
            let mut seen = 0;
            while *client.state() != state {
                (seen, _) = within::<B, _>(HANG_GUARD, "0.6/0.7 state", client.state_changed(seen))
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(group.member_count(), 3);
    assert_eq!(group.v07_members().len(), 2);
    assert_eq!(
        within::<B, _>(HANG_GUARD, "notify", group.notify("tick", &json!(1))).await,
        2
    );
    for client in &clients {
        let notification = within::<B, _>(HANG_GUARD, "notification", client.receive())
            .await
            .unwrap();
        assert_eq!(
            (notification.name.as_str(), notification.data),
            ("tick", json!(1))
        );
    }
    server.close().await;
}
