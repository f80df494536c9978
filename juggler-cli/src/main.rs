//! `juggler`: watch, call and mock Juggler servers of every generation
//! (0.5, 0.6, 0.7) from the command line, built on juggler-tokio's public
//! API.
//!
//! - `juggler watch URL` prints the remote state as NDJSON;
//! - `juggler call URL NAME [DATA]` makes one request or RPC call;
//! - `juggler send URL DATA` sends one 0.5 message;
//! - `juggler serve FILE.json` serves a file's JSON as the state.
//!
//! Exit codes: 0 success, 1 the peer answered with an error, 2 the
//! connection failed, 3 timeout, 64 bad input. Logs go to stderr,
//! filtered by `RUST_LOG`.
#![forbid(unsafe_code)]

mod call;
mod cli;
mod exit;
mod output;
mod reload;
mod send;
mod serve;
mod tls;
mod view;
mod watch;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::exit::CliError;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // `--help` and `--version` are "errors" printed to stdout.
            let code = if err.use_stderr() { exit::USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,juggler=info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("juggler: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            err.exit_code()
        }
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Watch(args) => {
            let options = tls::client_options(&args.client)?;
            watch::run(args, options).await
        }
        Command::Call(args) => {
            let options = tls::client_options(&args.client)?;
            call::run(args, options).await
        }
        Command::Send(args) => {
            let options = tls::client_options(&args.client)?;
            send::run(args, options).await
        }
        Command::Serve(args) => serve::run(args).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "juggler",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

/// Says on stderr why the command failed: a peer's error data as one line
/// of JSON (for scripts), anything else as a sentence.
fn report(err: &CliError) {
    let mut stderr = std::io::stderr().lock();
    let _ = match err {
        CliError::Remote(data) => writeln!(stderr, "{data}"),
        other => writeln!(stderr, "juggler: {other}"),
    };
}
