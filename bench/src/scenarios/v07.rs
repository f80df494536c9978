//! The 0.7 generation: `v07-requests-sequential`, `v07-requests-64`,
//! `v07-notify`, `v07-state-100k` and `v07-fanout-1000`, the same as
//! `bench/python_v07_bench.py` runs against hat-juggler 0.7.6.
//!
//! The server (a 0.7 `listen`, autoflush 0) and its clients run in this
//! process over loopback, as in the 0.5 scenarios. Every result is checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use juggler_tokio::v07::{Client, Connection, Handlers, Notifications, Options, RequestError};
use juggler_tokio::{Group, ServerOptions};
use serde_json::json;
use tokio::sync::mpsc;

use super::{adds, Ctx, Samples};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};
use crate::rt::Server;
use crate::sys::cpu_time;

/// The server's settings: changes at once, limits raised for the
/// 100,000-key state (5 MB of text).
fn server_options() -> Options {
    Options::default()
        .autoflush_delay(Some(Duration::ZERO))
        .max_message_size(64 << 20)
        // The rows measured before the reference's in-order default came.
        .parallel_requests(true)
}

/// The clients' settings: the server's, keeping every notification.
fn options() -> Options {
    server_options().notifications(Notifications::Queue)
}

/// A 0.7 server answering `add([a, b])`, whose connections queue in the
/// receiver (and join `group`, if given).
async fn serve(
    ctx: Ctx,
    group: Option<Group>,
) -> Result<(Server, mpsc::UnboundedReceiver<Connection>), String> {
    serve_with(ctx, group, ServerOptions::default().v07(server_options())).await
}

/// [`serve`] with these server options.
pub(super) async fn serve_with(
    ctx: Ctx,
    group: Option<Group>,
    options: ServerOptions,
) -> Result<(Server, mpsc::UnboundedReceiver<Connection>), String> {
    let (accepted, incoming) = mpsc::unbounded_channel();
    let handlers = Handlers::new()
        .on_connection(move |connection| {
            if let Some(group) = &group {
                let _ = group.join(&connection);
            }
            let _ = accepted.send(connection);
        })
        .on_request(|_, name, data| async move {
            match (name.as_str(), data[0].as_i64(), data[1].as_i64()) {
                ("add", Some(a), Some(b)) => Ok(json!(a + b)),
                _ => Err(RequestError::from("add takes two integers")),
            }
        });
    let server_options = options.v07_only(handlers);
    let server = ctx
        .rt
        .listen(drop, server_options)
        .await
        .map_err(|err| format!("listen failed: {err}"))?;
    Ok((server, incoming))
}

async fn connect(ctx: Ctx, server: &Server) -> Result<Client, String> {
    connect_with(ctx, server, options()).await
}

/// [`connect`] with these client options.
pub(super) async fn connect_with(
    ctx: Ctx,
    server: &Server,
    options: Options,
) -> Result<Client, String> {
    ctx.rt
        .connect_v07(server.url(), options)
        .await
        .map_err(|err| format!("connect failed: {err}"))
}

pub(super) async fn accepted(
    ctx: Ctx,
    incoming: &mut mpsc::UnboundedReceiver<Connection>,
) -> Result<Connection, String> {
    ctx.rt
        .timeout(Duration::from_secs(10), "accepting", incoming.recv())
        .await?
        .ok_or_else(|| "the server stopped accepting".to_owned())
}

/// `v07-requests-*`: `add` requests, `concurrency` outstanding.
pub async fn requests(ctx: Ctx, concurrency: usize) -> Outcome {
    let calls = super::call_count(ctx, concurrency);
    let per_task = calls / concurrency;
    let calls = per_task * concurrency;
    let (server, _incoming) = serve(ctx, None).await?;
    let client = connect(ctx, &server).await?;
    let cpu_start = cpu_time()?;
    let start = Instant::now();
    let caller = client.clone();
    adds(ctx, concurrency, per_task, move |x| {
        let client = caller.clone();
        async move {
            client
                .send("add", json!([x, 1]))
                .await
                .map_err(|err| format!("add({x}, 1) failed: {err}"))
        }
    })
    .await?;
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu_start;
    client.async_close().await;
    server.close().await;
    Ok(vec![Measure::new(
        "requests",
        calls as f64 / elapsed.as_secs_f64(),
        "requests/s",
        format!(
            "{calls} requests, {concurrency} outstanding, in {:.3} s; CPU {:.2} µs/request",
            elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / calls as f64
        ),
    )])
}

/// `v07-notify`: 100-byte notifications server -> client, in order.
pub async fn notify(ctx: Ctx) -> Outcome {
    let count: u64 = ctx.pick(200_000, 2_000);
    let (server, mut incoming) = serve(ctx, None).await?;
    let client = connect(ctx, &server).await?;
    let server_side = accepted(ctx, &mut incoming).await?;
    let padding = data::padding(100);
    let start = Instant::now();
    let cpu_start = cpu_time()?;
    let sender = ctx.rt.spawn(async move {
        for seq in 0..count {
            server_side
                .notify("m", &data::message(seq, &padding))
                .await
                .map_err(|err| format!("notify {seq} failed: {err}"))?;
        }
        Ok::<_, String>(server_side)
    });
    let receive = async {
        for seq in 0..count {
            let notification = client.receive().await.ok_or("the connection closed")?;
            if notification.data["seq"] != json!(seq) {
                return Err(format!("notification {seq} came as {}", notification.data));
            }
        }
        Ok::<(), String>(())
    };
    ctx.rt
        .timeout(ctx.limit(), "the notifications", receive)
        .await??;
    let elapsed = start.elapsed();
    let cpu = cpu_time()? - cpu_start;
    let server_side = sender.await??;
    server_side.close();
    client.wait_closed().await;
    server.close().await;
    Ok(vec![Measure::new(
        "notifications",
        count as f64 / elapsed.as_secs_f64(),
        "msgs/s",
        format!(
            "{count} notifications of 100 bytes in {:.3} s; CPU {:.2} µs/notification",
            elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / count as f64
        ),
    )])
}

/// Waits until the client's state has entry `index` at `version`.
pub(super) async fn state_reaches(
    client: &Client,
    seen: &mut u64,
    index: usize,
    version: u64,
) -> Result<(), String> {
    loop {
        if data::version_of(&client.state(), index) == Some(version) {
            return Ok(());
        }
        let (count, _) = client
            .state_changed(*seen)
            .await
            .map_err(|err| format!("the client closed: {err}"))?;
        *seen = count;
    }
}

/// `v07-state-100k`: one-entry change of a 100,000-key state, by a whole
/// new state (`set_state`: a diff) and by ops (`update_state`).
pub async fn state(ctx: Ctx) -> Outcome {
    let keys = ctx.pick(100_000, 10_000);
    let rounds: u64 = ctx.pick(10, 2);
    let (server, mut incoming) = serve(ctx, None).await?;
    let client = connect(ctx, &server).await?;
    let server_side = accepted(ctx, &mut incoming).await?;
    let mut state = data::state(keys);
    let mut seen = 0;
    let start = Instant::now();
    server_side.set_state(state.clone());
    ctx.rt
        .timeout(
            ctx.limit(),
            "the first sync",
            state_reaches(&client, &mut seen, 0, 0),
        )
        .await??;
    let first_sync = start.elapsed();

    let mut measures = Vec::new();
    let mut round = 0;
    for ops in [false, true] {
        let mut latencies = Samples::default();
        let mut build = Duration::ZERO;
        let mut cpu = Duration::ZERO;
        for _ in 0..rounds {
            round += 1;
            let index = data::changed_index(round, keys);
            state[data::key(index)]["v"] = json!(round);
            // The whole new state is built before the window, as the
            // 0.5 rows and the Python bench's whole-state row do.
            let next = if ops {
                None
            } else {
                let building = Instant::now();
                let next = Arc::new(state.clone());
                build += building.elapsed();
                Some(next)
            };
            let op = data::version_op(index, round)?;
            let cpu_start = cpu_time()?;
            let start = Instant::now();
            match next {
                Some(next) => server_side.set_state(next),
                None => server_side
                    .update_state(vec![op])
                    .map_err(|err| format!("update_state failed: {err}"))?,
            }
            ctx.rt
                .timeout(
                    ctx.limit(),
                    "a change",
                    state_reaches(&client, &mut seen, index, round),
                )
                .await??;
            latencies.push(start.elapsed());
            cpu += cpu_time()? - cpu_start;
        }
        let how = if ops {
            "update_state (ops)"
        } else {
            "set_state (diff)"
        };
        let (latency, cpu_name) = if ops {
            ("ops latency", "ops cpu")
        } else {
            ("diff latency", "diff cpu")
        };
        measures.push(Measure::new(
            latency,
            latencies.mean_ms(),
            "ms",
            format!("{how}, {keys} keys; {}", latencies.summary()),
        ));
        if !ops {
            measures.push(Measure::new(
                "diff build",
                build.as_secs_f64() * 1e3 / rounds as f64,
                "ms",
                format!("building each whole new state (a deep clone of {keys} keys), before the window"),
            ));
        }
        measures.push(Measure::new(
            cpu_name,
            cpu.as_secs_f64() * 1e3 / rounds as f64,
            "ms",
            format!("{how}; process CPU per change, server and client"),
        ));
    }
    if *client.state() != state {
        return Err("the client's state differs from the server's".into());
    }
    measures.push(Measure::new(
        "first sync",
        first_sync.as_secs_f64() * 1e3,
        "ms",
        format!("the whole {keys}-key state to a fresh client"),
    ));
    client.async_close().await;
    server.close().await;
    Ok(measures)
}

/// `v07-fanout-1000`: one change of a 1,000-key state shown by a `Group`
/// to 1,000 clients (diffed and encoded once).
pub async fn fanout(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    const KEYS: usize = 1_000;
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(10, 2);
    crate::sys::raise_nofile_limit();
    let mut state = data::state(KEYS);
    let group = Group::new(state.clone());
    let (server, mut incoming) = serve(ctx, Some(group.clone())).await?;
    let mut client_list = Vec::with_capacity(n);
    for _ in 0..n {
        client_list.push(connect(ctx, &server).await?);
        accepted(ctx, &mut incoming).await?;
    }
    let mut seen = vec![0; n];
    for (client, seen) in client_list.iter().zip(&mut seen) {
        ctx.rt
            .timeout(
                ctx.limit(),
                "the first sync",
                state_reaches(client, seen, FANOUT_INDEX, 0),
            )
            .await??;
    }
    let mut latencies = Samples::default();
    let mut cpu = Duration::ZERO;
    for round in 1..=rounds {
        state[data::key(FANOUT_INDEX)]["v"] = json!(round);
        let next = Arc::new(state.clone());
        let cpu_start = cpu_time()?;
        let start = Instant::now();
        group.set_state(next);
        for (client, seen) in client_list.iter().zip(&mut seen) {
            ctx.rt
                .timeout(
                    ctx.limit(),
                    "a change",
                    state_reaches(client, seen, FANOUT_INDEX, round),
                )
                .await??;
        }
        latencies.push(start.elapsed());
        cpu += cpu_time()? - cpu_start;
    }
    for (number, client) in client_list.iter().enumerate() {
        if *client.state() != state {
            return Err(format!("client {number}'s state differs from the server's"));
        }
    }
    for client in &client_list {
        client.close();
    }
    for client in &client_list {
        client.wait_closed().await;
    }
    server.close().await;
    Ok(vec![
        Measure::new(
            "latency shared-state",
            latencies.mean_ms(),
            "ms",
            format!(
                "Group::set_state; {n} clients, {KEYS}-key state; {}",
                latencies.summary()
            ),
        ),
        Measure::new(
            "cpu shared-state",
            cpu.as_secs_f64() * 1e3 / rounds as f64,
            "ms",
            "process CPU per change, server and all clients".into(),
        ),
    ])
}
