//! Juggler inside your own axum app: one port for your REST API and the
//! WebSocket, and your own layers on both. Here a bearer-token check
//! guards `/api/whoami` and the WebSocket at `/ws`, while `/api/health`
//! stays open. Connections echo what they receive.
//!
//! ```text
//! cargo run -p juggler-tokio --example embed_axum
//! curl http://127.0.0.1:<port>/api/health                         # ok
//! curl -H 'Authorization: Bearer t0ken' http://127.0.0.1:<port>/api/whoami
//! ```
//!
//! `tests/tests/embed.rs` builds this same app and checks it end to end.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use juggler_tokio::{Connection, JugglerEndpoint, ServerOptions};

/// The token this example's clients must present.
pub const TOKEN: &str = "t0ken";

/// Every connection echoes the messages it receives.
pub fn echo(connection: Connection) {
    tokio::spawn(async move {
        while let Ok(message) = connection.receive().await {
            if connection.send(&message).await.is_err() {
                break;
            }
        }
    });
}

/// The app: a public health route, and behind the bearer check, an API
/// route and the Juggler endpoint.
pub fn app(endpoint: &JugglerEndpoint, token: &'static str) -> Router {
    let protected = Router::new()
        .route("/api/whoami", get(|| async { "the token holder" }))
        .route("/ws", endpoint.handler())
        .route_layer(middleware::from_fn(move |request, next| {
            require_bearer(token, request, next)
        }));
    Router::new()
        .route("/api/health", get(|| async { "ok" }))
        .merge(protected)
}

async fn require_bearer(token: &'static str, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if presented == token => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required\n",
        )
            .into_response(),
    }
}

#[allow(dead_code)] // tests/tests/embed.rs includes this file for `app`
#[tokio::main]
async fn main() -> std::io::Result<()> {
    let endpoint = JugglerEndpoint::new(echo, &ServerOptions::default())
        .expect("the default options set no HTTP side");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!(
        "listening on http://{}: /api/health, and with `Authorization: Bearer {TOKEN}` /api/whoami and ws:///ws",
        listener.local_addr()?
    );
    let app = app(&endpoint, TOKEN);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
