//! The command line: commands, flags and the parsers that check each
//! value, so that a bad one is refused naming its argument.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::{HeaderName, HeaderValue};
use serde_json::Value;

/// Watch, call and mock Juggler servers (0.5, 0.6 and 0.7).
///
/// Exit codes: 0 success, 1 the peer answered with an error, 2 the
/// connection failed, 3 timeout, 64 bad input.
#[derive(Debug, Parser)]
#[command(name = "juggler", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the remote state as NDJSON, one line per change.
    Watch(WatchArgs),
    /// Make one request (0.6/0.7) or RPC call (0.5) and print its result.
    Call(CallArgs),
    /// Send one MESSAGE (0.5) and exit once it is written.
    Send(SendArgs),
    /// Serve a JSON file's content as the state to every generation.
    Serve(ServeArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The protocol generation a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenerationArg {
    /// hat-juggler 0.7, hat-gui 0.8: what current Hat front ends speak.
    #[value(name = "0.7")]
    V0_7,
    /// hat-juggler 0.6.
    #[value(name = "0.6")]
    V0_6,
    /// hat-juggler 0.5: local and remote data, messages, RPC.
    #[value(name = "0.5")]
    V0_5,
}

impl From<GenerationArg> for juggler_tokio::Generation {
    fn from(generation: GenerationArg) -> Self {
        match generation {
            GenerationArg::V0_7 => juggler_tokio::Generation::V0_7,
            GenerationArg::V0_6 => juggler_tokio::Generation::V0_6,
            GenerationArg::V0_5 => juggler_tokio::Generation::V0_5,
        }
    }
}

/// How a client reaches a server.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's `ws://` or `wss://` URL.
    #[arg(value_name = "URL", value_parser = parse_url)]
    pub url: String,
    /// The generation the server speaks: 0.7 by default (`send`: 0.5).
    #[arg(long, value_enum)]
    pub generation: Option<GenerationArg>,
    /// A header for the upgrade request, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Basic auth, `user:password` (latin-1, as the Python client).
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_user)]
    pub user: Option<(String, String)>,
    /// Trust the CA certificates of this PEM file for `wss://`.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// Use TLS without verifying the server's certificate.
    #[arg(long)]
    pub insecure: bool,
}

impl ClientArgs {
    /// The generation asked for, 0.7 when none was.
    pub fn generation(&self) -> juggler_tokio::Generation {
        self.generation.unwrap_or(GenerationArg::V0_7).into()
    }
}

/// `juggler watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// After the first state, print each change as `{"patch": [ops]}`.
    #[arg(long)]
    pub patch: bool,
    /// Print only this part of the state, when it changes.
    #[arg(long, value_name = "JSON_POINTER", value_parser = parse_pointer)]
    pub path: Option<String>,
    /// Print notifications (0.6/0.7) and messages (0.5) too.
    #[arg(long)]
    pub events: bool,
    /// Follow the server across restarts and network drops.
    #[arg(long)]
    pub reconnect: bool,
}

/// `juggler call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The request's (0.6/0.7) or action's (0.5) name.
    pub name: String,
    /// The request's data, any JSON (default `null`); on 0.5 a JSON array
    /// of the action's arguments (default `[]`).
    #[arg(value_name = "DATA", value_parser = parse_json)]
    pub data: Option<Value>,
    /// Give up after this many seconds (connecting included).
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = parse_seconds)]
    pub timeout: Duration,
}

/// `juggler send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The message, any JSON.
    #[arg(value_name = "DATA", value_parser = parse_json)]
    pub data: Value,
}

/// `juggler serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The JSON file whose content is the state; reloaded when it changes.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// A JSON object of request or action name to reply; other names are
    /// answered with their own data.
    #[arg(long, value_name = "FILE")]
    pub replies: Option<PathBuf>,
    /// Serve the files of this folder beside the WebSocket.
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,
}

fn parse_url(text: &str) -> Result<String, String> {
    let uri: http::Uri = text.parse().map_err(|err| format!("not a URL: {err}"))?;
    match uri.scheme_str() {
        Some("ws" | "wss") if uri.host().is_some_and(|host| !host.is_empty()) => {
            Ok(text.to_owned())
        }
        Some("ws" | "wss") => Err("the URL names no host".into()),
        _ => Err("not a ws:// or wss:// URL".into()),
    }
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or("a header is `Name: value`, with a colon")?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("`{}` is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| "the header's value has characters a header can't carry".to_string())?;
    Ok((name, value))
}

fn parse_user(text: &str) -> Result<(String, String), String> {
    let (user, password) = text
        .split_once(':')
        .ok_or("basic auth is `user:password`, with a colon")?;
    // Checked here, so that a bad one is refused as the argument it is.
    juggler_tokio::ClientOptions::default()
        .basic_auth(user, password)
        .map_err(|err| err.to_string())?;
    Ok((user.to_owned(), password.to_owned()))
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))
}

fn parse_pointer(text: &str) -> Result<String, String> {
    if text.is_empty() || text.starts_with('/') {
        Ok(text.to_owned())
    } else {
        Err("a JSON pointer is empty or starts with `/`".into())
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.parse().map_err(|_| "not a number of seconds")?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|duration| !duration.is_zero())
        .ok_or_else(|| "seconds must be a positive number".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_websocket_urls_with_a_host() {
        assert!(parse_url("ws://127.0.0.1:23023/ws").is_ok());
        assert!(parse_url("wss://example.org/ws").is_ok());
        assert!(parse_url("http://127.0.0.1/ws").is_err());
        assert!(parse_url("127.0.0.1:23023").is_err());
        assert!(parse_url("ws:///ws").is_err());
    }

    #[test]
    fn headers_are_name_colon_value() {
        let (name, value) = parse_header("X-Token:  abc ").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-token", "abc"));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn pointers_and_seconds_are_checked() {
        assert!(parse_pointer("/a/0").is_ok());
        assert!(parse_pointer("").is_ok());
        assert!(parse_pointer("a").is_err());
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
