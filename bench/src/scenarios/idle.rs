//! `idle-memory-1000`, `idle-memory-10000`: server memory per idle
//! connection.
//!
//! Two child processes of this binary keep the number clean: the server
//! runs in a fresh one (`--idle-server N`), so that no heap left over from
//! earlier scenarios absorbs the connections' allocations, and the clients
//! in another (`--idle-clients N --url URL`), so that the resident memory
//! the server process gains while they connect is the server's alone. The
//! number is (RSS after − RSS before) ÷ N, with every connection open and
//! registered; connections have the default options (keep-alive on). The
//! open-file limit is raised to the hard limit in both children.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use juggler_tokio::{ClientOptions, Connection, ServerOptions};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::Ctx;
use crate::report::{Measure, Outcome};
use crate::rt::Rt;
use crate::sys::{raise_nofile_limit, rss_bytes};

/// How many clients connect at once.
const CONNECTING: usize = 32;

/// Runs the scenario with `n` clients (`quick_n` under `--quick`): starts
/// the server process and reports what it measured.
pub async fn run(ctx: Ctx, n: usize, quick_n: usize) -> Outcome {
    run_with(ctx, n, quick_n, false).await
}

/// The environment variable that has the idle clients offer
/// permessage-deflate (the server answers it by default).
const DEFLATE_ENV: &str = "JUGGLER_BENCH_IDLE_DEFLATE";

/// [`run`], the clients offering permessage-deflate when `deflate`.
pub async fn run_with(ctx: Ctx, n: usize, quick_n: usize, deflate: bool) -> Outcome {
    let n = ctx.pick(n, quick_n);
    let mut command = Command::new(this_program()?);
    // The server process passes it on to its client process.
    command.env(DEFLATE_ENV, if deflate { "1" } else { "0" });
    command.args([
        "--idle-server",
        &n.to_string(),
        "--runtime",
        ctx.rt.name(),
        "--threads",
        &crate::rt::threads().to_string(),
    ]);
    if ctx.quick {
        command.arg("--quick");
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the server process: {err}"))?;
    let pid = child.id();
    let (sender, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let mut output = String::new();
        let read = child
            .stdout
            .take()
            .map(|mut stdout| stdout.read_to_string(&mut output));
        let _ = child.wait();
        let _ = sender.send(match read {
            Some(Ok(_)) => Ok(output),
            _ => Err("cannot read the server process".to_owned()),
        });
    });
    let output = match ctx
        .rt
        .timeout(ctx.limit(), "the server process", receiver)
        .await
    {
        Ok(output) => output.map_err(|_| "the server process vanished".to_owned())??,
        Err(err) => {
            kill(pid);
            return Err(err);
        }
    };
    let result: Value = serde_json::from_str(output.trim())
        .map_err(|err| format!("the server process said {output:?}: {err}"))?;
    if let Some(error) = result["error"].as_str() {
        return Err(error.to_owned());
    }
    let number = |name: &str| {
        result[name]
            .as_f64()
            .ok_or(format!("the server process did not report {name}"))
    };
    let (before, after, connect_time) =
        (number("before")?, number("after")?, number("connect_secs")?);
    Ok(vec![
        Measure::new(
            "memory per connection",
            (after - before).max(0.0) / n as f64 / 1024.0,
            "KiB",
            format!(
                "server RSS {:.1} MiB -> {:.1} MiB for {n} idle connections (server in a fresh process, clients in another)",
                before / f64::from(1 << 20),
                after / f64::from(1 << 20)
            ),
        ),
        Measure::new(
            "connections held",
            n as f64,
            "conns",
            format!("all open; connected in {connect_time:.2} s"),
        ),
    ])
}

/// The server process's side (`--idle-server N`): measures and prints one
/// JSON object, `{"before", "after", "connect_secs"}` or `{"error"}`.
pub fn run_idle_server(rt: Rt, n: usize, quick: bool) -> bool {
    let ctx = Ctx { rt, quick };
    let result = rt.run(async move {
        ctx.rt
            .timeout(ctx.limit(), "the idle-memory server", measure(ctx, n))
            .await?
    });
    let line = match &result {
        Ok((before, after, connect_time)) => json!({
            "before": before, "after": after, "connect_secs": connect_time.as_secs_f64(),
        }),
        Err(error) => json!({"error": error}),
    };
    println!("{line}");
    result.is_ok()
}

pub(super) fn this_program() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|err| format!("cannot find this program: {err}"))
}

/// Listens, has the client process open `n` connections, and returns the
/// RSS before and after, and how long connecting took.
async fn measure(ctx: Ctx, n: usize) -> Result<(u64, u64, Duration), String> {
    let limit = raise_nofile_limit();
    if let Some(limit) = limit {
        if limit < n as u64 + 100 {
            return Err(format!(
                "the open-file limit is {limit}, too low for {n} connections"
            ));
        }
    }

    let held: Arc<Mutex<Vec<Connection>>> = Arc::default();
    let on_connection = {
        let held = held.clone();
        move |connection| {
            held.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection)
        }
    };
    let server = ctx
        .rt
        .listen(on_connection, ServerOptions::default())
        .await
        .map_err(|err| format!("listen failed: {err}"))?;
    ctx.rt.sleep(Duration::from_millis(200)).await;
    let before = rss_bytes()?;

    let started = Instant::now();
    let mut child = Command::new(this_program()?)
        .args([
            "--idle-clients",
            &n.to_string(),
            "--url",
            server.url(),
            "--runtime",
            ctx.rt.name(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the client process: {err}"))?;
    let ready = wait_ready(&mut child);
    let outcome = async {
        ctx.rt
            .timeout(ctx.limit(), "the clients to connect", ready)
            .await?
            .map_err(|_| "the client process ended early".to_owned())??;
        let count = || held.lock().unwrap_or_else(PoisonError::into_inner).len();
        while count() < n {
            if started.elapsed() > ctx.limit() {
                return Err(format!("only {} of {n} connections arrived", count()));
            }
            ctx.rt.sleep(Duration::from_millis(10)).await;
        }
        let connect_time = started.elapsed();
        ctx.rt.sleep(Duration::from_millis(500)).await;
        let after = rss_bytes()?;
        let open = held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|connection| connection.is_open())
            .count();
        if open != n || count() != n || server.connection_count() != n {
            return Err(format!(
                "{open} of {n} connections open, {} held, {} registered",
                count(),
                server.connection_count()
            ));
        }
        Ok((before, after, connect_time))
    }
    .await;

    let_go(ctx, child).await;
    held.lock().unwrap_or_else(PoisonError::into_inner).clear();
    server.close().await;
    outcome
}

/// Resolves once the child prints its `ready` line (read on a thread of its
/// own: the read blocks).
fn wait_ready(child: &mut Child) -> oneshot::Receiver<Result<(), String>> {
    let (sender, receiver) = oneshot::channel();
    let stdout = child.stdout.take();
    std::thread::spawn(move || {
        let Some(stdout) = stdout else {
            let _ = sender.send(Err("no stdout".to_owned()));
            return;
        };
        let mut line = String::new();
        let result = match BufReader::new(stdout).read_line(&mut line) {
            Ok(_) if line.starts_with("ready") => Ok(()),
            Ok(_) => Err(format!("the client process said {line:?}")),
            Err(err) => Err(format!("cannot read the client process: {err}")),
        };
        let _ = sender.send(result);
    });
    receiver
}

/// The child's side (`--idle-clients N --url URL`): opens `n` idle client
/// connections to `url`, prints `ready`, and holds them until its standard
/// input closes.
pub fn run_idle_clients(rt: Rt, n: usize, url: String) -> Result<(), String> {
    raise_nofile_limit();
    // Tell the parent once every connection is up, then wait for it.
    let closed = stdin_closed();
    rt.run(async move {
        let deflate = std::env::var(DEFLATE_ENV).is_ok_and(|value| value == "1");
        let options: fn() -> ClientOptions = if deflate {
            || ClientOptions::default().compression(juggler_tokio::Compression::default())
        } else {
            ClientOptions::default
        };
        let all = connect_many(rt, n, &url, options).await?;
        println!("ready {}", all.len());
        std::io::stdout()
            .flush()
            .map_err(|err| format!("cannot write: {err}"))?;
        let _ = closed.await;
        for connection in &all {
            connection.close();
        }
        Ok(())
    })
}

/// Resolves when this process's standard input closes: a child's signal
/// from its parent that it is time to go.
pub(super) fn stdin_closed() -> oneshot::Receiver<()> {
    let (closed, receiver) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        let _ = closed.send(());
    });
    receiver
}

/// `n` client connections to `url`, [`CONNECTING`] at a time, each with
/// the options `options` makes.
pub(super) async fn connect_many(
    rt: Rt,
    n: usize,
    url: &str,
    options: fn() -> ClientOptions,
) -> Result<Vec<Connection>, String> {
    let url = Arc::new(url.to_owned());
    let tasks: Vec<_> = (0..CONNECTING)
        .map(|task| {
            let url = url.clone();
            let share = n / CONNECTING + usize::from(task < n % CONNECTING);
            rt.spawn(async move {
                let mut connections = Vec::with_capacity(share);
                for _ in 0..share {
                    let connection = rt
                        .connect(&url, options())
                        .await
                        .map_err(|err| format!("connect failed: {err}"))?;
                    connections.push(connection);
                }
                Ok::<_, String>(connections)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

/// Lets a child of the scenario go, whatever happened: closes its stdin
/// (its signal to finish) and waits up to 30 s for it to exit; kills it
/// if it has not (so the process id is still its own).
pub(super) async fn let_go(ctx: Ctx, mut child: Child) {
    drop(child.stdin.take());
    let pid = child.id();
    let (exited, exit) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = exited.send(child.wait());
    });
    let waited = ctx
        .rt
        .timeout(Duration::from_secs(30), "a child process to exit", exit);
    if waited.await.is_err() {
        kill(pid);
    }
}

/// Kills a child process that would not exit.
fn kill(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}
