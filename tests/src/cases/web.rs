//! Server features beyond the protocol: TLS, static files, the index
//! redirect, and what the WebSocket path answers to plain HTTP.

use std::path::PathBuf;

use juggler_driver::{ClientOptions, ServerOptions};
use serde_json::json;

use crate::support::backend::{expect_messages, listen, within, Backend, TestServer, HANG_GUARD};
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

/// A static folder as the static-file cases need it: `www/index.html`
/// (`<h1>index</h1>`) and `www/sub/app.js` (`console.log(1)`) inside, and
/// `secret.txt` (`SECRET`) outside it, which `www/link.txt` links to on
/// Unix. Removed on drop.
pub struct StaticSite {
    /// The folder that holds `www` and the secret.
    pub base: TempDir,
    /// `www`, the folder to serve.
    pub root: PathBuf,
}

impl StaticSite {
    /// Writes the site under a fresh [`TempDir`] named after `name`.
    pub fn new(name: &str) -> Self {
        let base = TempDir::new(name);
        let root = base.0.join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "<h1>index</h1>").unwrap();
        std::fs::write(root.join("sub/app.js"), "console.log(1)").unwrap();
        std::fs::write(base.0.join("secret.txt"), "SECRET").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.0.join("secret.txt"), root.join("link.txt")).unwrap();
        StaticSite { base, root }
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
    let site = StaticSite::new("static");
    let (server, _incoming) = listen::<B>(ServerOptions::default().static_dir(&site.root)).await;
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

/// Mutual TLS with a configuration of the application's: a CA, a server
/// certificate and a client certificate it signed. The server side reads
/// the client's certificate; a client without one is refused in the
/// handshake and makes no connection.
pub async fn mutual_tls_with_a_client_certificate<B: Backend>() {
    use juggler_driver::rustls;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let signed = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    };
    let (server_cert, server_key) = signed("127.0.0.1");
    let (client_cert, client_key) = signed("operator.example");

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let roots = std::sync::Arc::new(roots);
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server_cert], server_key)
        .unwrap();
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().tls_config(std::sync::Arc::new(server_config))).await;
    assert!(server.url().starts_with("wss://"), "{}", server.url());

    let client_config = |with_certificate: bool| {
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone());
        let config = match with_certificate {
            true => builder
                .with_client_auth_cert(vec![client_cert.clone()], client_key.clone_key())
                .unwrap(),
            false => builder.with_no_client_auth(),
        };
        ClientOptions::default().tls_config(std::sync::Arc::new(config))
    };
    let client = B::connect(&server.url(), client_config(true))
        .await
        .unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    let chain = server_side.peer_certificates().expect("the client's chain");
    assert_eq!(chain.first(), Some(&client_cert));
    client.send(&json!("over mTLS")).await.unwrap();
    expect_messages::<B>(&server_side, &[json!("over mTLS")]).await;

    let anonymous = B::connect(&server.url(), client_config(false)).await;
    assert!(anonymous.is_err(), "a client without a certificate got in");
    assert_eq!(server.connection_count(), 1);
    server.close().await;
}

/// One self-signed server certificate for the platform-roots case on
/// every runtime, installed as the platform's CA bundle through
/// `SSL_CERT_FILE` (which rustls-native-certs honours) once per process.
fn platform_trusted_pem() -> &'static str {
    static PEM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PEM.get_or_init(|| {
        let (server_pem, cert_pem) = self_signed_pem();
        let dir =
            std::env::temp_dir().join(format!("juggler-platform-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("ca-bundle.pem");
        std::fs::write(&bundle, cert_pem).unwrap();
        // Only this case reads the variable.
        std::env::set_var("SSL_CERT_FILE", &bundle);
        server_pem
    })
}

/// `ClientOptions::platform_roots` trusts what the platform trusts: a
/// server whose certificate is in the platform's bundle is reached, while
/// the built-in webpki roots refuse it.
pub async fn platform_roots_trust_the_platforms_bundle<B: Backend>() {
    let dir = TempDir::new("platform-roots");
    let pem_file = dir.0.join("server.pem");
    std::fs::write(&pem_file, platform_trusted_pem()).unwrap();
    let (server, mut incoming) = listen::<B>(ServerOptions::default().pem_file(&pem_file)).await;
    let webpki = B::connect(&server.url(), ClientOptions::default()).await;
    assert!(
        webpki.is_err(),
        "the webpki roots trusted a self-signed server"
    );
    let options = ClientOptions::default().platform_roots().unwrap();
    let client = B::connect(&server.url(), options).await.unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    client.send(&json!("trusted")).await.unwrap();
    expect_messages::<B>(&server_side, &[json!("trusted")]).await;
    server.close().await;
}

/// Declares one `#[test]` per web case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! web_tests {
    ($backend:ty) => {
        $crate::web_tests!(@cases $backend;
            tls_round_trip,
            static_files_and_index_redirect,
            index_redirect_can_be_turned_off,
            plain_http_to_ws_path_is_refused,
            mutual_tls_with_a_client_certificate,
            platform_roots_trust_the_platforms_bundle,
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
