//! A client that survives its server's restart: a `ReconnectingClient`
//! (0.5 generation) sees its server go away and come back on the same
//! port, re-sends its local data to the new server, and keeps the last
//! remote data across the gap. The program ends by itself.
//!
//! ```text
//! cargo run -p juggler-tokio --example reconnect
//! ```
//!
//! `juggler-tokio/tests/examples.rs` runs it; docs/operations.md has the
//! reconnecting client's rules.

use std::time::Duration;

use juggler_tokio::{
    listen, reconnecting, Backoff, Connection, ReconnectEvent, ReconnectOptions, Server,
    ServerOptions, WhileDisconnected,
};
use serde_json::json;

/// A server that shows each client which `run` of the server it is, and
/// keeps each connection until the client leaves.
async fn server(port: u16, run: u32) -> Result<Server, juggler_tokio::Error> {
    listen(
        "127.0.0.1",
        port,
        move |connection: Connection| {
            let _ = connection.set_local_data(json!({"server_run": run}));
            // A connection closes when its last handle drops: keep one.
            tokio::spawn(async move { connection.wait_closed().await });
        },
        ServerOptions::default().autoflush_delay(Some(Duration::ZERO)),
    )
    .await
}

/// Restarts a server under a reconnecting client and shows what it sees.
pub async fn run() -> Result<(), juggler_tokio::Error> {
    let first = server(0, 1).await?;
    let port = first.local_addr().port();

    let client = reconnecting(
        [first.url().to_owned()],
        ReconnectOptions::default()
            .backoff(Backoff::default().max_delay(Duration::from_secs(1)))
            // `send` and `flush_local_data` wait up to 5 s for a connection.
            .while_disconnected(WhileDisconnected::Wait(Duration::from_secs(5))),
    )?;
    client.set_local_data(json!({"user": "alice"}))?; // kept across reconnects
    let mut events = client.events();
    let mut remote = client.remote_changes();

    let mut restarted = None;
    while let Some(event) = events.next().await {
        match event {
            ReconnectEvent::Connected {
                address,
                generation,
            } => {
                println!("connected to {address} ({generation})");
                // The server's data for this connection.
                let data = loop {
                    let data = remote.changed().await?;
                    if !data.is_null() {
                        break data;
                    }
                };
                println!("remote data: {data}");
                if restarted.is_some() {
                    break;
                }
                // Take the server away; the client keeps `data` meanwhile.
                first.close().await;
            }
            ReconnectEvent::Disconnected { reason, .. } => {
                println!(
                    "disconnected ({reason:?}); remote data still {}",
                    client.remote_data()
                );
                if restarted.is_none() {
                    restarted = Some(server(port, 2).await?);
                }
            }
            ReconnectEvent::ConnectFailed { error, .. } => println!("attempt failed: {error}"),
            other => println!("{other:?}"),
        }
    }
    assert_eq!(*client.remote_data(), json!({"server_run": 2}));

    client.shutdown().await;
    if let Some(server) = restarted {
        server.close().await;
    }
    Ok(())
}

#[allow(dead_code)] // juggler-tokio/tests/examples.rs includes this file for `run`
#[tokio::main]
async fn main() -> Result<(), juggler_tokio::Error> {
    run().await
}
