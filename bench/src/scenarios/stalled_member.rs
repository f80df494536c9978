//! `v07-group-stalled-100`: what one member that stopped reading costs the
//! others of its group (issue #30).
//!
//! A 0.7 server whose connections join one `Group` (a 1,000-key state,
//! the default policy `SlowMembers::Drop`, send queues of 8 frames) and
//! 100 clients that read. Each round notifies the group (`tick`) and
//! changes one entry of its state (`Group::set_state`), then waits until
//! every reading client has the change: first with those clients alone,
//! then again after a 101st client has joined and stopped reading, its
//! socket and send queue full (64 KiB notifications to it until one has
//! waited a second for room). The rows are the readers' p50 and p99
//! change latency in each phase, and their ratio; the stalled member
//! must have missed every tick of the second phase.

use std::sync::Arc;
use std::time::{Duration, Instant};

use juggler_tokio::v07::{Client, Notifications, Options};
use juggler_tokio::{Group, ServerOptions};
use serde_json::json;

use super::v07::{accepted, connect_with, serve_with, state_reaches};
use super::{Ctx, Samples};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};

/// Runs the scenario with `clients` readers (`quick_clients` under
/// `--quick`).
pub async fn run(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    const KEYS: usize = 1_000;
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(200, 10);
    crate::sys::raise_nofile_limit();
    let mut state = data::state(KEYS);
    let group = Group::new(state.clone());
    let server_options = ServerOptions::default()
        .autoflush_delay(Some(Duration::ZERO))
        .max_send_queue(8);
    let (server, mut incoming) = serve_with(ctx, Some(group.clone()), server_options).await?;
    let reading = Options::default();
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        readers.push(connect_with(ctx, &server, reading.clone()).await?);
        accepted(ctx, &mut incoming).await?;
    }
    let mut changes = Changes {
        group: &group,
        readers: &readers,
        seen: vec![0; n],
        state: &mut state,
        round: 0,
    };
    let alone = changes.measure(ctx, rounds).await?;

    // Keeps one notification unread, then reads nothing more: its socket
    // and then its send queue fill.
    let stalling = Options::default()
        .notifications(Notifications::Queue)
        .receive_queue_size(1);
    let stalled = connect_with(ctx, &server, stalling).await?;
    let stalled_side = accepted(ctx, &mut incoming).await?;
    let pad = json!({"pad": "x".repeat(64 * 1024)});
    let mut padded = 0;
    // Full once a notify to it has waited a whole second for room.
    while let Ok(sent) = ctx
        .rt
        .timeout(
            Duration::from_secs(1),
            "room",
            stalled_side.notify("pad", &pad),
        )
        .await
    {
        sent.map_err(|err| format!("the stalled member closed: {err}"))?;
        padded += 1;
        if padded > 10_000 {
            return Err("the stalled member never filled".into());
        }
    }
    let with_stalled = changes.measure(ctx, rounds).await?;
    drop(changes);
    if group.dropped() < rounds {
        return Err(format!(
            "the stalled member missed {} of {rounds} ticks, not all",
            group.dropped()
        ));
    }
    for (number, client) in readers.iter().enumerate() {
        if *client.state() != state {
            return Err(format!("reader {number}'s state differs from the group's"));
        }
    }
    drop(stalled_side);
    for client in readers.iter().chain([&stalled]) {
        client.close();
    }
    server.close().await;
    let p99_ratio = with_stalled.quantile_ms(0.99) / alone.quantile_ms(0.99);
    let about = |phase: &str, samples: &Samples| {
        format!(
            "{n} readers, {KEYS}-key state, {phase}; {}",
            samples.summary()
        )
    };
    Ok(vec![
        Measure::new(
            "p50 alone",
            alone.quantile_ms(0.5),
            "ms",
            about("no stalled member", &alone),
        ),
        Measure::new(
            "p99 alone",
            alone.quantile_ms(0.99),
            "ms",
            about("no stalled member", &alone),
        ),
        Measure::new(
            "p50 beside stalled",
            with_stalled.quantile_ms(0.5),
            "ms",
            about("one member stalled", &with_stalled),
        ),
        Measure::new(
            "p99 beside stalled",
            with_stalled.quantile_ms(0.99),
            "ms",
            about("one member stalled", &with_stalled),
        ),
        Measure::new(
            "p99 stalled ÷ alone",
            p99_ratio,
            "×",
            format!("{} copies dropped for the stalled member", group.dropped()),
        ),
    ])
}

/// The rounds of changes, across both phases.
struct Changes<'a> {
    group: &'a Group,
    readers: &'a [Client],
    /// The state count each reader has seen.
    seen: Vec<u64>,
    state: &'a mut serde_json::Value,
    round: u64,
}

impl Changes<'_> {
    /// `rounds` changes, each until every reader has it.
    async fn measure(&mut self, ctx: Ctx, rounds: u64) -> Result<Samples, String> {
        let mut latencies = Samples::default();
        for _ in 0..rounds {
            self.round += 1;
            self.state[data::key(FANOUT_INDEX)]["v"] = json!(self.round);
            let start = Instant::now();
            // Never waits on a member: a full queue misses its copy.
            self.group.notify("tick", &json!(self.round)).await;
            self.group.set_state(Arc::new(self.state.clone()));
            for (client, seen) in self.readers.iter().zip(&mut self.seen) {
                let reached = state_reaches(client, seen, FANOUT_INDEX, self.round);
                ctx.rt.timeout(ctx.limit(), "a change", reached).await??;
            }
            latencies.push(start.elapsed());
        }
        Ok(latencies)
    }
}
