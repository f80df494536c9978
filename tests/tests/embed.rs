//! Juggler inside the application's own server, end to end: juggler-tokio's
//! `embed_axum` example (an axum app with a bearer-token layer beside its
//! REST routes, on one port), and juggler-smol's endpoint in a hyper
//! server of the application's.

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
    )
    .unwrap();
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

/// The same on smol: Juggler's endpoint inside a hyper server of the
/// application's (its own stream type, so the upgraded stream goes through
/// the adapter rather than our own server's path), behind its own check.
#[test]
fn a_smol_endpoint_in_the_applications_own_hyper_server() {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::Bytes;

    smol::block_on(async {
        let endpoint =
            juggler_smol::JugglerEndpoint::new(smol_echo, &juggler_smol::ServerOptions::default())
                .expect("the default options set no HTTP side");
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepting = {
            let endpoint = endpoint.clone();
            smol::spawn(async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        return;
                    };
                    let endpoint = endpoint.clone();
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let endpoint = endpoint.clone();
                            async move {
                                let authorized = request.headers().get(header::AUTHORIZATION)
                                    == Some(&HeaderValue::from_static("Bearer t0ken"));
                                let response = match (request.uri().path(), authorized) {
                                    ("/api/health", _) => {
                                        hyper::Response::new(Full::new(Bytes::from("ok")))
                                    }
                                    ("/ws", true) => endpoint.handle(request, Some(peer)).await,
                                    _ => {
                                        let mut response = hyper::Response::new(Full::default());
                                        *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
                                        response
                                    }
                                };
                                Ok::<_, Infallible>(response)
                            }
                        },
                    );
                    smol::spawn(async move {
                        let io = smol_hyper::rt::FuturesIo::new(stream);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .with_upgrades()
                            .await;
                    })
                    .detach();
                }
            })
        };

        assert_eq!(get(addr, "/api/health").await.status, 200);
        let url = format!("ws://{addr}/ws");
        let refused = juggler_smol::connect(&url).await;
        assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");
        let options = ClientOptions::default().header(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0ken"),
        );
        let client = juggler_smol::connect_with(&url, options).await.unwrap();
        for n in 0..100 {
            client
                .send(&json!({"n": n, "pad": "x".repeat(n * 100)}))
                .await
                .unwrap();
        }
        for n in 0..100 {
            let echo = client.receive().await.unwrap();
            assert_eq!(echo, json!({"n": n, "pad": "x".repeat(n * 100)}));
        }
        assert_eq!(endpoint.connection_count(), 1);
        drop(accepting);
        let summary = endpoint.close().await;
        assert_eq!(summary.closed, 1);
    });
}

/// Echoes on smol (the axum example's `echo` spawns on tokio).
fn smol_echo(connection: juggler_smol::Connection) {
    smol::spawn(async move {
        while let Ok(message) = connection.receive().await {
            if connection.send(&message).await.is_err() {
                break;
            }
        }
    })
    .detach();
}

/// The embedding cookbook's auth: juggler-tokio's `BasicAuthLayer` on the
/// app's routes, and an axum layer of the app's that resolves the user
/// into the request's extensions, which the admission hook reads into the
/// connection's context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_and_an_axum_layers_user_reach_the_connection() {
    use axum::middleware::{self, Next};
    use juggler_tokio::{Admission, BasicAuthLayer, Htpasswd, JugglerEndpoint, ServerOptions};

    #[derive(Debug, Clone, PartialEq)]
    struct User(String);

    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let options = ServerOptions::default().admission(|request| {
        let user = request.extensions.get::<User>().cloned();
        Box::pin(async move {
            match user {
                Some(user) => Admission::admit_with(user),
                None => Admission::refuse(juggler_driver::http::StatusCode::FORBIDDEN, "who?"),
            }
        })
    });
    let endpoint = JugglerEndpoint::new(
        move |connection| {
            let _ = accepted_tx.send(connection);
        },
        &options,
    )
    .unwrap();
    // `password`, as Apache's htpasswd hashes it.
    let htpasswd = Htpasswd::parse("alice:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00").unwrap();
    let app = axum::Router::new()
        .route("/ws", endpoint.handler())
        .layer(middleware::from_fn(
            |mut request: axum::extract::Request, next: Next| async move {
                request.extensions_mut().insert(User("alice".into()));
                next.run(request).await
            },
        ))
        .layer(BasicAuthLayer::new(htpasswd));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });

    let url = format!("ws://{addr}/ws");
    let refused = juggler_tokio::connect(&url).await;
    assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");
    let wrong = ClientOptions::default()
        .basic_auth("alice", "Password")
        .unwrap();
    let refused = juggler_tokio::connect_with(&url, wrong).await;
    assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");

    let right = ClientOptions::default()
        .basic_auth("alice", "password")
        .unwrap();
    let client = tokio::time::timeout(HANG_GUARD, juggler_tokio::connect_with(&url, right))
        .await
        .expect("connecting")
        .unwrap();
    let connection = tokio::time::timeout(HANG_GUARD, accepted.recv())
        .await
        .expect("accepted")
        .unwrap();
    assert_eq!(connection.context::<User>(), Some(&User("alice".into())));
    client.close();
    server.abort();
}

/// What only juggler-rs's own server applies is refused by an embedded
/// endpoint, by name, not silently ignored.
#[tokio::test]
async fn an_endpoint_refuses_options_it_cannot_apply() {
    use juggler_tokio::{JugglerEndpoint, ServerOptions};

    for (options, named) in [
        (
            ServerOptions::default().htpasswd_file("users.htpasswd"),
            "htpasswd_file",
        ),
        (ServerOptions::default().static_dir("www"), "static_dir"),
        (ServerOptions::default().ws_path("/juggler"), "ws_path"),
    ] {
        match JugglerEndpoint::new(drop, &options) {
            Err(Error::Config(text)) => assert!(text.contains(named), "{text}"),
            other => panic!("{named}: {other:?}"),
        }
        match juggler_smol::JugglerEndpoint::new(drop, &options) {
            Err(Error::Config(text)) => assert!(text.contains(named), "{text}"),
            other => panic!("{named}: {other:?}"),
        }
    }
    assert!(JugglerEndpoint::new(drop, &ServerOptions::default().no_cache(false)).is_ok());
}

/// juggler-smol's `listen_with_routes`: the application's hyper service
/// answers its routes, a 404 of its falls through to the static folder,
/// and the WebSocket path stays Juggler's.
#[test]
fn smol_routes_beside_the_websocket_and_the_static_folder() {
    use std::convert::Infallible;

    use http_body_util::Full;
    use hyper::body::Bytes;
    use juggler_tests::cases::web::TempDir;

    smol::block_on(async {
        let www = TempDir::new("smol-routes");
        std::fs::write(www.0.join("page.txt"), "from the folder").unwrap();
        let routes = hyper::service::service_fn(
            |request: hyper::Request<hyper::body::Incoming>| async move {
                let mut response = hyper::Response::new(Full::new(Bytes::from("healthy")));
                if request.uri().path() != "/health" {
                    *response.status_mut() = hyper::StatusCode::NOT_FOUND;
                }
                Ok::<_, Infallible>(response)
            },
        );
        let options = juggler_smol::ServerOptions::default().static_dir(&www.0);
        let server = juggler_smol::listen_with_routes("127.0.0.1", 0, smol_echo, options, routes)
            .await
            .unwrap();
        let addr = server.local_addr();

        routes_and_folder_answer(addr).await;

        let client = juggler_smol::connect(server.url()).await.unwrap();
        client.send(&json!("over the socket")).await.unwrap();
        assert_eq!(client.receive().await.unwrap(), json!("over the socket"));
        server.close().await;
    });
}

/// juggler-tokio's `listen_with_routes`: the application's axum routes
/// answer theirs, a request none of them matches falls through to the
/// static folder, and the WebSocket path stays Juggler's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_routes_beside_the_websocket_and_the_static_folder() {
    use juggler_tests::cases::web::TempDir;

    let www = TempDir::new("tokio-routes");
    std::fs::write(www.0.join("page.txt"), "from the folder").unwrap();
    let routes = axum::Router::new().route("/health", axum::routing::get(|| async { "healthy" }));
    let options = juggler_tokio::ServerOptions::default().static_dir(&www.0);
    let server =
        juggler_tokio::listen_with_routes("127.0.0.1", 0, embed_axum::echo, options, routes)
            .await
            .unwrap();
    let addr = server.local_addr();

    routes_and_folder_answer(addr).await;

    let client = juggler_tokio::connect(server.url()).await.unwrap();
    client.send(&json!("over the socket")).await.unwrap();
    assert_eq!(client.receive().await.unwrap(), json!("over the socket"));
    server.close().await;
}

/// What both runtimes' `listen_with_routes` tests ask of the server at
/// `addr`: `/health` is the routes', `/page.txt` the folder's, and what
/// neither has is 404.
async fn routes_and_folder_answer(addr: SocketAddr) {
    let health = get(addr, "/health").await;
    assert_eq!(
        (health.status, health.body.as_slice()),
        (200, &b"healthy"[..])
    );
    let page = get(addr, "/page.txt").await;
    assert_eq!(
        (page.status, page.body.as_slice()),
        (200, &b"from the folder"[..])
    );
    assert_eq!(get(addr, "/missing").await.status, 404);
}
