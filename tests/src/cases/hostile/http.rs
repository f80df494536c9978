//! HTTP-level abuse: path traversal against `static_dir`, and requests to
//! the WebSocket path that are not upgrades.

use juggler_driver::ServerOptions;

use crate::cases::web::StaticSite;
use crate::support::backend::{Backend, TestServer};
use crate::support::bench::*;

/// Path traversal against the static files, every trick at once, while a
/// WebSocket client is served: nothing outside `static_dir` leaks.
pub async fn http_path_traversal<B: Backend>() {
    let site = StaticSite::new("hostile-static");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&site.base.0, site.root.join("up")).unwrap();
    let mut bench = Bench::<B>::start(ServerOptions::default().static_dir(&site.root)).await;
    let addr = bench.server.local_addr();
    let (status, answer) = http_exchange::<B>(
        addr,
        b"GET /sub/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, Some(200));
    assert!(answer.ends_with(b"console.log(1)"));
    for path in [
        "/../secret.txt",
        "/../../../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/sub/../../secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/./../secret.txt",
        "/..;/secret.txt",
        "//secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "/%00/../secret.txt",
        "/sub/app.js%00.html",
        "/..\\secret.txt",
        "http://x/../secret.txt",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (status, answer) = http_exchange::<B>(addr, request.as_bytes()).await;
        assert!(
            status.is_none_or(|status| status >= 400),
            "{path} answered {status:?}"
        );
        assert!(
            !String::from_utf8_lossy(&answer).contains("SECRET"),
            "{path} leaked the file"
        );
        bench.assert_connections(0);
    }
    bench.check_good().await;
    bench.finish().await;
}

/// Requests to `ws_path` that are not a WebSocket upgrade we accept get an
/// HTTP error and no connection.
pub async fn non_websocket_requests_to_ws_path<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let addr = bench.server.local_addr();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases: Vec<(String, Option<u16>)> = vec![
        ("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), Some(400)),
        (
            format!("POST /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
            Some(400),
        ),
        (
            format!("GET /ws HTTP/1.1\r\nHost: x\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n"),
            Some(426),
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".into(),
            Some(400),
        ),
        (
            "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n".into(),
            Some(400),
        ),
        ("HEAD /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(), Some(400)),
    ];
    for (request, expected) in cases {
        let (status, _) = http_exchange::<B>(addr, request.as_bytes()).await;
        assert_eq!(status, expected, "{request:?}");
        bench.assert_connections(0);
    }
    // Not HTTP at all: an HTTP error or a closed socket, nothing else.
    for garbage in [
        &b"HELLO\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5][..],
        &[0u8; 64][..],
    ] {
        let (status, _) = http_exchange::<B>(addr, garbage).await;
        assert!(status.is_none_or(|status| status >= 400), "{status:?}");
        bench.assert_connections(0);
    }
    bench.check_good().await;
    bench.finish().await;
}
