//! `full-sync-100k`: the first sync of a 100,000-key state to a fresh
//! client.
//!
//! The server sets its state on every connection as it accepts it; each
//! round connects a new client and times from the start of `connect`
//! until the client's first remote change, then checks that the client
//! got the whole state, exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{connect, server_options, Ctx, Samples};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// Runs the scenario.
pub async fn run(ctx: Ctx) -> Outcome {
    let keys = ctx.pick(100_000, 10_000);
    let rounds = ctx.pick(5, 1);
    let state = Arc::new(data::state(keys));

    let (accepted, mut incoming) = mpsc::unbounded_channel();
    let server_state = state.clone();
    let server = ctx
        .rt
        .listen(
            move |connection| {
                let _ = connection.set_local_data(server_state.clone());
                let _ = accepted.send(connection);
            },
            server_options(),
        )
        .await
        .map_err(|err| format!("listen failed: {err}"))?;

    let mut times = Samples::default();
    let mut cpu = Duration::ZERO;
    for round in 0..rounds {
        let cpu_start = cpu_time()?;
        let start = Instant::now();
        let client = connect(ctx.rt, &server).await?;
        let mut changes = client.remote_changes();
        let data = changes
            .changed()
            .await
            .map_err(|err| format!("round {round}: no sync: {err}"))?;
        times.push(start.elapsed());
        cpu += cpu_time()? - cpu_start;
        if *data != *state {
            return Err(format!("round {round}: the synced state differs"));
        }
        drop(data);
        let server_side = incoming
            .recv()
            .await
            .ok_or("the server stopped accepting")?;
        client.shutdown().await;
        server_side.wait_closed().await;
    }
    server.close().await;

    Ok(vec![
        Measure::new(
            "sync time",
            times.mean_ms(),
            "ms",
            format!("{keys} keys; {}", times.summary()),
        ),
        Measure::new(
            "sync cpu",
            cpu.as_secs_f64() * 1e3 / rounds as f64,
            "ms",
            "process CPU per sync, both sides".into(),
        ),
    ])
}
