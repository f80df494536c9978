//! `fanout-100`, `fanout-1000`: one change of a shared 1,000-key state,
//! pushed by the server to N clients.
//!
//! The server holds N connections (the clients are in the same process).
//! Each round changes one entry of the shared state, makes the new state
//! one `Arc<Value>`, and hands it to every server-side connection (see
//! [`Publisher`]); latency is from there until every client has seen the
//! entry at the new version. The rounds run twice: first with
//! `set_local_data(arc.clone())` on each connection (a diff and an encoding
//! per connection), then with the shared-state API (`SharedState::set`,
//! one diff and one encoding, then `set_local_data_shared` on each). At the
//! end every client's remote data must equal the server's state.
//!
//! `fanout-1000-autoflush` runs the same with the server's default
//! autoflush delay (0.2 s) instead of zero: its latencies hold the timer,
//! its CPU figures (and their ratio) are what the shared state saves there.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use juggler_tokio::{Connection, ConnectionOptions, SharedState, Value};
use serde_json::json;
use tokio::sync::mpsc;

use super::{connect, connection_options, next_accepted, serve_with, server_options, Ctx, Samples};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// How a round hands the new state to every server-side connection.
///
/// `PerConnection` is what the scenario was first written for; switching
/// a caller to the shared-state API is the one-line change from
/// `Publisher::PerConnection` to `Publisher::shared(...)`.
enum Publisher {
    /// `set_local_data(state.clone())` on each connection: each diffs the
    /// new state against what it synced and encodes its own frame.
    PerConnection,
    /// `SharedState::set` (one diff, one encoding), then
    /// `set_local_data_shared` on each connection (the same frame bytes).
    Shared(SharedState),
}

impl Publisher {
    /// The shared-state publisher, starting from `synced`: the version every
    /// connection holds now (the fast path needs the very same `Arc`).
    fn shared(synced: &Arc<Value>) -> Self {
        Publisher::Shared(SharedState::new(synced.clone()))
    }

    fn publish(&mut self, connections: &[Connection], state: &Arc<Value>) -> Result<(), String> {
        match self {
            Publisher::PerConnection => {
                for connection in connections {
                    connection
                        .set_local_data(state.clone())
                        .map_err(|err| format!("set_local_data failed: {err}"))?;
                }
            }
            Publisher::Shared(shared) => {
                let change = shared.set(state.clone());
                for connection in connections {
                    connection
                        .set_local_data_shared(&change)
                        .map_err(|err| format!("set_local_data_shared failed: {err}"))?;
                }
            }
        }
        Ok(())
    }
}

/// The size of the shared state.
pub(super) const KEYS: usize = 1_000;

/// Runs the scenario with `clients` clients (`quick_clients` under
/// `--quick`); with the default autoflush delay on the server when
/// `default_autoflush`, otherwise with none.
pub async fn run(
    ctx: Ctx,
    clients: usize,
    quick_clients: usize,
    default_autoflush: bool,
) -> Outcome {
    let n = ctx.pick(clients, quick_clients);
    // CPU is read in 10 ms ticks: the autoflush variant's windows hold the
    // 0.2 s timer, so it takes more rounds for a steady figure.
    let rounds: u64 = ctx.pick(if default_autoflush { 30 } else { 10 }, 2);
    crate::sys::raise_nofile_limit();

    let mut options = server_options();
    if default_autoflush {
        let mut connection = connection_options();
        connection.autoflush = ConnectionOptions::default().autoflush;
        options = options.connection(connection);
    }
    let (server, mut incoming) = serve_with(ctx.rt, options).await?;
    let mut client_connections = Vec::with_capacity(n);
    let mut server_connections = Vec::with_capacity(n);
    for _ in 0..n {
        client_connections.push(connect(ctx.rt, &server).await?);
        server_connections.push(next_accepted(ctx.rt, &mut incoming).await?);
    }

    // Every client reports (its number, the version it sees) on each change.
    let (reports, reported) = mpsc::unbounded_channel::<(usize, Option<u64>)>();
    for (number, client) in client_connections.iter().enumerate() {
        let mut changes = client.remote_changes();
        let reports = reports.clone();
        drop(ctx.rt.spawn(async move {
            while let Ok(data) = changes.changed().await {
                let version = data::version_of(&data, FANOUT_INDEX);
                drop(data);
                if reports.send((number, version)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(reports);

    let clients = InProcess {
        ctx,
        reported,
        seen: vec![None; n],
    };
    let fanned = fan_out(&server_connections, rounds, clients).await?;
    let state = &fanned.state;

    for (number, client) in client_connections.iter().enumerate() {
        if *client.remote_data() != *state {
            return Err(format!(
                "client {number}'s remote data differs from the server's state"
            ));
        }
    }
    for client in &client_connections {
        client.close();
    }
    for client in &client_connections {
        client.wait_closed().await;
    }
    server.close().await;

    let mut measures = fanned.measures(
        rounds,
        ["cpu", "cpu shared-state"],
        &format!("{n} clients, {KEYS}-key state"),
        "process CPU per change, server and all clients",
    );
    measures.push(Measure::new(
        "cpu shared ÷ per-connection",
        fanned.shared.cpu.as_secs_f64() / fanned.per_connection.cpu.as_secs_f64().max(1e-9),
        "×",
        "process CPU per change with SharedState + set_local_data_shared over the same with \
         set_local_data per connection"
            .to_owned(),
    ));
    Ok(measures)
}

/// What [`fan_out`] measured.
pub(super) struct FannedOut {
    /// The first sync of the whole state (round 0).
    pub(super) initial: Duration,
    /// The rounds of `set_local_data` on each connection.
    pub(super) per_connection: Rounds,
    /// The rounds of `SharedState` and `set_local_data_shared`.
    pub(super) shared: Rounds,
    /// The state as of the last round.
    pub(super) state: Value,
}

impl FannedOut {
    /// Each publisher's latency and CPU per change, and the first sync:
    /// `cpu` names the CPU rows (per connection, shared), `clients` says
    /// where the clients are, `cpu_scope` what the CPU counts.
    pub(super) fn measures(
        &self,
        rounds: u64,
        cpu: [&'static str; 2],
        clients: &str,
        cpu_scope: &str,
    ) -> Vec<Measure> {
        let mut measures = Vec::new();
        let publishers = [
            (
                &self.per_connection,
                "latency",
                cpu[0],
                "set_local_data per connection",
            ),
            (
                &self.shared,
                "latency shared-state",
                cpu[1],
                "SharedState + set_local_data_shared",
            ),
        ];
        for (measured, latency, cpu, how) in publishers {
            measures.push(Measure::new(
                latency,
                measured.latencies.mean_ms(),
                "ms",
                format!(
                    "{how}; {clients}; {}; publish loop {:.3} ms/round",
                    measured.latencies.summary(),
                    measured.publish_time.as_secs_f64() * 1e3 / rounds as f64
                ),
            ));
            measures.push(Measure::new(
                cpu,
                measured.cpu.as_secs_f64() * 1e3 / rounds as f64,
                "ms",
                format!("{how}; {cpu_scope}"),
            ));
        }
        measures.push(Measure::new(
            "initial sync",
            self.initial.as_secs_f64() * 1e3,
            "ms",
            format!("the whole state to every client; {clients}"),
        ));
        measures
    }
}

/// One publisher's rounds.
#[derive(Default)]
pub(super) struct Rounds {
    /// From the publish until every client saw the change.
    pub(super) latencies: Samples,
    /// In the publish loop itself, all rounds.
    pub(super) publish_time: Duration,
    /// Process CPU over the rounds' windows.
    pub(super) cpu: Duration,
}

/// The clients of a fan-out, as the server side waits for them.
pub(super) trait Clients: Send {
    /// Returns once every client shows `version` of the changed entry.
    fn all_saw(&mut self, version: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// Clients in this process, each reporting (its number, the version it
/// sees) on every change.
struct InProcess {
    ctx: Ctx,
    reported: mpsc::UnboundedReceiver<(usize, Option<u64>)>,
    seen: Vec<Option<u64>>,
}

impl Clients for InProcess {
    async fn all_saw(&mut self, version: u64) -> Result<(), String> {
        self.ctx
            .rt
            .timeout(
                self.ctx.limit(),
                "a change to reach every client",
                wait_all(&mut self.reported, &mut self.seen, version),
            )
            .await?
    }
}

/// Syncs the whole state to every one of `connections` (round 0), then
/// makes `rounds` one-entry changes with each publisher in turn, per
/// connection first, each awaited until all `clients` saw it.
pub(super) async fn fan_out(
    connections: &[Connection],
    rounds: u64,
    mut clients: impl Clients,
) -> Result<FannedOut, String> {
    let mut state = data::state(KEYS);
    let mut last = Arc::new(state.clone());
    let start = Instant::now();
    Publisher::PerConnection.publish(connections, &last)?;
    clients.all_saw(0).await?;
    let initial = start.elapsed();

    let mut round = 0;
    let mut measured = [Rounds::default(), Rounds::default()];
    for (shared_api, measured) in [false, true].into_iter().zip(&mut measured) {
        let mut publisher = if shared_api {
            Publisher::shared(&last)
        } else {
            Publisher::PerConnection
        };
        for _ in 0..rounds {
            round += 1;
            state[data::key(FANOUT_INDEX)]["v"] = json!(round);
            let next = Arc::new(state.clone());
            let cpu_start = cpu_time()?;
            let start = Instant::now();
            publisher.publish(connections, &next)?;
            measured.publish_time += start.elapsed();
            clients.all_saw(round).await?;
            measured.latencies.push(start.elapsed());
            measured.cpu += cpu_time()? - cpu_start;
            last = next;
        }
    }
    let [per_connection, shared] = measured;
    Ok(FannedOut {
        initial,
        per_connection,
        shared,
        state,
    })
}

/// Waits until every client has reported `version`; `seen` holds the last
/// version each client reported.
pub(super) async fn wait_all(
    reported: &mut mpsc::UnboundedReceiver<(usize, Option<u64>)>,
    seen: &mut [Option<u64>],
    version: u64,
) -> Result<(), String> {
    let mut missing = seen.iter().filter(|v| **v != Some(version)).count();
    while missing > 0 {
        let (number, got) = reported.recv().await.ok_or("the clients' reports ended")?;
        match got {
            Some(got) if got > version => {
                return Err(format!(
                    "client {number} saw version {got} in round {version}"
                ))
            }
            Some(got) if got == version && seen[number] != Some(version) => {
                seen[number] = Some(version);
                missing -= 1;
            }
            _ => {}
        }
    }
    Ok(())
}
