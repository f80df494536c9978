//! The crypto provider the Cargo features choose, used end to end: a
//! `wss://` round trip on a server from a PEM file and a client that trusts
//! it, both built by juggler-rs.
//!
//! `cargo test -p juggler-tokio --test crypto_provider` runs it on ring;
//! `.ci/run` runs it again with
//! `--no-default-features --features aws-lc-rs`.

use std::time::Duration;

use juggler_tokio::{connect_with, crypto_provider, listen, ClientOptions, ServerOptions};
use serde_json::json;

/// The provider the features choose, by the name its key provider shows.
fn expected_key_provider() -> &'static str {
    if cfg!(feature = "ring") {
        "Ring"
    } else {
        "AwsLcRs"
    }
}

#[tokio::test]
async fn wss_round_trip_on_the_chosen_provider() {
    let provider = crypto_provider().expect("a provider feature is on");
    assert_eq!(
        format!("{:?}", provider.key_provider),
        expected_key_provider()
    );

    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert = certified.cert.pem();
    let pem_file =
        std::env::temp_dir().join(format!("juggler-provider-{}.pem", std::process::id()));
    std::fs::write(
        &pem_file,
        format!("{cert}{}", certified.signing_key.serialize_pem()),
    )
    .unwrap();

    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let server = listen(
        "127.0.0.1",
        0,
        move |connection| {
            let _ = accepted.send(connection);
        },
        ServerOptions::default().pem_file(&pem_file),
    )
    .await
    .unwrap();
    std::fs::remove_file(&pem_file).unwrap();
    assert!(server.url().starts_with("wss://"), "{}", server.url());

    let options = ClientOptions::default().trust_pem(cert.as_bytes()).unwrap();
    let hang_guard = Duration::from_secs(60);
    let client = tokio::time::timeout(hang_guard, connect_with(server.url(), options))
        .await
        .expect("no hang")
        .unwrap();
    let server_side = incoming.recv().await.unwrap();
    client.send(&json!({"over": "tls"})).await.unwrap();
    let received = tokio::time::timeout(hang_guard, server_side.receive())
        .await
        .expect("no hang")
        .unwrap();
    assert_eq!(received, json!({"over": "tls"}));
    server.close().await;
}
