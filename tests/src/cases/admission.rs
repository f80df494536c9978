//! Who gets a connection: the origin policy, `max_connections`, and
//! clients too slow to send their headers, over real sockets, before any
//! `101 Switching Protocols`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, AsyncWriteExt};
use juggler_driver::http::{header, HeaderValue, StatusCode};
use juggler_driver::{Admission, ClientOptions, Error, Io, OriginPolicy, ServerOptions};
use serde_json::json;

use crate::support::backend::{expect_messages, listen, within, Backend, TestServer, HANG_GUARD};
use crate::support::bench::http_exchange;

/// Sends a WebSocket upgrade request for `/ws` with `Host: host` and the
/// `Origin`, if any; returns the answer's status and the socket.
async fn upgrade<B: Backend>(
    addr: SocketAddr,
    host: &str,
    origin: Option<&str>,
) -> (u16, Box<dyn Io>) {
    let origin = origin.map_or(String::new(), |origin| format!("Origin: {origin}\r\n"));
    upgrade_with::<B>(addr, host, &origin).await
}

/// [`upgrade`] with extra header lines (each ending in CRLF).
async fn upgrade_with<B: Backend>(addr: SocketAddr, host: &str, extra: &str) -> (u16, Box<dyn Io>) {
    let (status, _head, socket) = upgrade_head::<B>(addr, host, extra).await;
    (status, socket)
}

/// [`upgrade_with`], with the answer's head as text too.
async fn upgrade_head<B: Backend>(
    addr: SocketAddr,
    host: &str,
    extra: &str,
) -> (u16, String, Box<dyn Io>) {
    let mut socket = B::tcp_connect(addr).await.expect("connect");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.flush().await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, head, socket)
}

/// Reads until the server closes the socket.
async fn until_closed(socket: &mut Box<dyn Io>) {
    let mut buffer = [0u8; 256];
    while let Ok(read) = socket.read(&mut buffer).await {
        if read == 0 {
            break;
        }
    }
}

/// The default policy: non-browser clients and pages of the server's own
/// host and port get their connection; any other page gets 403 and no
/// connection. An allow-list admits its origins; `Any` admits all.
pub async fn origin_policy_at_the_upgrade<B: Backend>() {
    /// The `Origin` a case sends, given the server's address.
    enum Sent {
        Nothing,
        ThisServer,
        OtherPort,
        Fixed(&'static str),
    }
    let allow_list = || OriginPolicy::AllowList(vec!["https://gui.example".into()]);
    let cases = [
        (OriginPolicy::SameHost, Sent::Nothing, 101),
        (OriginPolicy::SameHost, Sent::ThisServer, 101),
        (
            OriginPolicy::SameHost,
            Sent::Fixed("http://evil.example"),
            403,
        ),
        (OriginPolicy::SameHost, Sent::Fixed("null"), 403),
        (OriginPolicy::SameHost, Sent::OtherPort, 403),
        (allow_list(), Sent::Fixed("https://gui.example"), 101),
        (allow_list(), Sent::Fixed("https://evil.example"), 403),
        (OriginPolicy::Any, Sent::Fixed("https://evil.example"), 101),
    ];
    for (policy, sent, expected) in cases {
        let (server, mut incoming) =
            listen::<B>(ServerOptions::default().origin_policy(policy.clone())).await;
        let addr = server.local_addr();
        let origin = match sent {
            Sent::Nothing => None,
            Sent::ThisServer => Some(format!("http://{addr}")),
            Sent::OtherPort => Some(format!("http://{}:{}", addr.ip(), addr.port() ^ 1)),
            Sent::Fixed(origin) => Some(origin.to_owned()),
        };
        let (status, mut socket) = upgrade::<B>(addr, &addr.to_string(), origin.as_deref()).await;
        assert_eq!(status, expected, "{policy:?}, Origin {origin:?}");
        if expected == 101 {
            let accepted = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
            drop(socket);
            within::<B, _>(HANG_GUARD, "closing", accepted.wait_closed()).await;
        } else {
            // Refused before any upgrade: no connection is made.
            assert_eq!(server.connection_count(), 0, "{origin:?}");
            let _ = socket.close().await;
        }
        server.close().await;
    }
}

/// Over `max_connections`, an upgrade gets 503; the open connections keep
/// working, and once one closes there is room again.
pub async fn max_connections_refuses_with_503<B: Backend>() {
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().max_connections(Some(2))).await;
    let options = ClientOptions::default;
    let first = B::connect(&server.url(), options()).await.unwrap();
    let first_server = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    let second = B::connect(&server.url(), options()).await.unwrap();
    let second_server = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;

    let addr = server.local_addr();
    let (status, _socket) = upgrade::<B>(addr, &addr.to_string(), None).await;
    assert_eq!(status, 503);
    assert!(matches!(
        B::connect(&server.url(), options()).await,
        Err(Error::Refused(503))
    ));
    assert_eq!(server.connection_count(), 2);

    second.send(&json!("still served")).await.unwrap();
    expect_messages::<B>(&second_server, &[json!("still served")]).await;
    first.shutdown().await;
    within::<B, _>(HANG_GUARD, "the first closing", first_server.wait_closed()).await;
    let third = B::connect(&server.url(), options()).await;
    assert!(third.is_ok(), "no room after a close: {third:?}");
    server.close().await;
}

/// 100 clients that never finish their request headers, and one idle
/// keep-alive HTTP connection, are closed after `header_read_timeout`,
/// while a good client connects and is served meanwhile.
pub async fn header_stalling_clients_are_dropped<B: Backend>() {
    const TIMEOUT: Duration = Duration::from_secs(1);
    const STALLING: usize = 100;
    let (server, mut incoming) =
        listen::<B>(ServerOptions::default().header_read_timeout(Some(TIMEOUT))).await;
    let addr = server.local_addr();
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLING {
        let mut socket = B::tcp_connect(addr).await.unwrap();
        socket
            .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        socket.flush().await.unwrap();
        stalled.push(socket);
    }
    // An HTTP request answered (the index redirect), then nothing more on
    // that keep-alive connection.
    let mut idle = B::tcp_connect(addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    idle.flush().await.unwrap();
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 302");

    let good = within::<B, _>(
        HANG_GUARD,
        "a good client during the stall",
        B::connect(&server.url(), ClientOptions::default()),
    )
    .await
    .unwrap();
    let good_server = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    good.send(&json!("served")).await.unwrap();
    expect_messages::<B>(&good_server, &[json!("served")]).await;

    for socket in stalled.iter_mut().chain(std::iter::once(&mut idle)) {
        within::<B, _>(
            HANG_GUARD,
            "the server dropping a staller",
            until_closed(socket),
        )
        .await;
    }
    let waited = started.elapsed();
    assert!(
        waited >= TIMEOUT,
        "dropped after {waited:?}, before the timeout"
    );
    assert!(good.is_open() && good_server.is_open());
    assert_eq!(server.connection_count(), 1);
    server.close().await;
}

/// Who the admission hook let in.
#[derive(Debug, PartialEq)]
struct User(String);

/// The application's hook: a bearer token admits with the user as the
/// connection's context; anything else gets 401 and no connection. The
/// client's URL, query included, and its headers reach the server.
pub async fn admission_hook_refuses_or_admits_with_context<B: Backend>() {
    let options = ServerOptions::default().admission(|request| {
        let token = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            match token.as_deref() {
                Some("Bearer good") => Admission::admit_with(User("alice".into())),
                _ => Admission::refuse(StatusCode::UNAUTHORIZED, "no\n"),
            }
        })
    });
    let (server, mut incoming) = listen::<B>(options).await;
    let url = format!("{}?room=7", server.url());

    let refused = B::connect(&url, ClientOptions::default()).await;
    assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");
    let wrong = ClientOptions::default().header(
        header::AUTHORIZATION,
        HeaderValue::from_static("Bearer bad"),
    );
    assert!(matches!(
        B::connect(&url, wrong).await,
        Err(Error::Refused(401))
    ));
    assert_eq!(server.connection_count(), 0);

    let good = ClientOptions::default()
        .header(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer good"),
        )
        .header(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; lang=hr"),
        );
    let client = B::connect(&url, good).await.unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    assert_eq!(server_side.context::<User>(), Some(&User("alice".into())));
    assert_eq!(server_side.context::<String>(), None);
    let request = server_side.upgrade_request().expect("a server connection");
    assert_eq!(request.query(), Some("room=7"));
    assert_eq!(request.uri.path(), "/ws");
    assert_eq!(request.cookie("lang").as_deref(), Some("hr"));
    assert_eq!(server_side.remote(), Some("127.0.0.1"));
    assert!(client.upgrade_request().is_none() && client.context::<User>().is_none());
    client.send(&json!("in")).await.unwrap();
    expect_messages::<B>(&server_side, &[json!("in")]).await;
    server.close().await;
}

/// `remote` is the socket peer unless the server trusts forwarding
/// headers; then it follows the reference's rule.
pub async fn remote_behind_a_trusted_proxy<B: Backend>() {
    for (trust, expected) in [(false, "127.0.0.1"), (true, "203.0.113.9")] {
        let (server, mut incoming) =
            listen::<B>(ServerOptions::default().trust_forwarded_headers(trust)).await;
        let addr = server.local_addr();
        let (status, socket) = upgrade_with::<B>(
            addr,
            &addr.to_string(),
            "X-Forwarded-For: 198.51.100.1, 203.0.113.9\r\n",
        )
        .await;
        assert_eq!(status, 101);
        let accepted = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
        assert_eq!(accepted.remote(), Some(expected), "trust {trust}");
        assert_eq!(
            accepted
                .peer_addr()
                .map(|peer| peer.ip().to_string())
                .as_deref(),
            Some("127.0.0.1")
        );
        drop(socket);
        server.close().await;
    }
}

/// A server that accepts TCP but never answers the handshake: the client
/// gives up with `ConnectTimeout`.
pub async fn client_connect_timeout<B: Backend>() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", silent.local_addr().unwrap());
    let options = ClientOptions::default().connect_timeout(Some(Duration::from_millis(300)));
    let outcome = within::<B, _>(
        HANG_GUARD,
        "the connect timing out",
        B::connect(&url, options),
    )
    .await;
    assert!(
        matches!(outcome, Err(Error::ConnectTimeout(_))),
        "{outcome:?}"
    );
}

/// Every answer says `Cache-Control: no-cache` by default, the `101` and
/// the refusals included (as hat-juggler 0.7's do), and none does with
/// `no_cache(false)`.
pub async fn answers_say_no_cache_by_default<B: Backend>() {
    for no_cache in [true, false] {
        let (server, mut incoming) = listen::<B>(
            ServerOptions::default()
                .no_cache(no_cache)
                .max_connections(Some(1)),
        )
        .await;
        let addr = server.local_addr();
        let says_no_cache = |head: &str| {
            head.lines().any(|line| {
                line.to_ascii_lowercase()
                    .replace(' ', "")
                    .starts_with("cache-control:no-cache")
            })
        };
        let (status, head, socket) = upgrade_head::<B>(addr, &addr.to_string(), "").await;
        assert_eq!(status, 101);
        assert_eq!(says_no_cache(&head), no_cache, "101: {head}");
        let accepted = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
        // Full now: the refusal too.
        let (status, head, _refused) = upgrade_head::<B>(addr, &addr.to_string(), "").await;
        assert_eq!(status, 503);
        assert_eq!(says_no_cache(&head), no_cache, "503: {head}");
        for path in ["/", "/missing"] {
            let answer = crate::support::http::get(addr, path).await;
            assert_eq!(
                answer.header("cache-control") == Some("no-cache"),
                no_cache,
                "{path}: {}",
                answer.status
            );
        }
        drop(socket);
        within::<B, _>(HANG_GUARD, "closing", accepted.wait_closed()).await;
        server.close().await;
    }
}

/// `GET path` with extra header lines: the status and the whole answer.
async fn get_with<B: Backend>(addr: SocketAddr, path: &str, extra: &[u8]) -> (u16, String) {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n").into_bytes();
    request.extend_from_slice(extra);
    request.extend_from_slice(b"Connection: close\r\n\r\n");
    let (status, answer) = http_exchange::<B>(addr, &request).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    (
        status.unwrap_or_else(|| panic!("no HTTP status in {answer:?}")),
        answer,
    )
}

/// An `Authorization: Basic` header line for these raw credential bytes.
fn basic(credentials: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    format!("Authorization: Basic {encoded}\r\n").into_bytes()
}

/// Basic auth from an htpasswd file on every route (the index redirect, a
/// missing path, the WebSocket): 401 with `WWW-Authenticate: Basic
/// realm=""` without it or with a wrong password, through with a good one.
/// An `$apr1$` user (the spec's vector) and a bcrypt one whose password is
/// not ASCII: as the reference decodes the header as latin-1 and hashes
/// UTF-8, a client sending latin-1 bytes gets in and one sending UTF-8
/// bytes does not.
pub async fn basic_auth_on_every_route<B: Backend>() {
    let dir = crate::cases::web::TempDir::new("htpasswd");
    let file = dir.0.join("htpasswd");
    let bcrypt_hash = bcrypt::hash_with_result("pässword", 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    std::fs::write(
        &file,
        format!("alice:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00\n\nbob:{bcrypt_hash}\n"),
    )
    .unwrap();
    let (server, mut incoming) = listen::<B>(ServerOptions::default().htpasswd_file(&file)).await;
    let addr = server.local_addr();
    let alice = basic(b"alice:password");
    let bob_latin1 = basic(b"bob:p\xe4ssword");
    let bob_utf8 = basic("bob:pässword".as_bytes());
    for (path, good) in [("/", 302), ("/missing", 404)] {
        for (credentials, expected) in [
            (Vec::new(), 401),
            (basic(b"alice:wrong"), 401),
            (basic(b"mallory:password"), 401),
            (b"Authorization: Bearer password\r\n".to_vec(), 401),
            (alice.clone(), good),
            (bob_latin1.clone(), good),
            (bob_utf8.clone(), 401),
        ] {
            let (status, head) = get_with::<B>(addr, path, &credentials).await;
            assert_eq!(
                status,
                expected,
                "{path} {:?}",
                String::from_utf8_lossy(&credentials)
            );
            if status == 401 {
                assert!(
                    head.to_ascii_lowercase()
                        .contains("www-authenticate: basic realm=\"\""),
                    "{head}"
                );
            }
        }
    }
    let refused = B::connect(&server.url(), ClientOptions::default()).await;
    assert!(matches!(refused, Err(Error::Refused(401))), "{refused:?}");
    let line = String::from_utf8(alice).unwrap();
    let value = line.trim_end().trim_start_matches("Authorization: ");
    let options = ClientOptions::default()
        .header(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    let client = B::connect(&server.url(), options).await.unwrap();
    let server_side = within::<B, _>(HANG_GUARD, "accepting", incoming.next()).await;
    client.send(&json!("authenticated")).await.unwrap();
    expect_messages::<B>(&server_side, &[json!("authenticated")]).await;
    server.close().await;
}

/// Declares one `#[test]` per admission case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! admission_tests {
    ($backend:ty) => {
        $crate::admission_tests!(@cases $backend;
            origin_policy_at_the_upgrade,
            max_connections_refuses_with_503,
            header_stalling_clients_are_dropped,
            admission_hook_refuses_or_admits_with_context,
            remote_behind_a_trusted_proxy,
            client_connect_timeout,
            answers_say_no_cache_by_default,
            basic_auth_on_every_route,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::admission::$case::<$backend>());
            }
        )*
    };
}
