//! `juggler-bench`: end-to-end benchmarks of juggler-rs over loopback.
//!
//! Each scenario runs a server and its clients in this process over
//! 127.0.0.1 (the idle-memory ones put the clients in a child process),
//! checks its result as it goes, and prints one line per number it
//! measured; a scenario whose result is wrong prints `FAILED` and makes the
//! process exit non-zero. `--baseline raw` runs the message and RPC
//! scenarios over a plain WebSocket library instead (tokio-tungstenite on
//! tokio, async-tungstenite on smol). `bench/table.py` turns the `--json`
//! output of several runs (this program's and `python_peer_bench.py`'s)
//! into the comparison table `compare.sh` prints, with the targets.
//!
//! ```text
//! cargo run --release -p juggler-bench -- [--runtime tokio|smol|both] [--quick]
//!     [--scenario NAME...] [--json] [--baseline raw]
//! juggler-bench --list
//! ```
//!
//! The idle-memory scenarios start this program twice more, as
//! `--idle-server N` (the server, in a fresh process) and `--idle-clients N
//! --url URL` (its clients); `fanout-10000` starts it as `--fanout-clients
//! N --url URL` (a share of its clients).
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

  --runtime R      the runtime(s) to run on (default: both)
  --quick          small sizes: the whole run takes seconds (CI's smoke run)
  --scenario NAME  run only these scenarios (repeat, or list names after it)
  --json           one JSON object per line instead of text
  --baseline raw   run the raw WebSocket baselines instead (on --runtime)
  --threads N      executor threads per runtime (default 2, one per core)
  --list           list the scenarios";

/// What the command line asks for.
#[derive(Debug, Default)]
struct Args {
    runtimes: Vec<Rt>,
    quick: bool,
    scenarios: Vec<String>,
    json: bool,
    raw: bool,
    list: bool,
    help: bool,
    idle_clients: Option<usize>,
    fanout_clients: Option<usize>,
    idle_server: Option<usize>,
    url: Option<String>,
    threads: Option<usize>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut parsed = Args::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("runtime") => {
                let name = parser.value()?.string()?;
                parsed.runtimes = match name.as_str() {
                    "both" => vec![Rt::Tokio, Rt::Smol],
                    name => vec![Rt::parse(name).ok_or(format!("unknown runtime {name}"))?],
                };
            }
            Long("quick") => parsed.quick = true,
            Long("json") => parsed.json = true,
            Long("list") => parsed.list = true,
            Long("baseline") => match parser.value()?.string()?.as_str() {
                "raw" => parsed.raw = true,
                other => return Err(format!("unknown baseline {other} (only raw)").into()),
            },
            Long("scenario") => {
                for name in parser.values()? {
                    parsed.scenarios.push(name.string()?);
                }
            }
            Long("idle-clients") => parsed.idle_clients = Some(parser.value()?.parse()?),
            Long("fanout-clients") => parsed.fanout_clients = Some(parser.value()?.parse()?),
            Long("idle-server") => parsed.idle_server = Some(parser.value()?.parse()?),
            Long("url") => parsed.url = Some(parser.value()?.string()?),
            Long("threads") => match parser.value()?.parse()? {
                0 => return Err("bad thread count 0".into()),
                n => parsed.threads = Some(n),
            },
            Short('h') | Long("help") => parsed.help = true,
            _ => return Err(arg.unexpected()),
        }
    }
    if parsed.runtimes.is_empty() {
        parsed.runtimes = vec![Rt::Tokio, Rt::Smol];
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) if args.help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(args) => args,
        Err(err) => {
            eprintln!("juggler-bench: {err}\n{USAGE}");
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

    if let Some(n) = args.fanout_clients {
        let Some(url) = args.url else {
            eprintln!("juggler-bench: --fanout-clients needs --url");
            return ExitCode::from(2);
        };
        return match scenarios::run_fanout_clients(args.runtimes[0], n, url) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("juggler-bench --fanout-clients: {err}");
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

    fn parse(line: &str) -> Result<Args, lexopt::Error> {
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
        assert!(parse("--table x").is_err());
        assert!(parse("--help").unwrap().help);
        assert_eq!(parse("--threads 1").unwrap().threads, Some(1));
        assert!(parse("--threads 0").is_err());
    }
}
