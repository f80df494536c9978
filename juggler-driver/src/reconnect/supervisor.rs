//! The reconnecting client's task, the same for every generation: rounds
//! of attempts, the open connection, and the waits between.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::{select, Either};
use juggler_core::{CloseReason, Generation};
use tokio::sync::broadcast;
use tracing::Instrument;

use super::backoff::random_unit;
use super::events::{ReconnectEvent, ReconnectEvents};
use super::options::{ReconnectOptions, WhileDisconnected};
use futures_util::future::BoxFuture;

use crate::{ClientOptions, Error, Runtime};

/// What every reconnecting client has, whatever its generation: where it
/// connects, how, and who hears about it.
pub(crate) struct Supervision {
    pub(crate) addresses: Vec<String>,
    pub(crate) options: ReconnectOptions,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) span: tracing::Span,
    /// `None` once the supervisor has ended, which ends every reader.
    events: Mutex<Option<broadcast::Sender<ReconnectEvent>>>,
    /// Subscribed at the start, for the first `events` call.
    first_events: Mutex<Option<broadcast::Receiver<ReconnectEvent>>>,
}

impl Supervision {
    /// Checks the addresses (an empty list or one that is not a WebSocket
    /// URL is [`Error::InvalidAddress`]).
    pub(crate) fn new(
        addresses: Vec<String>,
        options: ReconnectOptions,
        runtime: Arc<dyn Runtime>,
    ) -> Result<Supervision, Error> {
        if addresses.is_empty() {
            return Err(Error::InvalidAddress("no address to connect to".into()));
        }
        for address in &addresses {
            crate::client::Target::parse(address)?;
        }
        let (events, first_events) = broadcast::channel(options.event_capacity.max(1));
        let span = tracing::info_span!("juggler_reconnecting_client", addresses = ?addresses);
        Ok(Supervision {
            addresses,
            options,
            runtime,
            span,
            events: Mutex::new(Some(events)),
            first_events: Mutex::new(Some(first_events)),
        })
    }

    pub(crate) fn emit(&self, event: ReconnectEvent) {
        if let Some(sender) = &*self.events.lock().unwrap_or_else(PoisonError::into_inner) {
            // No reader is fine: events are for whoever listens.
            let _ = sender.send(event);
        }
    }

    /// The events since the start (for the first call) or since this call.
    pub(crate) fn events(&self) -> ReconnectEvents {
        let first = self
            .first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let receiver = first.unwrap_or_else(|| {
            match &*self.events.lock().unwrap_or_else(PoisonError::into_inner) {
                Some(sender) => sender.subscribe(),
                None => broadcast::channel(1).1,
            }
        });
        ReconnectEvents { receiver }
    }

    /// Waits for `connected`, a call's connection, by the
    /// [`WhileDisconnected`] policy: not at all, or up to its limit;
    /// [`Error::Disconnected`] then.
    pub(crate) async fn while_disconnected<T>(
        &self,
        connected: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let WhileDisconnected::Wait(limit) = self.options.while_disconnected else {
            return Err(Error::Disconnected);
        };
        let timer = self.runtime.sleep_until(self.runtime.now() + limit);
        match select(std::pin::pin!(connected), timer).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => Err(Error::Disconnected),
        }
    }

    /// Ends every events reader once it has read what was sent.
    pub(crate) fn end_events(&self) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// What the supervisor needs of a reconnecting client of a generation.
pub(crate) trait Supervised: Send + Sync + 'static {
    /// One connection of the generation.
    type Session: Send + Sync + 'static;
    /// What must live as long as a session is the current one.
    type Installed: Send + 'static;

    fn supervision(&self) -> &Supervision;
    /// Opens a session to `address`.
    fn connect(
        &self,
        address: &str,
        client: ClientOptions,
    ) -> BoxFuture<'static, Result<Self::Session, Error>>;
    fn generation(session: &Self::Session) -> Generation;
    /// Waits until `session` has closed.
    fn closed(session: &Self::Session) -> BoxFuture<'_, CloseReason>;
    /// Makes `session` the current one; `None` (and the session closed)
    /// when the client is closing.
    fn install(self: &Arc<Self>, session: &Self::Session) -> Option<Self::Installed>;
    /// `session` has closed: it is no longer the current one.
    fn uninstall(&self, session: &Self::Session);
    fn is_closing(&self) -> bool;
    /// Waits until the application closes the client.
    fn closing(&self) -> BoxFuture<'_, ()>;
    /// The supervisor has ended.
    fn finish(&self, gave_up: bool);
}

/// Runs until the application closes the client or the attempts give up.
pub(crate) async fn run<C: Supervised>(client: Arc<C>) {
    let span = client.supervision().span.clone();
    let gave_up = attempts(&client).instrument(span).await;
    client.finish(gave_up);
    client.supervision().end_events();
}

/// Returns whether it gave up (rather than being closed).
async fn attempts<C: Supervised>(client: &Arc<C>) -> bool {
    let supervision = client.supervision();
    let options = &supervision.options;
    let runtime = &supervision.runtime;
    // Rounds since the last connection that lasted: they set the delay.
    let mut unsettled_rounds: u32 = 0;
    // Rounds in a row in which nothing connected: they end the attempts.
    let mut failed_rounds: u32 = 0;
    loop {
        let delay = options.backoff.delay(unsettled_rounds, random_unit());
        if !delay.is_zero() {
            tracing::debug!(?delay, "juggler client waits before reconnecting");
            let timer = runtime.sleep_until(runtime.now() + delay);
            if let Either::Right(_) = select(timer, client.closing()).await {
                return false;
            }
        }
        if client.is_closing() {
            return false;
        }
        match connect_any(client).await {
            Attempt::Closing => return false,
            Attempt::Connected(address, session) => {
                failed_rounds = 0;
                let started = runtime.now();
                hold(client, &address, &session).await;
                let lasted = runtime.now().saturating_duration_since(started);
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
                    supervision.emit(ReconnectEvent::GaveUp { failed_rounds });
                    return true;
                }
            }
        }
        if client.is_closing() {
            return false;
        }
    }
}

enum Attempt<S> {
    Connected(String, S),
    Failed,
    Closing,
}

/// One round: the addresses in order, until one connects. The headers
/// are made anew for each attempt.
async fn connect_any<C: Supervised>(client: &Arc<C>) -> Attempt<C::Session> {
    let supervision = client.supervision();
    for address in &supervision.addresses {
        let connecting = client.connect(address, supervision.options.attempt_client());
        let outcome = match select(connecting, client.closing()).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(_) => return Attempt::Closing,
        };
        match outcome {
            Ok(session) => return Attempt::Connected(address.clone(), session),
            Err(err) => {
                tracing::debug!(%address, error = %err, "juggler client could not connect");
                supervision.emit(ReconnectEvent::ConnectFailed {
                    address: address.clone(),
                    error: err.to_string(),
                });
            }
        }
    }
    Attempt::Failed
}

/// Makes `session` the client's until it closes.
async fn hold<C: Supervised>(client: &Arc<C>, address: &str, session: &C::Session) {
    let Some(installed) = client.install(session) else {
        C::closed(session).await;
        return;
    };
    let generation = C::generation(session);
    tracing::info!(%address, %generation, "juggler client connected");
    client.supervision().emit(ReconnectEvent::Connected {
        address: address.to_owned(),
        generation,
    });
    let reason = C::closed(session).await;
    drop(installed);
    client.uninstall(session);
    if client.is_closing() {
        tracing::debug!(%address, ?reason, "juggler client closed");
    } else {
        tracing::info!(%address, ?reason, "juggler client disconnected");
    }
    client.supervision().emit(ReconnectEvent::Disconnected {
        address: address.to_owned(),
        reason,
    });
}
