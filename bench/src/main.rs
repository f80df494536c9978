//! `juggler-bench`: end-to-end benchmarks of juggler-rs over loopback.
//!
//! Each scenario runs a server and its clients in this process over
//! 127.0.0.1 (the idle-memory ones put the clients in a child process),
//! checks its result as it goes, and prints one line per number it
//! measured; a scenario whose result is wrong prints `FAILED` and makes the
//! process exit non-zero. `--baseline raw` runs the message and RPC
//! scenarios over a plain WebSocket library instead (tokio-tungstenite on
//! tokio, async-tungstenite on smol), and `--table` turns the
//! `--json` output of several runs (this program's and
//! `python_peer_bench.py`'s) into the comparison table `compare.sh` prints.
//!
//! ```text
//! cargo run --release -p juggler-bench -- [--runtime tokio|smol|both] [--quick]
//!     [--scenario NAME...] [--json] [--baseline raw]
//! juggler-bench --list
//! juggler-bench --table FILE...
//! ```
//!
//! The idle-memory scenarios start this program twice more, as
//! `--idle-server N` (the server, in a fresh process) and `--idle-clients N
//! --url URL` (its clients).
#![forbid(unsafe_code)]

mod data;
mod report;
mod rt;
mod scenarios;
mod sys;

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use report::{Outcome, Subject};
use rt::Rt;
use scenarios::{Ctx, Scenario};

const USAGE: &str = "\
usage: juggler-bench [--runtime tokio|smol|both] [--quick] [--scenario NAME...] [--json]
                     [--baseline raw] [--threads N]
       juggler-bench --list
       juggler-bench --table FILE...

  --runtime R      the runtime(s) to run on (default: both)
  --quick          small sizes: the whole run takes seconds (CI's smoke run)
  --scenario NAME  run only these scenarios (repeat, or list names after it)
  --json           one JSON object per line instead of text
  --baseline raw   run the raw WebSocket baselines instead (on --runtime)
  --threads N      executor threads per runtime (default 2, one per core)
  --list           list the scenarios
  --table FILE...  print the comparison table from --json outputs";

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    runtimes: Vec<Rt>,
    quick: bool,
    scenarios: Vec<String>,
    json: bool,
    raw: bool,
    list: bool,
    table: Vec<String>,
    idle_clients: Option<usize>,
    idle_server: Option<usize>,
    url: Option<String>,
    threads: Option<usize>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut in_list: Option<&'static str> = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--runtime" => {
                parsed.runtimes = match value("--runtime")?.as_str() {
                    "both" => vec![Rt::Tokio, Rt::Smol],
                    name => vec![Rt::parse(name).ok_or(format!("unknown runtime {name}"))?],
                };
            }
            "--quick" => parsed.quick = true,
            "--json" => parsed.json = true,
            "--list" => parsed.list = true,
            "--baseline" => match value("--baseline")?.as_str() {
                "raw" => parsed.raw = true,
                other => return Err(format!("unknown baseline {other} (only raw)")),
            },
            "--scenario" => {
                parsed.scenarios.push(value("--scenario")?);
                in_list = Some("--scenario");
                continue;
            }
            "--table" => {
                parsed.table.push(value("--table")?);
                in_list = Some("--table");
                continue;
            }
            "--idle-clients" => {
                let n = value("--idle-clients")?;
                parsed.idle_clients = Some(n.parse().map_err(|_| format!("bad count {n}"))?);
            }
            "--idle-server" => {
                let n = value("--idle-server")?;
                parsed.idle_server = Some(n.parse().map_err(|_| format!("bad count {n}"))?);
            }
            "--url" => parsed.url = Some(value("--url")?),
            "--threads" => {
                let n = value("--threads")?;
                match n.parse() {
                    Ok(n) if n > 0 => parsed.threads = Some(n),
                    _ => return Err(format!("bad thread count {n}")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other if !other.starts_with("--") => {
                match in_list {
                    Some("--scenario") => parsed.scenarios.push(other.to_owned()),
                    Some(_) => parsed.table.push(other.to_owned()),
                    None => return Err(format!("unexpected argument {other}")),
                }
                continue;
            }
            other => return Err(format!("unknown option {other}")),
        }
        in_list = None;
    }
    if parsed.runtimes.is_empty() {
        parsed.runtimes = vec![Rt::Tokio, Rt::Smol];
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(err) => {
            if !err.is_empty() {
                eprintln!("juggler-bench: {err}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    rt::set_threads(args.threads.unwrap_or(2));
    Rt::prepare_smol();

    if let Some(n) = args.idle_clients {
        let Some(url) = args.url else {
            eprintln!("juggler-bench: --idle-clients needs --url");
            return ExitCode::from(2);
        };
        return match scenarios::run_idle_clients(args.runtimes[0], n, url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("juggler-bench --idle-clients: {err}");
                ExitCode::FAILURE
            }
        };
    }

    if let Some(n) = args.idle_server {
        return match scenarios::run_idle_server(args.runtimes[0], n, args.quick) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        };
    }

    if !args.table.is_empty() {
        let mut lines = String::new();
        for file in &args.table {
            match std::fs::read_to_string(file) {
                Ok(text) => lines.push_str(&text),
                Err(err) => {
                    eprintln!("juggler-bench: cannot read {file}: {err}");
                    return ExitCode::from(2);
                }
            }
            lines.push('\n');
        }
        print!("{}", report::table(&lines));
        return ExitCode::SUCCESS;
    }

    if args.list {
        for scenario in scenarios::SCENARIOS {
            println!("{:<18} {}", scenario.name, scenario.about);
        }
        println!("\n--baseline raw:");
        for scenario in scenarios::raw::SCENARIOS {
            println!("{:<18} {}", scenario.name, scenario.about);
        }
        return ExitCode::SUCCESS;
    }

    for name in &args.scenarios {
        let known = scenarios::SCENARIOS
            .iter()
            .chain(scenarios::raw::SCENARIOS)
            .any(|scenario| scenario.name == name);
        if !known {
            eprintln!("juggler-bench: unknown scenario {name} (see --list)");
            return ExitCode::from(2);
        }
    }
    let selected = |list: &'static [Scenario]| -> Vec<&'static Scenario> {
        list.iter()
            .filter(|s| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
            .collect()
    };

    let mut failed = 0;
    let mut ran = 0;
    // Runs with other than the default thread count are labelled so, so
    // that the table never mixes them up with the default ones.
    let label = |rt: Rt| -> &'static str {
        match (rt, rt::threads()) {
            (rt, 2) => rt.name(),
            (Rt::Tokio, 1) => "tokio/1-thread",
            (Rt::Smol, 1) => "smol/1-thread",
            (Rt::Tokio, _) => "tokio/n-threads",
            (Rt::Smol, _) => "smol/n-threads",
        }
    };
    let (implementation, list) = if args.raw {
        ("raw", scenarios::raw::SCENARIOS)
    } else {
        ("juggler", scenarios::SCENARIOS)
    };
    let plan: Vec<(Subject, Rt, Vec<&'static Scenario>)> = args
        .runtimes
        .iter()
        .map(|&rt| {
            let subject = Subject {
                implementation,
                runtime: label(rt),
            };
            (subject, rt, selected(list))
        })
        .collect();
    for (subject, rt, list) in plan {
        for scenario in list {
            let outcome = run_one(
                scenario,
                Ctx {
                    rt,
                    quick: args.quick,
                },
            );
            report::print(subject, scenario.name, &outcome, args.json);
            ran += 1;
            if outcome.is_err() {
                failed += 1;
            }
        }
    }
    if ran == 0 {
        eprintln!("juggler-bench: no scenario selected");
        return ExitCode::from(2);
    }
    if failed > 0 {
        eprintln!("juggler-bench: {failed} of {ran} scenarios FAILED");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Runs one scenario on its runtime with its time limit; a panic counts as
/// a failure.
fn run_one(scenario: &Scenario, ctx: Ctx) -> Outcome {
    let future = (scenario.run)(ctx);
    let limited = async move {
        ctx.rt
            .timeout(ctx.limit(), "the whole scenario", future)
            .await?
    };
    std::panic::catch_unwind(AssertUnwindSafe(|| ctx.rt.run(limited))).unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(format!("panicked: {text}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, String> {
        parse_args(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn parses_scenario_lists_and_runtimes() {
        let args = parse("--runtime smol --scenario a b d --quick --scenario c --json").unwrap();
        assert_eq!(args.runtimes, vec![Rt::Smol]);
        assert_eq!(args.scenarios, ["a", "b", "d", "c"]);
        assert!(args.quick && args.json && !args.raw);
        assert_eq!(parse("").unwrap().runtimes, vec![Rt::Tokio, Rt::Smol]);
        assert!(parse("--baseline raw").unwrap().raw);
        assert!(parse("--runtime deno").is_err());
        assert!(parse("stray").is_err());
        assert_eq!(parse("--table x y").unwrap().table, ["x", "y"]);
        assert_eq!(parse("--threads 1").unwrap().threads, Some(1));
        assert!(parse("--threads 0").is_err());
    }
}
