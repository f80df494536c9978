//! `rpc-sequential`, `rpc-64`: juggler-rpc calls of an `add` action.
//!
//! `concurrency` tasks each make their share of the calls one after the
//! other (so that many calls are outstanding at any time); every result is
//! checked.

use std::time::Instant;

use juggler_rpc::{Actions, RpcConnection};
use serde_json::{json, Value};

use super::{adds, connect, next_accepted, serve, Ctx};
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// The server's actions: `add(a, b) = a + b` on integers.
pub fn actions() -> Actions {
    Actions::new().action("add", |args: Vec<Value>| async move {
        match (
            args.first().and_then(Value::as_i64),
            args.get(1).and_then(Value::as_i64),
        ) {
            (Some(a), Some(b)) => Ok(json!(a + b)),
            _ => Err("add takes two integers"),
        }
    })
}

/// Runs the scenario with `concurrency` calls outstanding.
pub async fn run(ctx: Ctx, concurrency: usize) -> Outcome {
    let calls: usize = match concurrency {
        1 => ctx.pick(20_000, 500),
        _ => ctx.pick(200_000, 2_000),
    };
    let per_task = calls / concurrency;
    let calls = per_task * concurrency;
    let (server, mut incoming) = serve(ctx.rt).await?;
    let client = RpcConnection::new(connect(ctx.rt, &server).await?, Actions::new());
    let server_side = RpcConnection::new(next_accepted(ctx.rt, &mut incoming).await?, actions());

    let cpu_start = cpu_time()?;
    let start = Instant::now();
    let caller = client.clone();
    adds(ctx, concurrency, per_task, move |x| {
        let client = caller.clone();
        async move {
            client
                .call("add", vec![json!(x), json!(1)])
                .await
                .map_err(|err| format!("call add({x}, 1) failed: {err}"))
        }
    })
    .await?;
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu_start;
    if client.pending_calls() != 0 {
        return Err(format!("{} calls still pending", client.pending_calls()));
    }

    client.shutdown().await;
    server_side.wait_closed().await;
    server.close().await;
    let rate = calls as f64 / elapsed.as_secs_f64();
    Ok(vec![Measure::new(
        "calls",
        rate,
        "calls/s",
        format!(
            "{calls} calls, {concurrency} outstanding, in {:.3} s; mean {:.1} µs/call; CPU {:.2} µs/call",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 * concurrency as f64 / calls as f64,
            cpu.as_secs_f64() * 1e6 / calls as f64
        ),
    )])
}
