//! `fanout-10000`: one change of a shared 1,000-key state, pushed by the
//! server to 10,000 clients in child processes.
//!
//! 10,000 clients and their 10,000 server-side connections do not fit one
//! process's open-file limit (20,000 here), so the clients live in
//! [`CLIENT_PROCESSES`] children of this binary (`--fanout-clients N --url
//! URL`). Each child watches its clients' remote data and prints `seen V`
//! once every one of them shows version `V` of the changed entry. Latency
//! is from the server's publish until the last child said so; the line
//! over a pipe is part of it. The rounds run as `fanout-1000`'s do: per
//! connection, then with `SharedState`. At the end each child checks that
//! every client's remote data equals the state of the last version
//! (`checked N`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use futures_util::future::{select, Either};
use serde_json::json;
use tokio::sync::mpsc;

use super::fanout::{fan_out, wait_all, Clients, KEYS};
use super::idle::{connect_many, let_go, stdin_closed, this_program};
use super::{client_options, next_accepted, serve, Ctx};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};
use crate::rt::Rt;
use crate::sys::raise_nofile_limit;

/// How many processes the clients are spread over.
const CLIENT_PROCESSES: usize = 2;

/// The lines of the children's standard outputs, with the child's number.
type Lines = mpsc::UnboundedReceiver<(usize, String)>;

/// Runs the scenario with `clients` clients (`quick_clients` under
/// `--quick`).
pub async fn run(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(10, 2);
    if let Some(limit) = raise_nofile_limit() {
        if limit < n as u64 + 100 {
            return Err(format!(
                "the open-file limit is {limit}, too low for {n} connections"
            ));
        }
    }
    let (server, mut incoming) = serve(ctx.rt).await?;
    let (line_sender, mut lines) = mpsc::unbounded_channel();
    let mut children = Vec::new();
    for number in 0..CLIENT_PROCESSES {
        let share = n / CLIENT_PROCESSES + usize::from(number < n % CLIENT_PROCESSES);
        let mut child = Command::new(this_program()?)
            .args([
                "--fanout-clients",
                &share.to_string(),
                "--url",
                server.url(),
                "--runtime",
                ctx.rt.name(),
                "--threads",
                &crate::rt::threads().to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start a client process: {err}"))?;
        if let Some(stdout) = child.stdout.take() {
            let line_sender = line_sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line_sender.send((number, line)).is_err() {
                        break;
                    }
                }
            });
        }
        children.push(child);
    }
    drop(line_sender);

    let outcome = async {
        let (server_connections, measures) =
            publish_rounds(ctx, n, rounds, &mut incoming, &mut lines).await?;
        // The children check their clients once their stdin closes.
        for child in &mut children {
            drop(child.stdin.take());
        }
        let said = ctx
            .rt
            .timeout(
                ctx.limit(),
                "the client processes' checks",
                every_child_says(&mut lines, |line| line.starts_with("checked ")),
            )
            .await??;
        let checked: usize = said
            .iter()
            .filter_map(|line| line.strip_prefix("checked ")?.parse::<usize>().ok())
            .sum();
        if checked != n {
            return Err(format!(
                "the client processes checked {checked} of {n} clients"
            ));
        }
        drop(server_connections);
        Ok(measures)
    }
    .await;
    for child in children {
        let_go(ctx, child).await;
    }
    server.close().await;
    outcome
}

/// Accepts the `n` clients and runs [`fan_out`] over them; returns the
/// server's connections (to be dropped after the children's checks) and
/// the measures.
async fn publish_rounds(
    ctx: Ctx,
    n: usize,
    rounds: u64,
    incoming: &mut mpsc::UnboundedReceiver<juggler_tokio::Connection>,
    lines: &mut Lines,
) -> Result<(Vec<juggler_tokio::Connection>, Vec<Measure>), String> {
    let mut server_connections = Vec::with_capacity(n);
    for _ in 0..n {
        server_connections.push(next_accepted(ctx.rt, incoming).await?);
    }
    ctx.rt
        .timeout(
            ctx.limit(),
            "the client processes to connect",
            every_child_says(lines, |line| line.starts_with("ready ")),
        )
        .await??;

    let fanned = fan_out(&server_connections, rounds, Children { ctx, lines }).await?;
    let measures = fanned.measures(
        rounds,
        ["server cpu", "server cpu shared-state"],
        &format!("{n} clients in {CLIENT_PROCESSES} child processes, {KEYS}-key state"),
        "the server process's CPU per change",
    );
    Ok((server_connections, measures))
}

/// The client processes, as the server side waits for them.
struct Children<'a> {
    ctx: Ctx,
    lines: &'a mut Lines,
}

impl Clients for Children<'_> {
    /// Waits until every child said `seen {version}`.
    async fn all_saw(&mut self, version: u64) -> Result<(), String> {
        let expected = format!("seen {version}");
        self.ctx
            .rt
            .timeout(
                self.ctx.limit(),
                "a change to reach every client",
                every_child_says(self.lines, |line| line == expected),
            )
            .await??;
        Ok(())
    }
}

/// The line of each child that `wanted` picks, once every child said one.
/// A child's `error ...` line, or its end, fails the wait.
async fn every_child_says(
    lines: &mut Lines,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<String>, String> {
    let mut said: Vec<Option<String>> = vec![None; CLIENT_PROCESSES];
    while said.iter().any(Option::is_none) {
        let (number, line) = lines.recv().await.ok_or("a client process ended early")?;
        if line.starts_with("error") {
            return Err(format!("client process {number}: {line}"));
        }
        if wanted(&line) {
            said[number] = Some(line);
        }
    }
    Ok(said.into_iter().flatten().collect())
}

/// The child's side (`--fanout-clients N --url URL`): connects `n` clients
/// to `url`, prints `ready N`, then `seen V` each time all of them show
/// version `V` of the changed entry; once its standard input closes,
/// checks every client's remote data against the state of the last
/// version and prints `checked N` (or `error ...`).
pub fn run_fanout_clients(rt: Rt, n: usize, url: String) -> Result<(), String> {
    raise_nofile_limit();
    let mut closed = stdin_closed();
    let result = rt.run(async move {
        let clients = connect_many(rt, n, &url, client_options).await?;
        let (reports, mut reported) = mpsc::unbounded_channel();
        // A callback on each client's driver task, rather than a task per
        // client woken by its change stream: the children are the bulk of
        // the scenario's CPU, and a wake-up per client per round would be
        // the bench's cost, not the library's.
        let watching: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(number, client)| {
                let weak = client.downgrade();
                let reports = reports.clone();
                client.register_change_cb(move || {
                    if let Some(client) = weak.upgrade() {
                        let version = data::version_of(&client.remote_data(), FANOUT_INDEX);
                        let _ = reports.send((number, version));
                    }
                })
            })
            .collect();
        drop(reports);
        say(&format!("ready {n}"))?;

        let mut seen = vec![None; n];
        let mut last = None;
        for version in 0.. {
            let all_seen = std::pin::pin!(wait_all(&mut reported, &mut seen, version));
            match select(all_seen, &mut closed).await {
                Either::Left((result, _)) => result?,
                Either::Right(_) => break,
            }
            say(&format!("seen {version}"))?;
            last = Some(version);
        }
        let last = last.ok_or("closed before the first sync")?;
        let mut expected = data::state(KEYS);
        expected[data::key(FANOUT_INDEX)]["v"] = json!(last);
        for (number, client) in clients.iter().enumerate() {
            if *client.remote_data() != expected {
                return Err(format!(
                    "client {number}'s remote data differs from version {last}"
                ));
            }
        }
        drop(watching);
        for client in &clients {
            client.close();
        }
        Ok(clients.len())
    });
    match result {
        Ok(checked) => say(&format!("checked {checked}")),
        Err(err) => {
            let _ = say(&format!("error {err}"));
            Err(err)
        }
    }
}

/// One line to the parent, at once.
fn say(line: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .map_err(|err| format!("cannot write: {err}"))
}
