//! Server features beyond the protocol: TLS, static files, the index
//! redirect, and what the WebSocket path answers to plain HTTP.

use std::path::PathBuf;

use juggler_driver::{ClientOptions, ServerOptions};
use serde_json::json;

use crate::support::backend::{listen, within, Backend, TestServer, HANG_GUARD};
use crate::support::http::get;

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `juggler-<name>-<pid>-<n>`.
    pub fn new(name: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("juggler-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (PEM with chain
/// and key for the server, PEM of the certificate for the client).
pub fn self_signed_pem() -> (String, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("generate a certificate");
    let cert = certified.cert.pem();
    (
        format!("{cert}{}", certified.signing_key.serialize_pem()),
        cert,
    )
}

/// A `wss://` round trip against a server started with a generated
/// self-signed PEM file.
pub async fn tls_round_trip<B: Backend>() {
    let dir = TempDir::new("tls");
    let (server_pem, cert_pem) = self_signed_pem();
    let pem_file = dir.0.join("server.pem");
    std::fs::write(&pem_file, server_pem).unwrap();
    let (server, mut incoming) = listen::<B>(ServerOptions::default().pem_file(&pem_file)).await;
    assert!(server.url().starts_with("wss://"), "{}", server.url());

    // Without trusting the certificate, the handshake fails.
    assert!(B::connect(&server.url(), ClientOptions::default())
        .await
        .is_err());

    let options = ClientOptions::default()
        .trust_pem(cert_pem.as_bytes())
        .unwrap();
    let client = within::<B, _>(
        HANG_GUARD,
        "wss connect",
        B::connect(&server.url(), options),
    )
    .await
    .unwrap();
    let server_side = incoming.next().await;
    client.send(&json!({"over": "tls"})).await.unwrap();
    assert_eq!(server_side.receive().await.unwrap(), json!({"over": "tls"}));
    server_side.send(&json!("back")).await.unwrap();
    assert_eq!(client.receive().await.unwrap(), json!("back"));
    // Plain HTTP to a TLS server gets no answer but a closed socket.
    server.close().await;
}

/// Files under `static_dir` are served; `GET /` redirects to `index_path`;
/// `..`, `%2e%2e` and symlinks never reach a file outside.
pub async fn static_files_and_index_redirect<B: Backend>() {
    let base = TempDir::new("static");
    let root = base.0.join("www");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("index.html"), "<h1>index</h1>").unwrap();
    std::fs::write(root.join("sub/app.js"), "console.log(1)").unwrap();
    std::fs::write(base.0.join("secret.txt"), "SECRET").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(base.0.join("secret.txt"), root.join("link.txt")).unwrap();

    let (server, _incoming) = listen::<B>(ServerOptions::default().static_dir(&root)).await;
    let addr = server.local_addr();

    let index = get(addr, "/index.html").await;
    assert_eq!(index.status, 200);
    assert_eq!(index.body, b"<h1>index</h1>");
    assert!(index
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    let script = get(addr, "/sub/app.js").await;
    assert_eq!(
        (script.status, script.body.as_slice()),
        (200, &b"console.log(1)"[..])
    );

    let redirect = get(addr, "/").await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/index.html"));

    for escape in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/sub/../../secret.txt",
        "/..%2fsecret.txt",
        "/link.txt",
        "/missing.html",
    ] {
        let answer = get(addr, escape).await;
        assert!(answer.status >= 400, "{escape} answered {}", answer.status);
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("SECRET"),
            "{escape} leaked the file"
        );
    }
    server.close().await;
}

/// With `index_path` off, `GET /` is not redirected.
pub async fn index_redirect_can_be_turned_off<B: Backend>() {
    let (server, _incoming) = listen::<B>(ServerOptions::default().index_path(None)).await;
    let answer = get(server.local_addr(), "/").await;
    assert_eq!(answer.status, 404);
    server.close().await;
}

/// A plain HTTP request to the WebSocket path is refused, and the server
/// keeps serving WebSocket clients.
pub async fn plain_http_to_ws_path_is_refused<B: Backend>() {
    let (server, mut incoming) = listen::<B>(ServerOptions::default()).await;
    let answer = get(server.local_addr(), "/ws").await;
    assert_eq!(answer.status, 400);
    let client = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let server_side = incoming.next().await;
    client.send(&json!(1)).await.unwrap();
    assert_eq!(server_side.receive().await.unwrap(), json!(1));
    server.close().await;
}

/// Declares one `#[test]` per web case for a [`Backend`].
#[macro_export]
macro_rules! web_tests {
    ($backend:ty) => {
        $crate::web_tests!(@cases $backend;
            tls_round_trip,
            static_files_and_index_redirect,
            index_redirect_can_be_turned_off,
            plain_http_to_ws_path_is_refused,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::web::$case::<$backend>());
            }
        )*
    };
}
