//! `ServerOptions::default()` serves every generation, options set once
//! reach every generation, and an option no generation of the server
//! applies is refused at `listen`.

use async_tungstenite::tungstenite::Message;
use juggler_driver::v07::{Notifications, Options};
use juggler_driver::{
    ClientOptions, ConnectionOptions, Error, Generation, Generations, ServerOptions,
};
use serde_json::json;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};
use crate::support::bench::raw_connect;

use super::echo_handlers;
use super::hostile::close_code;

/// With nothing set about generations but 0.6/0.7 handlers, one path
/// serves a 0.5 client and 0.6 and 0.7 clients (each revealed by its
/// first frame).
pub async fn default_options_serve_every_generation<B: Backend>() {
    let options = ServerOptions::default().v07_handlers(echo_handlers());
    let kept = std::sync::Mutex::new(Vec::new());
    let server = B::listen(options, move |connection| {
        let _ = connection.set_local_data(json!("0.5 data"));
        kept.lock().unwrap().push(connection);
    })
    .await
    .expect("listen");

    let v05 = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let mut changes = v05.remote_changes();
    v05.send(&json!("first frame")).await.unwrap();
    let data = within::<B, _>(HANG_GUARD, "0.5 data", async {
        loop {
            let data = changes.changed().await.unwrap();
            if *data != json!(null) {
                return data;
            }
        }
    })
    .await;
    assert_eq!(*data, json!("0.5 data"));

    for generation in [Generation::V0_6, Generation::V0_7] {
        let client = B::connect_v07(&server.url(), Options::default().generation(generation))
            .await
            .unwrap();
        let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(7))).await;
        assert_eq!(echoed.unwrap(), json!(7), "{generation}");
        client.async_close().await;
    }
    v05.close();
    server.close().await;
}

/// `ServerOptions::max_message_size` bounds the WebSocket messages of
/// every generation: a larger one closes its connection with 1009,
/// whichever generation its first frame reveals.
pub async fn a_size_limit_set_once_bounds_every_generation<B: Backend>() {
    let options = ServerOptions::default()
        .v07_handlers(echo_handlers())
        .max_message_size(1000);
    let server = B::listen(options, drop).await.expect("listen");
    let padding = "x".repeat(2000);
    let frames = [
        format!(r#"{{"type":"MESSAGE","payload":"{padding}"}}"#),
        format!(r#"{{"type":"request","id":1,"name":"echo","data":"{padding}"}}"#),
        format!(r#"0{{"type":"request","id":1,"name":"echo","data":"{padding}"}}"#),
    ];
    for frame in frames {
        let mut raw = raw_connect::<B>(&server).await;
        let _ = raw.send(Message::text(frame.clone())).await;
        assert_eq!(
            close_code::<B>(&mut raw).await,
            Some(1009),
            "{}",
            &frame[..20]
        );
    }
    server.close().await;
}

/// A limit set for 0.5 alone holds on a detecting server, whose socket
/// reads up to the larger limit of the generations: a detected 0.5
/// connection's frame over its own limit closes it with 1009, while a
/// 0.7 connection on the same server sends as large a request.
pub async fn a_generations_own_limit_holds_under_detection<B: Backend>() {
    let options = ServerOptions::default()
        .v07_handlers(echo_handlers())
        .connection(ConnectionOptions::default().max_message_size(1000));
    // A 0.5 connection closes with its last handle: the server keeps one.
    let kept = std::sync::Mutex::new(Vec::new());
    let server = B::listen(options, move |connection| {
        kept.lock().unwrap().push(connection)
    })
    .await
    .expect("listen");
    let padding = "x".repeat(2000);

    let mut v05 = raw_connect::<B>(&server).await;
    let _ = v05
        .send(Message::text(r#"{"type":"MESSAGE","payload":1}"#))
        .await;
    let large = format!(r#"{{"type":"MESSAGE","payload":"{padding}"}}"#);
    let _ = v05.send(Message::text(large)).await;
    assert_eq!(close_code::<B>(&mut v05).await, Some(1009));

    let v07 = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let echoed = within::<B, _>(HANG_GUARD, "echo", v07.send("echo", json!(padding))).await;
    assert_eq!(echoed.unwrap(), json!(padding));
    v07.async_close().await;
    server.close().await;
}

/// An option that no generation of the server applies fails `listen`
/// with a configuration error naming it; the same options where they
/// apply, and the options set for every generation, are accepted.
pub async fn options_no_generation_applies_are_refused<B: Backend>() {
    let only = |generation| ServerOptions::default().generations(Generations::Only(generation));
    let refused = [
        (
            only(Generation::V0_7).connection(ConnectionOptions::default().max_receive_queue(5)),
            "connection.max_receive_queue",
        ),
        (
            only(Generation::V0_5).v07(Options::default().parallel_requests(true)),
            "v07.parallel_requests",
        ),
        (
            only(Generation::V0_5).v07_handlers(echo_handlers()),
            "v07_handlers",
        ),
        // Set for 0.6/0.7 alone, on a server of 0.5 alone.
        (
            only(Generation::V0_5).v07(Options::default().send_queue_size(4)),
            "v07.send_queue_size",
        ),
        (
            ServerOptions::default().v07(Options::default().notifications(Notifications::Queue)),
            "v07.notifications",
        ),
        // By default, a server without 0.6/0.7 handlers speaks 0.5 alone.
        (
            ServerOptions::default().v07(Options::default().parallel_requests(true)),
            "v07.parallel_requests",
        ),
        // Set for 0.5 alone, not through the setter for every generation.
        (
            only(Generation::V0_7).connection(ConnectionOptions::default().autoflush_delay(None)),
            "connection.autoflush",
        ),
        // Every connection's close timeout is the server's shutdown timeout.
        (
            ServerOptions::default().connection(
                ConnectionOptions::default().close_timeout(std::time::Duration::from_secs(5)),
            ),
            "connection.close_timeout",
        ),
    ];
    for (options, name) in refused {
        match B::listen(options, drop).await {
            Err(Error::Config(text)) => assert!(text.contains(name), "{name}: {text}"),
            Err(other) => panic!("{name}: expected a configuration error, got {other}"),
            Ok(server) => {
                server.close().await;
                panic!("{name}: accepted")
            }
        }
    }
    let every_generation = |options: ServerOptions| {
        options
            .autoflush_delay(None)
            .keep_alive(None)
            .max_message_size(1 << 16)
            .max_send_queue(16)
    };
    let accepted = [
        every_generation(only(Generation::V0_5)),
        every_generation(only(Generation::V0_7)),
        ServerOptions::default()
            .connection(ConnectionOptions::default().max_receive_queue(5))
            .v07(Options::default().parallel_requests(true))
            .v07_handlers(echo_handlers()),
    ];
    for options in accepted {
        let server = B::listen(options.clone(), drop)
            .await
            .unwrap_or_else(|err| panic!("{options:?}: {err}"));
        server.close().await;
    }
}
