//! `v07-rooms-100`: a group's change to members that show it as a part
//! of their state (`Group::join_at`), against members that show it whole
//! (`Group::join`), in one run (issue #30, item 8).
//!
//! Two 0.7 servers, each with 100 reading clients and a group of a
//! 1,000-key state. On one the connections join the group whole; on the
//! other at `/room`, beside an own `/user`. Each round sets one entry's
//! version with `Group::set` (one op) and waits until every reader has
//! it, on the two servers alternately. The rows are the readers' p50 and
//! p99 change latency each way, and the time the `set` call took to hand
//! the change to every member (the group's lock is held that long), per
//! member. Every reader's state is checked at the end.

use std::time::{Duration, Instant};

use juggler_tokio::v07::{Client, Connection, Handlers, Options};
use juggler_tokio::{Group, ServerOptions};
use serde_json::Value;
use tokio::sync::mpsc;

use super::v07::{accepted, connect_with};
use super::{Ctx, Samples};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};
use crate::rt::Server;

/// Where a member shows the group: whole, or at this pointer.
#[derive(Clone, Copy)]
enum Shown {
    Whole,
    At(&'static str),
}

impl Shown {
    /// The pointer of entry `index`'s version in a member's state.
    fn version_pointer(self, index: usize) -> String {
        let at = match self {
            Shown::Whole => "",
            Shown::At(at) => at,
        };
        format!("{at}/{}/v", data::key(index))
    }
}

/// One server and its readers.
struct Side {
    group: Group,
    shown: Shown,
    server: Server,
    readers: Vec<Client>,
    /// The state count each reader has seen.
    seen: Vec<u64>,
    latencies: Samples,
    /// The `Group::set` calls' durations.
    publish: Samples,
}

impl Side {
    async fn start(ctx: Ctx, shown: Shown, state: &Value, n: usize) -> Result<Side, String> {
        let group = Group::new(state.clone());
        let (joined, mut incoming) = mpsc::unbounded_channel::<Connection>();
        let joining = group.clone();
        let handlers = Handlers::new().on_connection(move |connection| {
            let _ = match shown {
                Shown::Whole => joining.join(&connection),
                Shown::At(at) => joining.join_at(&connection, at).and_then(|()| {
                    let user = format!("user {}", connection.id());
                    connection.set("/user", user)
                }),
            };
            let _ = joined.send(connection);
        });
        let options = ServerOptions::default()
            .autoflush_delay(Some(Duration::ZERO))
            .v07_only(handlers);
        let server = ctx
            .rt
            .listen(drop, options)
            .await
            .map_err(|err| format!("listen failed: {err}"))?;
        let mut readers = Vec::with_capacity(n);
        for _ in 0..n {
            readers.push(connect_with(ctx, &server, Options::default()).await?);
            accepted(ctx, &mut incoming).await?;
        }
        Ok(Side {
            group,
            shown,
            server,
            readers,
            seen: vec![0; n],
            latencies: Samples::default(),
            publish: Samples::default(),
        })
    }

    /// Sets entry [`FANOUT_INDEX`] to `version`, until every reader has it.
    async fn round(&mut self, ctx: Ctx, version: u64) -> Result<(), String> {
        let start = Instant::now();
        self.group
            .set(&format!("/{}/v", data::key(FANOUT_INDEX)), version)
            .map_err(|err| format!("the group's set failed: {err}"))?;
        self.publish.push(start.elapsed());
        let pointer = self.shown.version_pointer(FANOUT_INDEX);
        for (client, seen) in self.readers.iter().zip(&mut self.seen) {
            let reached = reaches(client, seen, &pointer, version);
            ctx.rt.timeout(ctx.limit(), "a change", reached).await??;
        }
        self.latencies.push(start.elapsed());
        Ok(())
    }

    /// Checks every reader's whole state, then closes.
    async fn finish(self) -> Result<(Samples, Samples), String> {
        let group_state = self.group.state();
        for (number, client) in self.readers.iter().enumerate() {
            let state = client.state();
            let shown = match self.shown {
                Shown::Whole => Some(&*state),
                Shown::At(at) => state.pointer(at),
            };
            if shown != Some(&*group_state) {
                return Err(format!("reader {number}'s part differs from the group's"));
            }
            if matches!(self.shown, Shown::At(_)) && !state["user"].is_string() {
                return Err(format!("reader {number} lost its own part"));
            }
            client.close();
        }
        self.server.close().await;
        Ok((self.latencies, self.publish))
    }
}

/// Waits until `pointer` in the client's state is `version`.
async fn reaches(
    client: &Client,
    seen: &mut u64,
    pointer: &str,
    version: u64,
) -> Result<(), String> {
    loop {
        if client.state().pointer(pointer).and_then(Value::as_u64) == Some(version) {
            return Ok(());
        }
        let (count, _) = client
            .state_changed(*seen)
            .await
            .map_err(|err| format!("the client closed: {err}"))?;
        *seen = count;
    }
}

/// Runs the scenario with `clients` readers a side (`quick_clients` under
/// `--quick`).
pub async fn run(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    const KEYS: usize = 1_000;
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(200, 10);
    crate::sys::raise_nofile_limit();
    let state = data::state(KEYS);
    let mut whole = Side::start(ctx, Shown::Whole, &state, n).await?;
    let mut rooms = Side::start(ctx, Shown::At("/room"), &state, n).await?;
    for version in 1..=rounds {
        whole.round(ctx, version).await?;
        rooms.round(ctx, version).await?;
    }
    let (whole, whole_publish) = whole.finish().await?;
    let (rooms, rooms_publish) = rooms.finish().await?;
    let per_member_us = |samples: &Samples| samples.quantile_ms(0.5) * 1e3 / n as f64;
    let about = |how: &str, samples: &Samples| {
        format!(
            "{n} readers, {KEYS}-key group, {how}; {}",
            samples.summary()
        )
    };
    let mut rows = Vec::new();
    for (names, how, latencies, publish) in [
        (
            ["p50 whole", "p99 whole", "set, per member, whole"],
            "joined whole",
            &whole,
            &whole_publish,
        ),
        (
            ["p50 rooms", "p99 rooms", "set, per member, rooms"],
            "joined at /room beside an own /user",
            &rooms,
            &rooms_publish,
        ),
    ] {
        let [p50, p99, set] = names;
        rows.push(Measure::new(
            p50,
            latencies.quantile_ms(0.5),
            "ms",
            about(how, latencies),
        ));
        rows.push(Measure::new(
            p99,
            latencies.quantile_ms(0.99),
            "ms",
            about(how, latencies),
        ));
        rows.push(Measure::new(
            set,
            per_member_us(publish),
            "µs",
            format!("median Group::set call ÷ {n} members, {how}"),
        ));
    }
    rows.push(Measure::new(
        "p50 rooms ÷ whole",
        rooms.quantile_ms(0.5) / whole.quantile_ms(0.5),
        "×",
        "the same changes, alternated".to_owned(),
    ));
    Ok(rows)
}
