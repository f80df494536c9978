//! A `wss://` server that admits only clients with a session token, and
//! clients of it: one admitted, one refused. The TLS certificate is a
//! self-signed one made at run time (rcgen), which the clients are told to
//! trust. The program ends by itself.
//!
//! ```text
//! cargo run -p juggler-tokio --example admission_tls
//! ```
//!
//! `juggler-tokio/tests/examples.rs` runs it; docs/guide.md, "Auth, TLS and
//! Origin", explains the parts.

use juggler_tokio::http::{header, HeaderValue, StatusCode};
use juggler_tokio::{
    connect_with, listen, Admission, ClientOptions, Connection, Error, ServerOptions,
};
use serde_json::json;

/// Who a connection belongs to: the admission hook's context.
struct User(String);

/// The session store of this example: one token, one user.
async fn lookup(session: Option<String>) -> Option<User> {
    (session.as_deref() == Some("s3cret")).then(|| User("alice".into()))
}

/// Runs the server and the two clients.
pub async fn run() -> Result<(), Error> {
    // A certificate for 127.0.0.1, and one PEM file with it and its key.
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
        .map_err(|err| Error::Tls(err.to_string()))?;
    let certificate = certified.cert.pem();
    let pem_file =
        std::env::temp_dir().join(format!("juggler-admission-tls-{}.pem", std::process::id()));
    std::fs::write(
        &pem_file,
        format!("{certificate}{}", certified.signing_key.serialize_pem()),
    )?;

    let options = ServerOptions::default()
        .pem_file(&pem_file) // HTTPS and WSS only
        .admission(|request| {
            // Runs after the origin and connection-cap checks, before the 101.
            let session = request.cookie("session");
            Box::pin(async move {
                match lookup(session).await {
                    Some(user) => Admission::admit_with(user),
                    None => Admission::refuse(StatusCode::UNAUTHORIZED, "log in first\n"),
                }
            })
        });
    let server = listen(
        "127.0.0.1",
        0,
        |connection: Connection| {
            let name = connection
                .context::<User>()
                .map_or("nobody".to_owned(), |user| user.0.clone());
            let _ = connection.set_local_data(json!({"hello": name}));
            tokio::spawn(async move { connection.wait_closed().await });
        },
        options,
    )
    .await;
    std::fs::remove_file(&pem_file)?; // read once, at listen
    let server = server?;
    println!("listening on {}", server.url()); // wss://127.0.0.1:…/ws

    // Trust the self-signed certificate, and present the session cookie.
    let trusting = ClientOptions::default().trust_pem(certificate.as_bytes())?;
    let admitted = connect_with(
        server.url(),
        trusting
            .clone()
            .header(header::COOKIE, HeaderValue::from_static("session=s3cret")),
    )
    .await?;
    let greeting = admitted.remote_changes().changed().await?;
    println!("admitted: {greeting}");
    assert_eq!(*greeting, json!({"hello": "alice"}));

    match connect_with(server.url(), trusting).await {
        Err(Error::Refused(status)) => println!("without a session: refused with {status}"),
        other => panic!("a client without a session must be refused: {other:?}"),
    }

    admitted.shutdown().await;
    server.close().await;
    Ok(())
}

#[allow(dead_code)] // juggler-tokio/tests/examples.rs includes this file for `run`
#[tokio::main]
async fn main() -> Result<(), Error> {
    run().await
}
