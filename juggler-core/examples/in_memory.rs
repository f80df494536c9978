//! Two juggler-core engines syncing state and messages in memory, on a
//! virtual clock: the protocol with no sockets at all.
//!
//! Run with `cargo run --example in_memory`.

// The clock here is the origin of a virtual one, or a benchmark's stopwatch.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use juggler_core::{AutoflushPolicy, Config, Engine, Event};
use serde_json::json;

/// Carries every frame `from` has to `to`, printing it on the way.
fn carry(label: &str, from: &mut Engine, to: &mut Engine) {
    while let Some(transmit) = from.poll_transmit() {
        println!("{label}: {}", transmit.text);
        to.handle_text(transmit.text.as_str())
            .expect("engines speak the same protocol");
    }
}

fn main() {
    let start = Instant::now();
    let delay = Duration::from_millis(200);
    let mut server = Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(delay)));
    let mut client = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));

    // Three quick changes under a 0.2 s delay: the client will see one.
    for counter in 1..=3 {
        server
            .set_local_data(start, json!({"counter": counter, "clients": ["alice"]}))
            .unwrap();
    }
    client.send_message(&json!({"hello": "server"})).unwrap();
    carry("client -> server", &mut client, &mut server);
    carry("server -> client", &mut server, &mut client);
    println!(
        "before the deadline the client holds {}",
        client.remote_data()
    );

    // A driver sleeps until the deadline; here the clock jumps there.
    let deadline = server.poll_timeout().expect("a flush deadline is open");
    server.handle_timeout(deadline);
    carry("server -> client", &mut server, &mut client);
    println!(
        "after the deadline the client holds {}",
        client.remote_data()
    );

    while let Some(event) = server.poll_event() {
        if let Event::Message(message) = event {
            println!("server received message {message}");
        }
    }
    assert_eq!(
        **client.remote_data(),
        json!({"counter": 3, "clients": ["alice"]})
    );
}
