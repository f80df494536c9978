//! One table of HTTP requests sent to a tokio and a smol server started
//! with the same options: every answer is as the table expects, and the
//! two runtimes' answers are identical (status, headers but `Date`, body).

use std::net::SocketAddr;

use juggler_driver::ServerOptions;

use crate::cases::web::StaticSite;
use crate::support::backend::{listen, Backend};
use crate::support::http::{request, HttpResponse};
use crate::support::runtimes::{Smol, Tokio};

/// The htpasswd line of the spec's `$apr1$` vector: `alice` / `password`.
const ALICE: &str = "alice:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00\n";
/// `alice:password`, base64.
const AUTHORIZED: &str = "Authorization: Basic YWxpY2U6cGFzc3dvcmQ=\r\n";

/// One request of the table and the status it must get.
struct Case {
    method: &'static str,
    path: &'static str,
    /// Header lines besides `Host`, `Connection` and `Authorization`.
    headers: String,
    /// Whether to send the good credentials.
    authorized: bool,
    status: u16,
}

fn case(method: &'static str, path: &'static str, headers: &str, status: u16) -> Case {
    Case {
        method,
        path,
        headers: headers.to_owned(),
        authorized: true,
        status,
    }
}

/// The answer with what legitimately differs removed: the `Date` header,
/// and header order.
fn comparable(mut answer: HttpResponse) -> HttpResponse {
    answer.headers.retain(|(name, _)| name != "date");
    answer.headers.sort();
    answer
}

async fn send(addr: SocketAddr, case: &Case) -> HttpResponse {
    let mut headers = case.headers.clone();
    if case.authorized {
        headers.push_str(AUTHORIZED);
    }
    comparable(request(addr, case.method, case.path, &headers).await)
}

/// The table, against both runtimes.
pub async fn both_runtimes_answer_http_alike() {
    let site = StaticSite::new("parity");
    let root = &site.root;
    std::fs::write(root.join("sub/index.html"), "<h1>sub</h1>").unwrap();
    std::fs::write(root.join("style.css"), "h1 {}").unwrap();
    // Bigger than one read of the file body (64 KiB): streamed in chunks.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).unwrap();
    let htpasswd = site.base.0.join("htpasswd");
    std::fs::write(&htpasswd, ALICE).unwrap();
    let options = ServerOptions::default()
        .static_dir(root)
        .htpasswd_file(&htpasswd);
    let (tokio_server, _tokio_incoming) = listen::<Tokio>(options.clone()).await;
    let (smol_server, _smol_incoming) = listen::<Smol>(options).await;

    let index = send(
        tokio_server.local_addr(),
        &case("GET", "/index.html", "", 200),
    )
    .await;
    let etag = index.header("etag").expect("an ETag").to_owned();
    let modified = index.header("last-modified").expect("a date").to_owned();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        case("GET", "/index.html", "", 200),
        case("HEAD", "/index.html", "", 200),
        case("GET", "/", "", 302),
        case("HEAD", "/", "", 302),
        case("GET", "/sub/", "", 200),
        case("GET", "/sub?tab=2", "", 307),
        case("GET", "/sub/app.js", "", 200),
        case("GET", "/style.css", "", 200),
        case("GET", "/big.bin", "", 200),
        case("HEAD", "/big.bin", "", 200),
        case("GET", "/big.bin", "Range: bytes=100000-100009\r\n", 206),
        case("GET", "/big.bin", "Range: bytes=-5\r\n", 206),
        case("GET", "/big.bin", "Range: bytes=199990-\r\n", 206),
        case("GET", "/big.bin", "Range: bytes=0-1,5-6\r\n", 200),
        case("GET", "/big.bin", "Range: bytes=200000-\r\n", 416),
        case("HEAD", "/big.bin", "Range: bytes=0-1\r\n", 200),
        case(
            "GET",
            "/big.bin",
            &format!("Range: bytes=0-1\r\nIf-Range: {etag}\r\n"),
            200,
        ),
        case(
            "GET",
            "/index.html",
            &format!("Range: bytes=0-3\r\nIf-Range: {etag}\r\n"),
            206,
        ),
        case(
            "GET",
            "/index.html",
            &format!("If-None-Match: {etag}\r\n"),
            304,
        ),
        case("GET", "/index.html", "If-None-Match: \"other\"\r\n", 200),
        case(
            "GET",
            "/index.html",
            &format!("If-Modified-Since: {modified}\r\n"),
            304,
        ),
        case(
            "HEAD",
            "/index.html",
            &format!("If-None-Match: {etag}\r\n"),
            304,
        ),
        case("GET", "/missing.html", "", 404),
        case("GET", "/../secret.txt", "", 404),
        case("GET", "/%2e%2e/secret.txt", "", 404),
        case("POST", "/index.html", "Content-Length: 0\r\n", 404),
        case("GET", "/ws", "", 400),
        case(
            "GET",
            "/ws",
            &format!("{upgrade}Origin: http://evil.example\r\n"),
            403,
        ),
        Case {
            authorized: false,
            ..case("GET", "/index.html", "", 401)
        },
        Case {
            authorized: false,
            ..case("GET", "/ws", upgrade, 401)
        },
        Case {
            authorized: false,
            ..case(
                "GET",
                "/index.html",
                "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n",
                401,
            )
        },
    ];
    let mut answers = Vec::new();
    for case in &cases {
        let what = format!("{} {} {:?}", case.method, case.path, case.headers);
        let on_tokio = send(tokio_server.local_addr(), case).await;
        let on_smol = send(smol_server.local_addr(), case).await;
        assert_eq!(on_tokio.status, case.status, "tokio: {what}");
        assert_eq!(on_tokio.header("cache-control"), Some("no-cache"), "{what}");
        assert_eq!(on_tokio.headers, on_smol.headers, "{what}");
        assert!(on_tokio.body == on_smol.body, "{what}: the bodies differ");
        answers.push((case, on_tokio));
    }

    // What the table's answers carry, checked once (they are identical):
    // the answer to the first case of this method and path whose headers
    // contain `headers`.
    let answer = |method: &str, path: &str, headers: &str| {
        answers
            .iter()
            .find(|(case, _)| {
                case.method == method && case.path == path && case.headers.contains(headers)
            })
            .map(|(_, answer)| answer)
            .unwrap_or_else(|| panic!("no case {method} {path} {headers:?}"))
    };
    let whole = answer("GET", "/big.bin", "");
    assert!(whole.body == big, "the whole file, streamed");
    assert_eq!(whole.header("content-length"), Some("200000"));
    let head = answer("HEAD", "/big.bin", "");
    assert_eq!(head.header("content-length"), Some("200000"));
    assert!(head.body.is_empty());
    let part = answer("GET", "/big.bin", "bytes=100000-100009");
    assert_eq!(
        part.header("content-range"),
        Some("bytes 100000-100009/200000")
    );
    assert!(part.body == big[100_000..100_010]);
    assert!(answer("GET", "/big.bin", "bytes=-5").body == big[199_995..]);
    assert_eq!(
        answer("GET", "/big.bin", "bytes=200000-").header("content-range"),
        Some("bytes */200000")
    );
    assert_eq!(
        answer("GET", "/sub/app.js", "").header("content-type"),
        Some("text/javascript")
    );
    let css = answer("GET", "/style.css", "");
    assert_eq!(css.header("content-type"), Some("text/css"));
    assert_eq!(answer("GET", "/sub/", "").body, b"<h1>sub</h1>");
    let not_modified = answer("GET", "/index.html", &format!("If-None-Match: {etag}"));
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let index = answer("GET", "/", "");
    assert_eq!(index.header("location"), Some("/index.html"));
    let folder = answer("GET", "/sub?tab=2", "");
    assert_eq!(folder.header("location"), Some("/sub/?tab=2"));
    let unauthorized = answers
        .iter()
        .find(|(case, _)| !case.authorized)
        .map(|(_, answer)| answer)
        .unwrap();
    assert_eq!(
        unauthorized.header("www-authenticate"),
        Some("Basic realm=\"\"")
    );
    tokio_server.close().await;
    smol_server.close().await;
}

/// The parity test, on tokio's runtime (the smol server runs on smol's
/// own executor threads meanwhile).
pub fn run() {
    Tokio::block_on(both_runtimes_answer_http_alike());
}
