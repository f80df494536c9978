//! juggler-tokio's `embed_axum` example, end to end: Juggler mounted in an
//! axum app of its own, behind the app's bearer-token layer, beside its
//! REST routes, on one port.

use std::net::SocketAddr;
use std::time::Duration;

use juggler_driver::http::{header, HeaderValue};
use juggler_driver::{ClientOptions, Error};
use juggler_tests::support::http::get;
use serde_json::json;

#[path = "../../juggler-tokio/examples/embed_axum.rs"]
mod embed_axum;

const HANG_GUARD: Duration = juggler_tests::support::backend::HANG_GUARD;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embed_example_serves_its_routes_and_juggler_behind_its_auth() {
    let (peers_tx, mut peers) = tokio::sync::mpsc::unbounded_channel();
    let endpoint = juggler_tokio::JugglerEndpoint::new(
        move |connection| {
            let _ = peers_tx.send(connection.peer_addr());
            embed_axum::echo(connection)
        },
        &juggler_tokio::ServerOptions::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = embed_axum::app(&endpoint, embed_axum::TOKEN);
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });

    let health = get(addr, "/api/health").await;
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(get(addr, "/api/whoami").await.status, 401);

    let url = format!("ws://{addr}/ws");
    let refused = juggler_tokio::connect(&url).await;
    assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");
    assert_eq!(endpoint.connection_count(), 0);

    let bearer = HeaderValue::from_str(&format!("Bearer {}", embed_axum::TOKEN)).unwrap();
    let options = ClientOptions::default().header(header::AUTHORIZATION, bearer);
    let client = tokio::time::timeout(HANG_GUARD, juggler_tokio::connect_with(&url, options))
        .await
        .expect("connecting")
        .unwrap();
    client.send(&json!({"hello": "axum"})).await.unwrap();
    let echo = tokio::time::timeout(HANG_GUARD, client.receive())
        .await
        .expect("the echo")
        .unwrap();
    assert_eq!(echo, json!({"hello": "axum"}));
    assert_eq!(endpoint.connection_count(), 1);
    // The server side knows its peer, through axum's ConnectInfo.
    let peer = peers
        .recv()
        .await
        .expect("accepted")
        .expect("a peer address");
    assert!(peer.ip().is_loopback(), "{peer}");
    server.abort();
    let summary = tokio::time::timeout(HANG_GUARD, endpoint.close())
        .await
        .expect("closing");
    assert_eq!(summary.closed, 1);
    assert_eq!(endpoint.connection_count(), 0);
}
