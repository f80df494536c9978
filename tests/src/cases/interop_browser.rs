//! The pinned browser reference client (`@hat-open/juggler`, bundled with
//! esbuild) in headless Chromium against our server. The page reports over
//! Juggler itself; the assertions are here.

use std::time::Duration;

use juggler_driver::{CloseReason, Connection, ServerOptions};
use juggler_rpc::{Actions, RpcConnection, RpcError};
use serde_json::{json, Value};

use crate::cases::web::TempDir;
use crate::support::backend::{listen, within, Backend, TestServer, HANG_GUARD};
use crate::support::browser::kit;

/// Chromium's start takes seconds on a loaded 2-core machine.
const BROWSER_START: Duration = Duration::from_secs(60);

/// The page's next report; a reported JavaScript error fails the test.
async fn next_report<B: Backend>(page: &Connection) -> Value {
    let report = within::<B, _>(HANG_GUARD, "a report from the page", page.receive())
        .await
        .expect("the page stays connected");
    if let Some(error) = report.get("error") {
        panic!("the page reported an error: {error}");
    }
    report
}

/// Data both ways (jiff's `test` ops included), messages both ways with
/// unicode, escapes and nesting, and a close from the browser.
pub async fn reference_browser_client<B: Backend>() {
    let Some(kit) = kit() else { return };
    let www = TempDir::new("browser-www");
    kit.bundle(
        "reference_client.js",
        &www.0.join("reference_client.bundle.js"),
    );
    std::fs::copy(
        crate::support::browser::browser_dir().join("reference_client.html"),
        www.0.join("reference_client.html"),
    )
    .unwrap();
    let options = ServerOptions::default()
        .static_dir(&www.0)
        .autoflush_delay(Some(Duration::ZERO));
    let (server, mut incoming) = listen::<B>(options).await;
    let _browser = kit.open(&format!(
        "http://{}/reference_client.html",
        server.local_addr()
    ));
    let page = within::<B, _>(BROWSER_START, "the page connecting", incoming.next()).await;
    let ready = next_report::<B>(&page).await;
    assert!(
        ready["ready"].as_str().unwrap_or("").contains("Chrome"),
        "{ready}"
    );

    // Server data reaches the page through jiff.patch, change by change.
    let states = [
        json!({"text": "ünïcödé \"quoted\" \\ \n\t 😀", "list": [1, 2.5, -3, {"deep": [null, true]}], "max_safe": 9_007_199_254_740_991_i64}),
        json!({"renamed": "ünïcödé \"quoted\" \\ \n\t 😀", "list": [{"deep": [null, false]}, 1, -3], "max_safe": 0}),
        json!([]),
        json!(null),
    ];
    for state in &states {
        page.set_local_data(state.clone()).unwrap();
        assert_eq!(next_report::<B>(&page).await, json!({"remote_data": state}));
    }

    // Page data reaches us through jiff.diff, whose patches carry `test`
    // ops before `replace` and `remove`; a failed one would close us.
    let values = [
        json!({"a": 1, "list": [1, 2, 3], "nested": {"x": "y"}}),
        json!({"b": 1, "list": [3, 1, 2], "nested": {"x": "z", "new": [true]}}),
        json!({"b": 1}),
        json!("whole value"),
        json!({"again": {"deep": {"deeper": [1, [2, [3]]]}}}),
    ];
    for value in &values {
        page.send(&json!({"do": "set_local_data", "value": value}))
            .await
            .unwrap();
        assert_eq!(next_report::<B>(&page).await, json!({"set": true}));
        assert_eq!(*page.remote_data(), *value);
    }
    assert!(page.is_open());

    // Messages both ways, in order.
    let messages = [
        json!(false),
        json!(0),
        json!(""),
        json!([]),
        json!({}),
        json!(null),
        json!({"ünïcödé": "\u{0}\u{1f}\"\\/", "n": -1.5e-7}),
        json!("x".repeat(1 << 20)),
    ];
    for message in &messages {
        page.send(&json!({"do": "echo", "value": message}))
            .await
            .unwrap();
    }
    for message in &messages {
        assert_eq!(next_report::<B>(&page).await, json!({"echo": message}));
    }

    // The browser closes; we see a clean remote close.
    page.send(&json!({"do": "close"})).await.unwrap();
    let reason = within::<B, _>(HANG_GUARD, "the page closing", page.wait_closed()).await;
    assert_eq!(reason, CloseReason::Remote);
    server.close().await;
}

/// Serves one bundled page of `tests/browser` from a fresh folder.
fn bundled_page(kit: &crate::support::browser::Kit, name: &str) -> TempDir {
    let www = TempDir::new("browser-www");
    kit.bundle(
        &format!("{name}.js"),
        &www.0.join(format!("{name}.bundle.js")),
    );
    std::fs::copy(
        crate::support::browser::browser_dir().join(format!("{name}.html")),
        www.0.join(format!("{name}.html")),
    )
    .unwrap();
    www
}

/// The reference `Application` class: its RPC proxy calls our actions
/// (results, errors, a missing action), and we call the page's actions.
pub async fn reference_application_rpc<B: Backend>() {
    let Some(kit) = kit() else { return };
    let www = bundled_page(kit, "reference_app");
    let (server, mut incoming) = listen::<B>(ServerOptions::default().static_dir(&www.0)).await;
    let _browser = kit.open(&format!(
        "http://{}/reference_app.html",
        server.local_addr()
    ));
    let connection = within::<B, _>(BROWSER_START, "the page connecting", incoming.next()).await;
    let actions = Actions::new()
        .action("add", |args: Vec<Value>| async move {
            let mut sum = 0.0;
            for arg in &args {
                sum += arg.as_f64().ok_or_else(|| format!("not a number: {arg}"))?;
            }
            Ok::<_, String>(json!(sum))
        })
        .action("echo", |args: Vec<Value>| async move {
            Ok::<_, String>(Value::Array(args))
        });
    let rpc = RpcConnection::new(connection, actions);

    // Our calls to the page's actions.
    let echoed = within::<B, _>(
        HANG_GUARD,
        "page echo",
        rpc.call("echo", vec![json!(1), json!("two")]),
    )
    .await;
    assert_eq!(echoed.unwrap(), json!([1, "two"]));
    let failed = within::<B, _>(HANG_GUARD, "page failure", rpc.call("fail", vec![])).await;
    assert!(
        matches!(&failed, Err(RpcError::Remote(Value::String(text))) if text.contains("page action failed")),
        "{failed:?}"
    );
    let missing = within::<B, _>(HANG_GUARD, "page missing action", rpc.call("nope", vec![])).await;
    assert!(matches!(missing, Err(RpcError::Remote(_))), "{missing:?}");

    // The page's calls to ours, reported back as a plain message.
    let report = within::<B, _>(HANG_GUARD, "the page's RPC results", rpc.receive())
        .await
        .unwrap();
    assert_eq!(
        report,
        json!({"rpc_results": {
            "add": {"ok": 5},  // JavaScript writes 5.0 as 5
            "nested": {"err": "not a number: {\"not\":\"a number\"}"},
            "missing": {"err": "invalid action"},
            "echo": {"ok": ["x", [1, {"ü": null}]]},
        }})
    );
    server.close().await;
}

/// The browser clients of the newer generations (`@hat-open/juggler`
/// 0.7.0 and 0.6.18) against our server: state changes, requests both
/// answered and failed with multi-byte text in 16-byte segments (0.7),
/// notifications, and a close from the page. The page reports with
/// requests named `report` (tests/browser/scenario_v07.js).
pub async fn reference_browser_client_v07<B: Backend>(generation: juggler_driver::Generation) {
    use juggler_driver::v07::{Handlers, Options, RequestError};
    use juggler_driver::Generations;

    let Some(kit) = kit() else { return };
    let page_name = match generation {
        juggler_driver::Generation::V0_6 => "reference_client06",
        _ => "reference_client07",
    };
    let www = bundled_page(kit, page_name);
    let (reported, mut reports) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on_connection(move |connection| {
            let _ = accepted.send(connection);
        })
        .on_request(move |_, name, data| {
            let reported = reported.clone();
            async move {
                match name.as_str() {
                    "report" => {
                        let _ = reported.send(data);
                        Ok(Value::Null)
                    }
                    "echo" => Ok(data),
                    "fail" => Err(RequestError(data)),
                    other => Err(RequestError::new(format!("no request {other}"))),
                }
            }
        });
    let options = ServerOptions::default()
        .static_dir(&www.0)
        .generations(Generations::Only(generation))
        .v07(
            Options::default()
                .max_segment_size(16)
                .autoflush_delay(Some(Duration::ZERO)),
        )
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.expect("listen");
    let _browser = kit.open(&format!(
        "http://{}/{page_name}.html?maxSegmentSize=16",
        server.local_addr()
    ));
    let connection = within::<B, _>(BROWSER_START, "the page connecting", incoming.recv())
        .await
        .unwrap();
    assert_eq!(
        next_v07_report::<B>(&mut reports).await,
        json!({"open": true})
    );

    let text = "aé€😀жü中".repeat(20);
    let states = [
        json!({"text": text, "list": [1, 2.5, {"deep": [null, true]}]}),
        json!({"text": "é", "list": [1, {"deep": [null]}], "new": {}}),
        json!([1, "two"]),
    ];
    for state in &states {
        connection.set_state(state.clone());
        assert_eq!(
            next_v07_report::<B>(&mut reports).await,
            json!({"change": state})
        );
    }

    let requests = [
        (
            "echo",
            json!({"text": text}),
            json!({"tag": "echo", "ok": true, "data": {"text": text}}),
        ),
        (
            "fail",
            json!("bad é"),
            json!({"tag": "fail", "ok": false, "error": "bad é"}),
        ),
        (
            "",
            json!([1, "é"]),
            json!({"tag": "", "ok": true, "data": [1, "é"]}),
        ),
    ];
    for (name, data, expected) in requests {
        let command = json!({"op": "request", "name": name, "data": data, "tag": name});
        connection.notify("do", &command).await.unwrap();
        assert_eq!(next_v07_report::<B>(&mut reports).await, expected);
    }

    for (index, data) in [json!(1), json!({"text": text}), json!(null)]
        .into_iter()
        .enumerate()
    {
        let name = format!("n{index}");
        connection.notify(&name, &data).await.unwrap();
        assert_eq!(
            next_v07_report::<B>(&mut reports).await,
            json!({"notify": {"name": name, "data": data}})
        );
    }

    connection
        .notify("do", &json!({"op": "close"}))
        .await
        .unwrap();
    within::<B, _>(HANG_GUARD, "the page closing", connection.wait_closed()).await;
    assert_eq!(connection.close_reason(), Some(CloseReason::Remote));
    server.close().await;
}

/// The page's next report; a reported JavaScript error fails the test.
async fn next_v07_report<B: Backend>(
    reports: &mut tokio::sync::mpsc::UnboundedReceiver<Value>,
) -> Value {
    let report = within::<B, _>(HANG_GUARD, "a report from the page", reports.recv())
        .await
        .expect("the server is alive");
    // A request's outcome has a tag; an error without one is the page's.
    if let (Some(error), None) = (report.get("error"), report.get("tag")) {
        panic!("the page reported an error: {error}");
    }
    report
}

/// [`reference_browser_client_v07`] with the 0.6.18 client.
pub async fn reference_browser_client_v06<B: Backend>() {
    reference_browser_client_v07::<B>(juggler_driver::Generation::V0_6).await
}

/// [`reference_browser_client_v07`] with the 0.7.0 client.
pub async fn reference_browser_client_v07_segmented<B: Backend>() {
    reference_browser_client_v07::<B>(juggler_driver::Generation::V0_7).await
}

/// Declares one `#[test]` per browser case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! browser_tests {
    ($backend:ty) => {
        $crate::browser_tests!(@cases $backend;
            reference_browser_client,
            reference_application_rpc,
            reference_browser_client_v06,
            reference_browser_client_v07_segmented,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::interop_browser::$case::<$backend>());
            }
        )*
    };
}
