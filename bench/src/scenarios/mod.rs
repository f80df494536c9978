//! The scenarios, and what they share: the run context, a server with a
//! queue of accepted connections, client/server pairs, latency statistics.
//!
//! Every scenario checks its result as it goes (counts, order, values,
//! final state equality) and fails with a reason instead of reporting a
//! number when something is wrong.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use juggler_tokio::{ClientOptions, Connection, ConnectionOptions, ServerOptions};
use tokio::sync::mpsc;

use crate::report::{Measure, Outcome};
use crate::rt::{Rt, Server};

mod compression;
mod fanout;
mod fanout_processes;
mod full_sync;
mod idle;
mod messages;
pub mod raw;
mod raw_split;
mod rooms;
mod rpc;
mod stalled_member;
mod state;
mod v07;

pub use fanout_processes::run_fanout_clients;
pub use idle::{run_idle_clients, run_idle_server};

/// How a scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct Ctx {
    /// The runtime.
    pub rt: Rt,
    /// The smoke-test sizes (`--quick`) instead of the full ones.
    pub quick: bool,
}

impl Ctx {
    /// `full`, or `quick` under `--quick`.
    pub fn pick<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// The longest a whole scenario may take before it counts as failed.
    pub fn limit(&self) -> Duration {
        Duration::from_secs(self.pick(300, 60))
    }
}

/// A scenario's future.
pub type Run = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// A named scenario.
pub struct Scenario {
    /// The name `--scenario` takes.
    pub name: &'static str,
    /// One line on what it measures.
    pub about: &'static str,
    /// Starts it.
    pub run: fn(Ctx) -> Run,
}

/// This library's scenarios, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "messages-100b",
        about: "one-way 100-byte messages client -> server, msgs/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || messages::run(ctx, 100))),
    },
    Scenario {
        name: "messages-10kb",
        about: "one-way 10 KiB messages client -> server, msgs/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || messages::run(ctx, 10_240))),
    },
    Scenario {
        name: "rpc-sequential",
        about: "juggler-rpc calls, one at a time, calls/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || rpc::run(ctx, 1))),
    },
    Scenario {
        name: "rpc-64",
        about: "juggler-rpc calls, 64 outstanding, calls/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || rpc::run(ctx, 64))),
    },
    Scenario {
        name: "state-1k",
        about: "one-entry change of a 1,000-key state: diff and ops paths, latency and CPU",
        run: |ctx| Box::pin(state::run(ctx, 1_000, 1_000)),
    },
    Scenario {
        name: "state-100k",
        about: "one-entry change of a 100,000-key state: diff and ops paths, latency and CPU",
        run: |ctx| Box::pin(state::run(ctx, 100_000, 10_000)),
    },
    Scenario {
        name: "full-sync-100k",
        about: "first sync of a 100,000-key state to a fresh client",
        run: |ctx| Box::pin(full_sync::run(ctx)),
    },
    Scenario {
        name: "fanout-100",
        about: "one change of a shared 1,000-key state to 100 clients",
        run: |ctx| Box::pin(fanout::run(ctx, 100, 20, false)),
    },
    Scenario {
        name: "fanout-1000",
        about: "one change of a shared 1,000-key state to 1,000 clients",
        run: |ctx| Box::pin(fanout::run(ctx, 1_000, 100, false)),
    },
    Scenario {
        name: "fanout-10000",
        about: "one change of a shared 1,000-key state to 10,000 clients in child processes",
        run: |ctx| Box::pin(fanout_processes::run(ctx, 10_000, 100)),
    },
    Scenario {
        name: "fanout-1000-autoflush",
        about: "fanout-1000 with the default 0.2 s autoflush delay: CPU per change",
        run: |ctx| Box::pin(fanout::run(ctx, 1_000, 100, true)),
    },
    Scenario {
        name: "v07-requests-sequential",
        about: "0.7 requests, one at a time, requests/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || v07::requests(ctx, 1))),
    },
    Scenario {
        name: "v07-requests-64",
        about: "0.7 requests, 64 outstanding, requests/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || v07::requests(ctx, 64))),
    },
    Scenario {
        name: "v07-notify",
        about: "0.7 notifications of 100 bytes server -> client, msgs/s",
        run: |ctx| Box::pin(median_of_runs(ctx, move || v07::notify(ctx))),
    },
    Scenario {
        name: "v07-state-100k",
        about: "0.7: one-entry change of a 100,000-key state, diff and ops paths",
        run: |ctx| Box::pin(v07::state(ctx)),
    },
    Scenario {
        name: "v07-fanout-1000",
        about: "0.7: one change of a Group's 1,000-key state to 1,000 clients",
        run: |ctx| Box::pin(v07::fanout(ctx, 1_000, 100)),
    },
    Scenario {
        name: "v07-group-stalled-100",
        about:
            "0.7: a Group's change to 100 readers, alone and beside a member that stopped reading",
        run: |ctx| Box::pin(stalled_member::run(ctx, 100, 10)),
    },
    Scenario {
        name: "v07-rooms-100",
        about: "0.7: a Group's change to 100 readers showing it at /room, against whole",
        run: |ctx| Box::pin(rooms::run(ctx, 100, 10)),
    },
    Scenario {
        name: "compression-wire",
        about:
            "permessage-deflate: server bytes of the 100k-key sync and 1,000 changes, off and on",
        run: |ctx| Box::pin(compression::wire(ctx)),
    },
    Scenario {
        name: "compression-cpu",
        about: "permessage-deflate: process CPU per 500 B message, off and on",
        run: |ctx| Box::pin(compression::cpu(ctx)),
    },
    Scenario {
        name: "compression-fanout-1000",
        about: "permessage-deflate: SharedState change to 1,000 clients, CPU off and on",
        run: |ctx| Box::pin(compression::fanout(ctx, 1_000, 100)),
    },
    Scenario {
        name: "compression-fanout-1000-large",
        about: "permessage-deflate: 100-entry SharedState change to 1,000 clients, CPU off and on",
        run: |ctx| Box::pin(compression::fanout_large(ctx, 1_000, 100)),
    },
    Scenario {
        name: "idle-memory-1000-deflate",
        about: "server memory per idle connection with permessage-deflate, 1,000 clients",
        run: |ctx| Box::pin(idle::run_with(ctx, 1_000, 100, true)),
    },
    Scenario {
        name: "idle-memory-1000",
        about: "server memory per idle connection, 1,000 clients in a child process",
        run: |ctx| Box::pin(idle::run(ctx, 1_000, 100)),
    },
    Scenario {
        name: "idle-memory-10000",
        about: "server memory per idle connection, 10,000 clients in a child process",
        run: |ctx| Box::pin(idle::run(ctx, 10_000, 200)),
    },
];

/// How many times the throughput scenarios (messages, RPC) run within one
/// bench run; each reports the median of its runs. One run of them takes
/// about a second and varies by ±25% with how the runtime's threads happen
/// to be scheduled; the Python script and the raw baselines do the same.
pub const THROUGHPUT_RUNS: usize = 3;

/// How many messages the message scenarios send, ours and the raw
/// baselines alike.
pub fn message_count(ctx: Ctx, size: usize) -> u64 {
    match size {
        100 => ctx.pick(500_000, 5_000),
        _ => ctx.pick(50_000, 500),
    }
}

/// How many request/response pairs the call scenarios make with
/// `outstanding` at a time, ours and the raw baselines alike.
pub fn call_count(ctx: Ctx, outstanding: usize) -> usize {
    match outstanding {
        1 => ctx.pick(20_000, 500),
        _ => ctx.pick(200_000, 2_000),
    }
}

/// `concurrency` tasks, each making `per_task` calls of `add(x, 1)`
/// through `add` (a distinct `x` for every call) and checking each answer:
/// the request scenarios of both generations.
pub async fn adds<F, Fut>(
    ctx: Ctx,
    concurrency: usize,
    per_task: usize,
    add: F,
) -> Result<(), String>
where
    F: Fn(i64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<serde_json::Value, String>> + Send,
{
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let add = add.clone();
            ctx.rt.spawn(async move {
                for i in 0..per_task {
                    let x = (task * per_task + i) as i64;
                    let result = add(x).await?;
                    if result != serde_json::json!(x + 1) {
                        return Err(format!("add({x}, 1) returned {result}"));
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in tasks {
        ctx.rt.timeout(ctx.limit(), "the calls", task).await???;
    }
    Ok(())
}

/// Runs `scenario` [`THROUGHPUT_RUNS`] times (once under `--quick`) and
/// reports, for each metric, the median of its values, with all of them in
/// the detail. Any failed run fails the whole.
pub async fn median_of_runs<F, Fut>(ctx: Ctx, mut scenario: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome>,
{
    let mut runs = Vec::new();
    for _ in 0..ctx.pick(THROUGHPUT_RUNS, 1) {
        runs.push(scenario().await?);
    }
    Ok(median_measures(runs))
}

/// The median of each metric of the first run over `runs`.
fn median_measures(mut runs: Vec<Vec<Measure>>) -> Vec<Measure> {
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    runs[0]
        .iter()
        .map(|first| {
            let mut values: Vec<&Measure> = runs
                .iter()
                .filter_map(|run| run.iter().find(|m| m.metric == first.metric))
                .collect();
            let all = values
                .iter()
                .map(|m| crate::report::format_number(m.value))
                .collect::<Vec<_>>()
                .join(", ");
            values.sort_by(|a, b| a.value.total_cmp(&b.value));
            // `values` holds at least `first` itself.
            let median = values[values.len() / 2];
            Measure::new(
                median.metric,
                median.value,
                median.unit,
                format!("median of {} runs ({all}); {}", values.len(), median.detail),
            )
        })
        .collect()
}

/// Runs `future` on a new thread that blocks on the current tokio
/// runtime's handle, as `#[tokio::main]` runs the body of `main`: outside
/// the runtime's workers. Its output comes through the returned receiver.
pub fn as_main_task<T: Send + 'static>(
    future: impl Future<Output = T> + Send + 'static,
) -> tokio::sync::oneshot::Receiver<T> {
    let handle = tokio::runtime::Handle::current();
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = sender.send(handle.block_on(future));
    });
    receiver
}

/// What a thread of the scenario sends through `result`, within the
/// scenario's time limit.
pub async fn from_thread<T>(
    ctx: Ctx,
    what: &str,
    result: tokio::sync::oneshot::Receiver<T>,
) -> Result<T, String> {
    ctx.rt
        .timeout(ctx.limit(), what, result)
        .await?
        .map_err(|_| format!("{what}: the thread died"))
}

/// Connection options of every scenario: changes go out at once
/// (autoflush delay zero), so latency is the library's, not a timer's; and
/// the size limits are raised as an application with large states raises
/// them (the 100,000-key state is 5 MB of text and about 50 MB decoded).
pub fn connection_options() -> ConnectionOptions {
    ConnectionOptions::default()
        .autoflush_delay(Some(Duration::ZERO))
        .max_message_size(64 << 20)
        .max_remote_data_size(1 << 30)
}

/// Server options of every scenario; see [`connection_options`].
pub fn server_options() -> ServerOptions {
    ServerOptions::default().connection(connection_options())
}

/// Client options of every scenario; see [`connection_options`].
pub fn client_options() -> ClientOptions {
    ClientOptions::default().connection(connection_options())
}

/// A listening server whose accepted connections queue in the receiver.
pub async fn serve(rt: Rt) -> Result<(Server, mpsc::UnboundedReceiver<Connection>), String> {
    serve_with(rt, server_options()).await
}

/// [`serve`] with these options.
pub async fn serve_with(
    rt: Rt,
    options: ServerOptions,
) -> Result<(Server, mpsc::UnboundedReceiver<Connection>), String> {
    let (accepted, incoming) = mpsc::unbounded_channel();
    let server = rt
        .listen(
            move |connection| {
                let _ = accepted.send(connection);
            },
            options,
        )
        .await
        .map_err(|err| format!("listen failed: {err}"))?;
    Ok((server, incoming))
}

/// The next accepted connection.
pub async fn next_accepted(
    rt: Rt,
    incoming: &mut mpsc::UnboundedReceiver<Connection>,
) -> Result<Connection, String> {
    rt.timeout(
        Duration::from_secs(10),
        "accepting a connection",
        incoming.recv(),
    )
    .await?
    .ok_or_else(|| "the server stopped accepting".to_owned())
}

/// Connects a client with [`client_options`].
pub async fn connect(rt: Rt, server: &Server) -> Result<Connection, String> {
    rt.connect(server.url(), client_options())
        .await
        .map_err(|err| format!("connect failed: {err}"))
}

/// A server, one client, and the server's side of that client.
pub async fn pair(rt: Rt) -> Result<(Server, Connection, Connection), String> {
    let (server, mut incoming) = serve(rt).await?;
    let client = connect(rt, &server).await?;
    let server_side = next_accepted(rt, &mut incoming).await?;
    Ok((server, client, server_side))
}

/// Latencies (or any durations) of the rounds of a scenario.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The mean in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.total().as_secs_f64() * 1e3 / self.0.len() as f64
    }

    /// The sum of all samples.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    /// The `q` quantile (0..=1) in milliseconds, nearest rank.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        match sorted.len() {
            0 => f64::NAN,
            n => {
                let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
                sorted[rank - 1].as_secs_f64() * 1e3
            }
        }
    }

    /// "n rounds, p50 … p99 … max …" for a detail text.
    pub fn summary(&self) -> String {
        format!(
            "{} rounds, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.len(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.99),
            self.quantile_ms(1.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_runs_takes_each_metrics_middle_value() {
        let run = |a: f64, b: f64| {
            vec![
                Measure::new("rate", a, "msgs/s", format!("run {a}")),
                Measure::new("other", b, "ms", String::new()),
            ]
        };
        let median = median_measures(vec![run(3.0, 10.0), run(1.0, 30.0), run(2.0, 20.0)]);
        assert_eq!(median.len(), 2);
        assert_eq!((median[0].metric, median[0].value), ("rate", 2.0));
        assert!(
            median[0]
                .detail
                .starts_with("median of 3 runs (3.00, 1.00, 2.00); run 2"),
            "{}",
            median[0].detail
        );
        assert_eq!((median[1].metric, median[1].value), ("other", 20.0));
        let single = median_measures(vec![run(5.0, 6.0)]);
        assert_eq!(single[0].detail, "run 5");
    }

    #[test]
    fn samples_statistics() {
        let mut samples = Samples::default();
        for ms in [4, 1, 3, 2] {
            samples.push(Duration::from_millis(ms));
        }
        assert_eq!(samples.mean_ms(), 2.5);
        assert_eq!(samples.quantile_ms(0.5), 2.0);
        assert_eq!(samples.quantile_ms(1.0), 4.0);
    }

    #[test]
    fn scenario_names_are_unique() {
        let mut names: Vec<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SCENARIOS.len());
    }
}
