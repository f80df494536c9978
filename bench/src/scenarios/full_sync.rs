//! `full-sync-100k`: the first sync of a 100,000-key state to a fresh
//! client.
//!
//! The server sets its state on every connection as it accepts it; each
//! round connects a new client and times from the start of `connect`
//! until the client's first remote change, then checks that the client
//! got the whole state, exactly. A first round is not timed (the heap
//! grows to hold the state then), as in the Python two-process run, and
//! as the floor's first round is not.
//!
//! Beside it, the floor any JSON library's sync has: `serde_json`
//! encoding the same state to text and decoding the text back into a
//! `Value`, with nothing else (no socket, no framing), as many rounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{connect, server_options, Ctx, Samples};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// Rounds before the timed ones, for the sync and for the floor.
const WARM_UP: usize = 1;

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
    for round in 0..WARM_UP + rounds {
        let cpu_start = cpu_time()?;
        let start = Instant::now();
        let client = connect(ctx.rt, &server).await?;
        let mut changes = client.remote_changes();
        let data = changes
            .changed()
            .await
            .map_err(|err| format!("round {round}: no sync: {err}"))?;
        if round >= WARM_UP {
            times.push(start.elapsed());
            cpu += cpu_time()? - cpu_start;
        }
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

    let mut floor = Samples::default();
    for round in 0..WARM_UP + rounds {
        let start = Instant::now();
        let text = serde_json::to_string(&*state).map_err(|err| err.to_string())?;
        let decoded: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| err.to_string())?;
        if round >= WARM_UP {
            floor.push(start.elapsed());
        }
        if decoded != *state {
            return Err("serde_json's round trip differs".into());
        }
    }

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
        Measure::new(
            "serde floor",
            floor.mean_ms(),
            "ms",
            format!(
                "serde_json to_string + from_str::<Value> of the same state, one thread; {}",
                floor.summary()
            ),
        ),
    ])
}
