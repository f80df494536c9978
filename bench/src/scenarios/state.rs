//! `state-1k`, `state-100k`: a one-entry change of a large state, server to
//! client (the usual direction: a server's state shown to a client; the
//! engine is symmetric), by both ways the API offers:
//!
//! - the diff path: `set_local_data` with the whole new state (the engine
//!   diffs it against what was synced);
//! - the ops path: `update_local_data` with one `replace` operation (sent
//!   as is, no diff).
//!
//! Each round changes one entry's version on the server side, then waits on
//! the client's `remote_changes()` until that entry shows the new version. Latency is
//! wall time from the call to that moment (quiet loopback, same process);
//! CPU is the whole process's (both sides) over the same window, from
//! `/proc/self/stat`. The application's own work (building the next state
//! for the diff path, a deep copy) happens before the window opens. At the
//! end, the client's remote data must equal the server's state exactly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use juggler_tokio::RemoteChanges;
use serde_json::json;

use super::{pair, Ctx, Samples};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// Untimed rounds before each path's timed ones, so that the steady state
/// is measured (allocator and caches warm). The first update after a
/// `set_local_data` no longer copies the state (the engine keeps no second
/// copy to diff against), so it is not special.
const WARM_UP: u64 = 3;

/// Runs the scenario with `keys` entries (`quick_keys` under `--quick`).
pub async fn run(ctx: Ctx, keys: usize, quick_keys: usize) -> Outcome {
    let keys = ctx.pick(keys, quick_keys);
    let big = keys >= 100_000;
    let diff_rounds: u64 = ctx.pick(if big { 50 } else { 500 }, 5);
    let ops_rounds: u64 = ctx.pick(5_000, 20);

    let (server, client, server_side) = pair(ctx.rt).await?;
    let (sender, receiver) = (&server_side, &client);
    let mut changes = receiver.remote_changes();
    let mut current = data::state(keys);

    // The first sync: the whole state as one replace.
    let start = Instant::now();
    sender
        .set_local_data(current.clone())
        .map_err(|err| format!("set_local_data failed: {err}"))?;
    let seen = changes
        .changed()
        .await
        .map_err(|err| format!("no first sync: {err}"))?;
    let initial = start.elapsed();
    if *seen != current {
        return Err("the first sync arrived different".to_owned());
    }
    drop(seen);

    let mut round = 0u64;
    let mut diff = Timing::default();
    for i in 0..WARM_UP + diff_rounds {
        round += 1;
        let index = data::changed_index(round, keys);
        current[data::key(index)]["v"] = json!(round);
        let next = Arc::new(current.clone());
        let window = Window::open()?;
        sender
            .set_local_data(next)
            .map_err(|err| format!("set_local_data failed: {err}"))?;
        wait_for_version(&mut changes, index, round).await?;
        if i >= WARM_UP {
            diff.add(window.close()?);
        }
    }

    // What the diff path's caller pays besides the library: building the
    // new state (a deep copy, as the rounds above do before their window),
    // and the diff alone, on this thread (in `set_local_data`, outside the
    // connection's lock).
    let mut build = Samples::default();
    let mut diff_only = Samples::default();
    for sample in 0..ctx.pick(5, 2) {
        let start = Instant::now();
        let before = current.clone();
        build.push(start.elapsed());
        let mut after = before.clone();
        after[data::key(data::changed_index(sample, keys))]["v"] = json!(u64::MAX);
        let start = Instant::now();
        let ops = juggler_core::diff(&before, &after);
        diff_only.push(start.elapsed());
        if ops.len() != 1 {
            return Err(format!("a one-entry change diffed to {} ops", ops.len()));
        }
    }

    // The first update after the diff path's last set is timed on its own:
    // it must not copy the state.
    let mut first_ops = Samples::default();
    let mut ops = Timing::default();
    for i in 0..WARM_UP + ops_rounds {
        round += 1;
        let index = data::changed_index(round, keys);
        current[data::key(index)]["v"] = json!(round);
        let op = data::version_op(index, round)?;
        let window = Window::open()?;
        sender
            .update_local_data(vec![op])
            .map_err(|err| format!("update_local_data failed: {err}"))?;
        wait_for_version(&mut changes, index, round).await?;
        let (wall, cpu) = window.close()?;
        if i == 0 {
            first_ops.push(wall);
        }
        if i >= WARM_UP {
            ops.add((wall, cpu));
        }
    }

    if *receiver.remote_data() != current {
        return Err("the client's remote data differs from the server's state at the end".into());
    }
    if *sender.local_data() != current {
        return Err("the server's local data differs from its state at the end".into());
    }
    client.shutdown().await;
    server.close().await;

    Ok(vec![
        Measure::new(
            "initial sync",
            initial.as_secs_f64() * 1e3,
            "ms",
            format!("{keys} keys, whole state"),
        ),
        Measure::new(
            "diff latency",
            diff.wall.mean_ms(),
            "ms",
            diff.wall.summary(),
        ),
        Measure::new(
            "diff cpu",
            diff.cpu_ms(),
            "ms",
            "process CPU per change, both sides".into(),
        ),
        Measure::new(
            "diff build",
            build.mean_ms(),
            "ms",
            format!(
                "the new state's deep copy, before the window; {}",
                build.summary()
            ),
        ),
        Measure::new(
            "diff compute",
            diff_only.mean_ms(),
            "ms",
            format!(
                "juggler_core::diff alone, one thread; {}",
                diff_only.summary()
            ),
        ),
        Measure::new(
            "first ops latency",
            first_ops.mean_ms(),
            "ms",
            "the first update_local_data after the last set_local_data".into(),
        ),
        Measure::new("ops latency", ops.wall.mean_ms(), "ms", ops.wall.summary()),
        Measure::new(
            "ops cpu",
            ops.cpu_ms(),
            "ms",
            "process CPU per change, both sides".into(),
        ),
    ])
}

/// Waits until the remote data shows entry `index` at `round`.
async fn wait_for_version(
    changes: &mut RemoteChanges,
    index: usize,
    round: u64,
) -> Result<(), String> {
    loop {
        let data = changes
            .changed()
            .await
            .map_err(|err| format!("connection lost waiting for round {round}: {err}"))?;
        // Read and let go of the snapshot at once: holding it would make
        // the next patch copy the whole remote data.
        let version = data::version_of(&data, index);
        drop(data);
        match version {
            Some(version) if version == round => return Ok(()),
            Some(version) if version > round => {
                return Err(format!("round {round} saw version {version}"))
            }
            _ => {}
        }
    }
}

/// Wall and CPU time of one round.
struct Window {
    wall: Instant,
    cpu: Duration,
}

impl Window {
    fn open() -> Result<Window, String> {
        let cpu = cpu_time()?;
        Ok(Window {
            wall: Instant::now(),
            cpu,
        })
    }

    fn close(self) -> Result<(Duration, Duration), String> {
        let wall = self.wall.elapsed();
        let cpu = cpu_time()?.saturating_sub(self.cpu);
        Ok((wall, cpu))
    }
}

/// Wall latencies and summed CPU of a path's rounds.
#[derive(Default)]
struct Timing {
    wall: Samples,
    cpu: Duration,
}

impl Timing {
    fn add(&mut self, (wall, cpu): (Duration, Duration)) {
        self.wall.push(wall);
        self.cpu += cpu;
    }

    /// Mean CPU per round in milliseconds.
    fn cpu_ms(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e3 / self.wall.len().max(1) as f64
    }
}
