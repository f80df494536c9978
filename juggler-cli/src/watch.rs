//! `juggler watch`: the remote state as NDJSON, one line per change.

use std::time::Duration;

use futures_util::StreamExt;
use juggler_tokio::{v07, Backoff, ClientOptions, CloseReason, Generation};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::cli::WatchArgs;
use crate::exit::CliError;
use crate::output;
use crate::view::View;

/// How one connection's watch ended.
enum Ended {
    /// The connection closed, for this reason.
    Closed(CloseReason),
    /// Nobody reads stdout any more.
    StdoutClosed,
}

/// What the watch prints.
struct Printer {
    view: View,
    events: bool,
}

impl Printer {
    fn state(&mut self, state: &Value) -> Result<(), output::Closed> {
        match self.view.next_line(state) {
            Some(line) => output::line(&line),
            None => Ok(()),
        }
    }

    fn event(&self, line: impl FnOnce() -> Value) -> Result<(), output::Closed> {
        if self.events {
            output::line(&line())
        } else {
            Ok(())
        }
    }
}

/// Runs `juggler watch` until the connection ends (or, with
/// `--reconnect`, until stdout closes).
pub async fn run(args: WatchArgs, options: ClientOptions) -> Result<(), CliError> {
    let mut printer = Printer {
        view: View::new(args.patch, args.path),
        events: args.events,
    };
    let generation = args.client.generation();
    let url = args.client.url;
    let backoff = Backoff::default()
        .initial_delay(FIRST_RETRY)
        .max_delay(LONGEST_RETRY)
        .jitter(0.0);
    // Rounds in a row that ended without a connection; a connection made
    // starts the count again.
    let mut failed_rounds = 0;
    loop {
        let ended = match generation {
            Generation::V0_5 => watch_0_5(&url, options.clone(), &mut printer).await,
            _ => watch_v07(&url, generation, options.clone(), &mut printer).await,
        };
        match ended {
            Ok(Ended::StdoutClosed) => return Ok(()),
            Ok(Ended::Closed(CloseReason::Local | CloseReason::Remote)) if !args.reconnect => {
                return Ok(())
            }
            Ok(Ended::Closed(reason)) if !args.reconnect => {
                return Err(CliError::Connection(format!("connection lost: {reason}")))
            }
            Err(err) if !args.reconnect => return Err(err),
            Ok(Ended::Closed(reason)) => {
                failed_rounds = 0;
                warn!(%url, "connection closed ({reason}); reconnecting");
            }
            Err(err) => warn!(%url, "{err}; retrying"),
        }
        failed_rounds += 1;
        tokio::time::sleep(backoff.delay(failed_rounds, 0.0)).await;
    }
}

/// Watches a 0.5 server's data (our remote data) and messages.
async fn watch_0_5(
    url: &str,
    options: ClientOptions,
    printer: &mut Printer,
) -> Result<Ended, CliError> {
    let connection = juggler_tokio::connect_with(url, options)
        .await
        .map_err(CliError::connection)?;
    info!(%url, "connected (0.5)");
    let mut changes = connection.remote_changes();
    let mut receiving = true;
    loop {
        let printed = tokio::select! {
            changed = changes.changed() => match changed {
                Ok(data) => printer.state(&data),
                // Every change was seen: the stream ends only after them.
                Err(_) => break,
            },
            // Messages are read even when not printed, so that unread
            // ones never stop the connection's reader.
            message = connection.receive(), if receiving => match message {
                Ok(message) => printer.event(|| json!({ "message": message })),
                Err(_) => {
                    receiving = false;
                    Ok(())
                }
            },
        };
        if printed.is_err() {
            return Ok(Ended::StdoutClosed);
        }
    }
    Ok(Ended::Closed(connection.wait_closed().await))
}

/// Watches a 0.6/0.7 server's state and notifications.
async fn watch_v07(
    url: &str,
    generation: Generation,
    options: ClientOptions,
    printer: &mut Printer,
) -> Result<Ended, CliError> {
    let kept = if printer.events {
        v07::Notifications::Queue
    } else {
        v07::Notifications::Ignore
    };
    let settings = v07::Options::default()
        .generation(generation)
        .notifications(kept);
    let client = v07::connect_with(url, settings, options)
        .await
        .map_err(CliError::connection)?;
    info!(%url, generation = generation.as_str(), "connected");
    // A watcher sends nothing else: its ping tells a server that sniffs
    // the generation (as `juggler serve` does) that it speaks 0.7.
    client.ping().await.map_err(CliError::connection)?;
    // Only kept with `--events`; taken as they come, so that unread ones
    // never stop the client's reader.
    let mut notifications = std::pin::pin!(client.notifications());
    let mut seen = 0;
    loop {
        let printed = tokio::select! {
            changed = client.state_changed(seen) => match changed {
                Ok((count, state)) => {
                    seen = count;
                    printer.state(&state)
                }
                // Every change was seen: it fails only when none is newer.
                Err(_) => break,
            },
            Some(notification) = notifications.next() => printer.event(|| {
                json!({ "notification": { "name": notification.name, "data": notification.data } })
            }),
        };
        if printed.is_err() {
            client.close();
            return Ok(Ended::StdoutClosed);
        }
    }
    client.wait_closed().await;
    let reason = client
        .close_reason()
        .unwrap_or_else(|| CloseReason::Transport("closed".into()));
    Ok(Ended::Closed(reason))
}

/// The first wait before reconnecting, doubling up to the longest.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
