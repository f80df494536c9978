//! Patches at the socket: a DATA frame whose later op fails leaves the
//! remote data exactly as before it (the engine proves each failing op on
//! its own), and nesting built up by patch ops is refused.

use async_tungstenite::tungstenite::Message;
use juggler_driver::{CloseReason, ProtocolError, ServerOptions};
use serde_json::{json, Value};

use crate::support::backend::{within, Backend, HANG_GUARD};
use crate::support::bench::*;

/// What the setup DATA frame of the patch cases makes the remote data.
fn patch_base() -> Value {
    json!({"a": 1, "arr": [1, 2], "obj": {"k": "v"}, "s": "text"})
}

fn patch_setup() -> Vec<Message> {
    vec![juggler(
        "DATA",
        json!([{"op": "replace", "path": "", "value": patch_base()}]),
    )]
}

/// Runs each patch against [`patch_base`]; each must close with `code` and
/// an error `expected` accepts, leaving the base unchanged.
async fn failing_patches<B: Backend>(
    bench: &mut Bench<B>,
    patches: Vec<Value>,
    expected: impl Fn(&ProtocolError) -> bool + Copy,
) {
    let (setup, base) = (patch_setup(), patch_base());
    for patch in patches {
        let what = patch.to_string();
        bench
            .violation(
                &what,
                &setup,
                &base,
                vec![juggler("DATA", patch)],
                1002,
                expected,
            )
            .await;
    }
}

/// A patch whose later op fails after earlier ops applied: `PatchFailed`
/// and the remote data exactly as before the frame.
pub async fn partially_applicable_patch_changes_nothing<B: Backend>() {
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let patches = vec![
        json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "replace", "path": "/a", "value": 5},
            {"op": "remove", "path": "/arr/0"},
            {"op": "remove", "path": "/missing"},
        ]),
        json!([
            {"op": "add", "path": "/c", "value": 1},
            {"op": "test", "path": "/c", "value": 2},
        ]),
        json!([
            {"op": "copy", "from": "/obj", "path": "/obj2"},
            {"op": "move", "from": "/arr", "path": "/x"},
            {"op": "add", "path": "/obj/k2", "value": [1]},
            {"op": "add", "path": "/x/9", "value": 0},
        ]),
        json!([
            {"op": "replace", "path": "", "value": {"all": "new"}},
            {"op": "test", "path": "/all", "value": "old"},
        ]),
        json!([
            {"op": "remove", "path": "/obj/k"},
            {"op": "add", "path": "/obj/k/deeper", "value": 1},
        ]),
    ];
    failing_patches(&mut bench, patches, |err| {
        matches!(err, ProtocolError::PatchFailed(_))
    })
    .await;
    bench.finish().await;
}

/// 10,000-deep nesting built by patch ops instead (each level three small
/// ops, so the frame parser's depth limit never sees it): the patch must
/// be refused like deep nesting in one frame, and in any case nothing may
/// crash. A deeper remote data than the parser accepts could not be
/// cloned, compared, encoded or even dropped without deep recursion
/// (dropping overflows the stack from about 3,000 levels in a debug
/// build, which would abort the whole test process).
pub async fn deep_nesting_built_by_patch_ops<B: Backend>() {
    const DEPTH: usize = 10_000;
    let mut bench = Bench::<B>::start(ServerOptions::default()).await;
    let (mut socket, server_side) = bench.raw().await;
    let mut ops = vec![json!({"op": "replace", "path": "", "value": {"x": 0}})];
    for _ in 0..DEPTH {
        ops.push(json!({"op": "add", "path": "/y", "value": {}}));
        ops.push(json!({"op": "move", "from": "/x", "path": "/y/x"}));
        ops.push(json!({"op": "move", "from": "/y", "path": "/x"}));
    }
    socket
        .send(juggler("DATA", Value::Array(ops)))
        .await
        .unwrap();
    socket
        .send(juggler("MESSAGE", json!("marker")))
        .await
        .unwrap();
    let received = within::<B, _>(HANG_GUARD, "marker or close", server_side.receive()).await;
    let accepted = received.is_ok();
    if accepted {
        // Release the deep value before failing, in the server's own way.
        drop(socket);
        within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
    } else {
        let (code, _) = within::<B, _>(HANG_GUARD, "close frame", read_close(&mut socket)).await;
        assert_eq!(code, 1002);
        let reason = within::<B, _>(HANG_GUARD, "closing", server_side.wait_closed()).await;
        assert!(matches!(reason, CloseReason::Protocol(_)), "{reason:?}");
        assert_eq!(*server_side.remote_data(), Value::Null);
    }
    drop(server_side);
    bench.assert_connections(0);
    bench.check_good().await;
    assert_no_runtime_panics();
    assert!(
        !accepted,
        "the server accepted a remote data {DEPTH} levels deep, built by patch ops"
    );
    bench.finish().await;
}
