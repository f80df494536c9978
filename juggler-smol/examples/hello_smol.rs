//! A Juggler server and client in one program, on smol: the client sets
//! its local data and sends a message; the server answers the message and
//! shares what it has seen.
//!
//! Run with `cargo run --example hello_smol`.

use std::time::Duration;

use juggler_smol::{connect_with, listen, ClientOptions, ServerOptions};
use serde_json::json;

/// The whole program (public for `juggler-smol/tests/examples.rs`).
pub fn main() -> Result<(), juggler_smol::Error> {
    smol::block_on(async {
        let server = listen(
            "127.0.0.1",
            0,
            |connection| {
                // Answer every message with what the client's data is now.
                smol::spawn(async move {
                    while let Ok(message) = connection.receive().await {
                        let reply =
                            json!({"echo": message, "your_data": *connection.remote_data()});
                        let _ = connection.send(&reply).await;
                    }
                })
                .detach();
            },
            ServerOptions::default(),
        )
        .await?;
        println!("server: listening on {}", server.url());

        let client = connect_with(
            server.url(),
            ClientOptions::default().autoflush_delay(Some(Duration::ZERO)),
        )
        .await?;
        client.set_local_data(json!({"user": "bob"}))?;
        client.send(&json!("hello")).await?;
        println!("client: got {}", client.receive().await?);

        client.shutdown().await;
        server.close().await;
        Ok(())
    })
}
