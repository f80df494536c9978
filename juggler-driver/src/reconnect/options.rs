//! Settings of the reconnecting client.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Backoff;
use crate::ClientOptions;

/// What `send`, `flush_local_data` and the other calls that need a
/// connection do while the client is between connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhileDisconnected {
    /// Fail at once with [`Error::Disconnected`](crate::Error::Disconnected).
    /// The default: the caller decides whether the message still matters.
    Fail,
    /// Wait up to this long for the next connection, then fail with
    /// [`Error::Disconnected`](crate::Error::Disconnected).
    Wait(Duration),
}

/// Settings of a [`ReconnectingClient`](super::ReconnectingClient).
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::{Backoff, ReconnectOptions, WhileDisconnected};
///
/// let options = ReconnectOptions::default()
///     .backoff(Backoff::default().max_delay(Duration::from_secs(30)))
///     .max_failed_rounds(Some(10))
///     .while_disconnected(WhileDisconnected::Wait(Duration::from_secs(2)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconnectOptions {
    /// Settings of each connection (TLS, headers, connect timeout, ...).
    pub client: ClientOptions,
    /// The waits between rounds of attempts.
    pub backoff: Backoff,
    /// Rounds in a row in which no address could be connected, after which
    /// the client gives up; `None` (the default) tries forever.
    pub max_failed_rounds: Option<u32>,
    /// A connection that stayed up this long resets the backoff: the next
    /// round after it starts at once. Shorter ones count as failed rounds
    /// for the delay (not for `max_failed_rounds`), so a server that
    /// accepts and drops at once is not hammered. Default 10 s.
    pub stable_after: Duration,
    /// What calls that need a connection do without one.
    pub while_disconnected: WhileDisconnected,
    /// Events kept for a slow [`ReconnectEvents`](super::ReconnectEvents)
    /// reader before it misses some. Default 64.
    pub event_capacity: usize,
    /// Headers made anew for every attempt (a fresh token, say), on top
    /// of [`client`](Self::client)'s; see [`headers`](Self::headers).
    pub headers: Option<HeaderCallback>,
}

/// Makes the headers of one connection attempt.
#[derive(Clone)]
pub struct HeaderCallback(Arc<dyn Fn() -> http::HeaderMap + Send + Sync>);

impl fmt::Debug for HeaderCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HeaderCallback")
    }
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            client: ClientOptions::default(),
            backoff: Backoff::default(),
            max_failed_rounds: None,
            stable_after: Duration::from_secs(10),
            while_disconnected: WhileDisconnected::Fail,
            event_capacity: 64,
            headers: None,
        }
    }
}

impl ReconnectOptions {
    /// Sets the options of each connection.
    #[must_use]
    pub fn client(mut self, options: ClientOptions) -> Self {
        self.client = options;
        self
    }

    /// Sets the backoff.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets how many failed rounds in a row end the attempts (`None`:
    /// never).
    #[must_use]
    pub fn max_failed_rounds(mut self, rounds: Option<u32>) -> Self {
        self.max_failed_rounds = rounds;
        self
    }

    /// Sets how long a connection must last to reset the backoff.
    #[must_use]
    pub fn stable_after(mut self, duration: Duration) -> Self {
        self.stable_after = duration;
        self
    }

    /// Sets what calls do while disconnected.
    #[must_use]
    pub fn while_disconnected(mut self, policy: WhileDisconnected) -> Self {
        self.while_disconnected = policy;
        self
    }

    /// Sets how many events a slow reader may fall behind.
    #[must_use]
    pub fn event_capacity(mut self, events: usize) -> Self {
        self.event_capacity = events;
        self
    }

    /// Calls `headers` before every connection attempt and sends what it
    /// returns with the upgrade request, replacing the
    /// [`client`](Self::client) options' headers of the same names: a
    /// token that expires is fetched anew for each reconnect.
    ///
    /// ```
    /// use juggler_driver::http::{header, HeaderMap, HeaderValue};
    /// use juggler_driver::ReconnectOptions;
    ///
    /// fn current_token() -> String { "abc".into() }
    ///
    /// let options = ReconnectOptions::default().headers(|| {
    ///     let mut headers = HeaderMap::new();
    ///     let bearer = format!("Bearer {}", current_token());
    ///     if let Ok(value) = HeaderValue::from_str(&bearer) {
    ///         headers.insert(header::AUTHORIZATION, value);
    ///     }
    ///     headers
    /// });
    /// ```
    #[must_use]
    pub fn headers(
        mut self,
        headers: impl Fn() -> http::HeaderMap + Send + Sync + 'static,
    ) -> Self {
        self.headers = Some(HeaderCallback(Arc::new(headers)));
        self
    }

    /// The client options of one attempt: [`client`](Self::client) with
    /// the headers of the callback, if there is one.
    pub(crate) fn attempt_client(&self) -> ClientOptions {
        let mut client = self.client.clone();
        if let Some(HeaderCallback(headers)) = &self.headers {
            let mut last = None;
            for (name, value) in headers() {
                // A name of `None` is another value of the previous one.
                match name {
                    Some(name) => {
                        client.headers.insert(name.clone(), value);
                        last = Some(name);
                    }
                    None => {
                        if let Some(name) = &last {
                            client.headers.append(name.clone(), value);
                        }
                    }
                }
            }
        }
        client
    }
}
