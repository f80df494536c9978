//! The reconnecting client's task: rounds of attempts, the open
//! connection, and the waits between.

use std::sync::Arc;

use futures_util::future::{select, Either};
use tracing::Instrument;

use super::backoff::random_unit;
use super::client::Inner;
use super::events::ReconnectEvent;
use crate::Connection;

/// Runs until the application closes the client or the attempts give up.
pub(crate) async fn run(inner: Arc<Inner>) {
    let span = inner.span.clone();
    let gave_up = attempts(&inner).instrument(span).await;
    inner.finish(gave_up);
}

/// Returns whether it gave up (rather than being closed).
async fn attempts(inner: &Arc<Inner>) -> bool {
    let options = &inner.options;
    // Rounds since the last connection that lasted: they set the delay.
    let mut unsettled_rounds: u32 = 0;
    // Rounds in a row in which nothing connected: they end the attempts.
    let mut failed_rounds: u32 = 0;
    loop {
        let delay = options.backoff.delay(unsettled_rounds, random_unit());
        if !delay.is_zero() {
            tracing::debug!(?delay, "juggler client waits before reconnecting");
            let timer = inner.runtime.sleep_until(inner.runtime.now() + delay);
            if let Either::Right(_) = select(timer, std::pin::pin!(inner.closing())).await {
                return false;
            }
        }
        if inner.is_closing() {
            return false;
        }
        match connect_any(inner).await {
            Attempt::Closing => return false,
            Attempt::Connected(address, connection) => {
                failed_rounds = 0;
                let started = inner.runtime.now();
                hold(inner, &address, &connection).await;
                let lasted = inner.runtime.now().saturating_duration_since(started);
                unsettled_rounds = if lasted >= options.stable_after {
                    0
                } else {
                    unsettled_rounds.saturating_add(1)
                };
            }
            Attempt::Failed => {
                failed_rounds = failed_rounds.saturating_add(1);
                unsettled_rounds = unsettled_rounds.saturating_add(1);
                if options
                    .max_failed_rounds
                    .is_some_and(|max| failed_rounds >= max)
                {
                    tracing::warn!(failed_rounds, "juggler client gives up reconnecting");
                    inner.emit(ReconnectEvent::GaveUp { failed_rounds });
                    return true;
                }
            }
        }
        if inner.is_closing() {
            return false;
        }
    }
}

enum Attempt {
    Connected(String, Connection),
    Failed,
    Closing,
}

/// One round: the addresses in order, until one connects.
async fn connect_any(inner: &Arc<Inner>) -> Attempt {
    for address in &inner.addresses {
        let connecting =
            crate::connect(address, inner.options.client.clone(), inner.runtime.clone());
        let outcome =
            match select(std::pin::pin!(connecting), std::pin::pin!(inner.closing())).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(_) => return Attempt::Closing,
            };
        match outcome {
            Ok(connection) => return Attempt::Connected(address.clone(), connection),
            Err(err) => {
                tracing::debug!(%address, error = %err, "juggler client could not connect");
                inner.emit(ReconnectEvent::ConnectFailed {
                    address: address.clone(),
                    error: err.to_string(),
                });
            }
        }
    }
    Attempt::Failed
}

/// Makes `connection` the client's until it closes.
async fn hold(inner: &Arc<Inner>, address: &str, connection: &Connection) {
    let Some(callback) = inner.install(connection) else {
        connection.wait_closed().await;
        return;
    };
    let generation = connection.generation();
    tracing::info!(%address, %generation, connection = connection.id(), "juggler client connected");
    inner.emit(ReconnectEvent::Connected {
        address: address.to_owned(),
        generation,
    });
    let reason = connection.wait_closed().await;
    drop(callback);
    inner.uninstall(connection);
    if inner.is_closing() {
        tracing::debug!(%address, ?reason, "juggler client closed");
    } else {
        tracing::info!(%address, ?reason, "juggler client disconnected");
    }
    inner.emit(ReconnectEvent::Disconnected {
        address: address.to_owned(),
        reason,
    });
}
