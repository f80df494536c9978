//! Juggler inside your own hyper server on smol: one port for a route of
//! yours (`/health`) and the WebSocket (`/ws`), every request behind basic
//! auth from an htpasswd file (`require_basic_auth`), and a client that
//! logs in and talks to it. The program ends by itself.
//!
//! ```text
//! cargo run -p juggler-smol --example embed_smol
//! ```
//!
//! `juggler-smol/tests/examples.rs` runs it; docs/guide.md, "Auth, TLS and
//! Origin", explains the parts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use juggler_smol::http::{header, HeaderValue};
use juggler_smol::{
    connect_with, require_basic_auth, ClientOptions, Connection, Error, Htpasswd, JugglerEndpoint,
    ServerOptions,
};
use serde_json::json;

/// The users: `user` with the password `password` (`htpasswd -m`).
const HTPASSWD: &str = "user:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00\n";

/// Every connection echoes the messages it receives.
fn echo(connection: Connection) {
    smol::spawn(async move {
        while let Ok(message) = connection.receive().await {
            if connection.send(&json!({"echo": message})).await.is_err() {
                break;
            }
        }
    })
    .detach();
}

/// The application's own service: basic auth first, then its routes.
async fn answer(
    endpoint: JugglerEndpoint,
    users: Arc<Htpasswd>,
    request: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    if let Some(refusal) = require_basic_auth(&users, request.headers()).await {
        return refusal; // 401 with `WWW-Authenticate: Basic realm=""`
    }
    match request.uri().path() {
        "/ws" => endpoint.handle(request, Some(peer)).await,
        "/health" => Response::new(Full::from("ok\n")),
        _ => {
            let mut response = Response::new(Full::from("not found\n"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

/// Accepts HTTP connections forever, serving each with [`answer`].
async fn serve(
    listener: smol::net::TcpListener,
    endpoint: JugglerEndpoint,
    users: Arc<Htpasswd>,
) -> std::io::Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let (endpoint, users) = (endpoint.clone(), users.clone());
        let service = hyper::service::service_fn(move |request| {
            let (endpoint, users) = (endpoint.clone(), users.clone());
            async move { Ok::<_, Infallible>(answer(endpoint, users, request, peer).await) }
        });
        smol::spawn(async move {
            let io = smol_hyper::rt::FuturesIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .with_upgrades() // the WebSocket needs the upgraded connection
                .await;
        })
        .detach();
    }
}

/// Serves, connects with and without the password, and stops.
pub async fn run() -> Result<(), Error> {
    let users = Arc::new(Htpasswd::parse(HTPASSWD).map_err(Error::Config)?);
    // Options that only juggler-rs's own server applies (static files, TLS,
    // `htpasswd_file`…) are refused here: they are your server's.
    let endpoint = JugglerEndpoint::new(echo, &ServerOptions::default())?;
    let listener = smol::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ws", listener.local_addr()?);
    let server = smol::spawn(serve(listener, endpoint.clone(), users));
    println!("listening on {url}");

    let logged_in = ClientOptions::default().header(
        header::AUTHORIZATION,
        HeaderValue::from_static("Basic dXNlcjpwYXNzd29yZA=="), // user:password
    );
    let client = connect_with(&url, logged_in).await?;
    client.send(&json!("hello")).await?;
    let reply = client.receive().await?;
    println!("reply: {reply}");
    assert_eq!(reply, json!({"echo": "hello"}));

    match connect_with(&url, ClientOptions::default()).await {
        Err(Error::Refused(status)) => println!("without a password: refused with {status}"),
        other => panic!("a client without a password must be refused: {other:?}"),
    }

    client.shutdown().await;
    endpoint.close().await; // closes the endpoint's connections
    drop(server.cancel().await); // stops accepting
    Ok(())
}

#[allow(dead_code)] // juggler-smol/tests/examples.rs includes this file for `run`
fn main() -> Result<(), Error> {
    smol::block_on(run())
}
