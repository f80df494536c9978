//! A Juggler server and client in one program: the client sets its local
//! data and sends a message; the server sees the change, answers the
//! message and shares a counter back.
//!
//! Run with `cargo run --example hello`.

use std::time::Duration;

use juggler_tokio::{connect_with, listen, ClientOptions, ServerOptions};
use serde_json::json;

/// The whole program (public for `juggler-tokio/tests/examples.rs`).
#[tokio::main]
pub async fn main() -> Result<(), juggler_tokio::Error> {
    // The server: answer every message and count the data changes it sees.
    let server = listen(
        "127.0.0.1",
        0,
        |connection| {
            tokio::spawn(async move {
                let mut changes = connection.remote_changes();
                let mut seen = 0;
                loop {
                    tokio::select! {
                        message = connection.receive() => {
                            let Ok(message) = message else { break };
                            let _ = connection.send(&json!({"echo": message})).await;
                        }
                        change = changes.changed() => {
                            let Ok(data) = change else { break };
                            seen += 1;
                            println!("server: client data is now {data}");
                            let _ = connection.set_local_data(json!({"changes_seen": seen}));
                        }
                    }
                }
            });
        },
        ServerOptions::default(),
    )
    .await?;
    println!("server: listening on {}", server.url());

    // The client: immediate autoflush, so every set goes out at once.
    let client = connect_with(
        server.url(),
        ClientOptions::default().autoflush_delay(Some(Duration::ZERO)),
    )
    .await?;
    let mut server_data = client.remote_changes();
    client.set_local_data(json!({"user": "alice", "theme": "dark"}))?;
    client.send(&json!("hello")).await?;
    println!("client: got {}", client.receive().await?);
    // The server's reply arrives after its 0.2 s autoflush delay.
    println!(
        "client: server data is now {}",
        server_data.changed().await?
    );

    client.shutdown().await;
    server.close().await;
    Ok(())
}
