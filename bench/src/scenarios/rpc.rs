//! `rpc-sequential`, `rpc-64`: juggler-rpc calls of an `add` action.
//!
//! `concurrency` tasks each make their share of the calls one after the
//! other (so that many calls are outstanding at any time); every result is
//! checked.
//!
//! On tokio, `rpc-sequential` also makes its calls from outside the
//! runtime's workers, as a program awaiting them in `#[tokio::main]`'s main
//! task does (the README's layout): a thread of its own blocks on the
//! runtime's handle (`calls main task`, and its ratio to the spawned task's
//! rate).

use std::time::Instant;

use juggler_rpc::{Actions, RpcConnection};
use serde_json::{json, Value};

use super::{adds, as_main_task, call_count, connect, from_thread, next_accepted, serve, Ctx};
use crate::report::{Measure, Outcome};
use crate::rt::Rt;
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
    let calls = call_count(ctx, concurrency);
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

    let rate = calls as f64 / elapsed.as_secs_f64();
    let main_task = match (concurrency, ctx.rt) {
        (1, Rt::Tokio) => Some(calls_outside_the_workers(ctx, &client, calls).await?),
        _ => None,
    };

    client.shutdown().await;
    server_side.wait_closed().await;
    server.close().await;
    let mut measures = vec![Measure::new(
        "calls",
        rate,
        "calls/s",
        format!(
            "{calls} calls, {concurrency} outstanding, in {:.3} s; mean {:.1} µs/call; CPU {:.2} µs/call",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 * concurrency as f64 / calls as f64,
            cpu.as_secs_f64() * 1e6 / calls as f64
        ),
    )];
    if let Some(main_task) = main_task {
        let main_rate = calls as f64 / main_task.as_secs_f64();
        measures.push(Measure::new(
            "calls main task",
            main_rate,
            "calls/s",
            format!(
                "{calls} calls, one at a time, awaited on a thread that blocks on the runtime's \
                 handle, as #[tokio::main]'s main task; {:.3} s",
                main_task.as_secs_f64()
            ),
        ));
        measures.push(Measure::new(
            "main task ÷ spawned",
            main_rate / rate,
            "×",
            "calls/s awaited as in #[tokio::main]'s main task over the same from a spawned task"
                .to_owned(),
        ));
    }
    Ok(measures)
}

/// How long `calls` sequential calls take when awaited outside the tokio
/// runtime's workers, on a thread that blocks on its handle: what
/// `#[tokio::main]` does with `main`'s body.
async fn calls_outside_the_workers(
    ctx: Ctx,
    client: &RpcConnection,
    calls: usize,
) -> Result<std::time::Duration, String> {
    let client = client.clone();
    let done = as_main_task(async move {
        let start = Instant::now();
        for x in 0..calls as i64 {
            let result = client
                .call("add", vec![json!(x), json!(1)])
                .await
                .map_err(|err| format!("call add({x}, 1) failed: {err}"))?;
            if result != json!(x + 1) {
                return Err(format!("add({x}, 1) returned {result}"));
            }
        }
        Ok(start.elapsed())
    });
    from_thread(ctx, "the calls from the main task", done).await?
}
