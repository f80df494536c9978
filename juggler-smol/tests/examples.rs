//! The smol examples, which end by themselves, run as tests: each asserts
//! or checks what it shows (the logged-in client gets its echo, the other
//! is refused), so an example that stops working fails here.
//!
//! `cargo test -p juggler-smol --test examples`

use std::future::Future;
use std::time::Duration;

#[path = "../examples/embed_smol.rs"]
mod embed_smol;
#[path = "../examples/hello_smol.rs"]
mod hello_smol;

/// Runs `example` to its end; a hang guard only, at 60 s.
fn within_a_minute<T>(example: impl Future<Output = T>) -> T {
    smol::block_on(async {
        let example = async { Some(example.await) };
        let hang_guard = async {
            smol::Timer::after(Duration::from_secs(60)).await;
            None
        };
        smol::future::or(example, hang_guard).await
    })
    .expect("the example did not end within 60 s")
}

#[test]
fn embed_smol_runs() {
    within_a_minute(embed_smol::run()).unwrap();
}

#[test]
fn hello_smol_runs() {
    hello_smol::main().unwrap();
}
