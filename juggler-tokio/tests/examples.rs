//! The examples that end by themselves, run as tests: each asserts what it
//! shows (a refused client is refused, the state arrives), so an example
//! that stops working fails here. `embed_axum` serves until stopped and is
//! checked by `tests/tests/embed.rs` instead.
//!
//! `cargo test -p juggler-tokio --test examples`

use std::future::Future;
use std::time::Duration;

#[path = "../examples/admission_tls.rs"]
mod admission_tls;
#[path = "../examples/hat_gui_backend.rs"]
mod hat_gui_backend;
#[path = "../examples/hello.rs"]
mod hello;
#[path = "../examples/reconnect.rs"]
mod reconnect;

/// A hang guard only: the examples take about a second each.
async fn within_a_minute<T>(example: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), example)
        .await
        .expect("the example did not end within 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hat_gui_backend_runs() {
    within_a_minute(hat_gui_backend::run()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_runs() {
    within_a_minute(reconnect::run()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_tls_runs() {
    within_a_minute(admission_tls::run()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_runs() {
    // `hello::main` starts a runtime of its own: run it off this one's threads.
    let hello = tokio::task::spawn_blocking(hello::main);
    within_a_minute(hello).await.unwrap().unwrap();
}
