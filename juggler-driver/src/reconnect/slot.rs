//! Which connection a reconnecting client of either generation is on: the
//! current one, the last closed one whose messages are still being read,
//! and how the client ended.

use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use super::events::ClientStatus;
use crate::Error;

/// Waits until `check`, run under `state`'s lock, gives a value; woken by
/// `notify`, which is enabled before each check so no wake is lost.
pub(crate) async fn wait_on<S, T>(
    state: &Mutex<S>,
    notify: &Notify,
    mut check: impl FnMut(&mut S) -> Option<T>,
) -> T {
    loop {
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        let found = check(&mut state.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(value) = found {
            return value;
        }
        notified.await;
    }
}

/// A call's error once its connection is gone: the client is
/// [`Error::Disconnected`], not closed.
pub(crate) fn lost_connection(err: Error) -> Error {
    match err {
        Error::Closed => Error::Disconnected,
        other => other,
    }
}

/// A connection of some generation, as the slot needs it.
pub(crate) trait Session: Clone {
    fn is_open(&self) -> bool;
}

impl Session for crate::Connection {
    fn is_open(&self) -> bool {
        crate::Connection::is_open(self)
    }
}

impl Session for crate::v07::Client {
    fn is_open(&self) -> bool {
        crate::v07::Client::is_open(self)
    }
}

pub(crate) struct Slot<S> {
    /// The connection, from its install until it is seen closed.
    current: Option<S>,
    /// The last connection seen closed, with its epoch, until the
    /// messages it still holds are taken: one closed connection is kept,
    /// not a list.
    draining: Option<(S, u64)>,
    /// Counts installed connections.
    pub(crate) epoch: u64,
    pub(crate) closing: bool,
    /// The supervisor has ended.
    pub(crate) finished: bool,
    /// It ended because `max_failed_rounds` rounds failed (not by a close).
    pub(crate) gave_up: bool,
}

impl<S: Session> Slot<S> {
    pub(crate) fn new() -> Self {
        Slot {
            current: None,
            draining: None,
            epoch: 0,
            closing: false,
            finished: false,
            gave_up: false,
        }
    }

    pub(crate) fn status(&self) -> ClientStatus {
        if self.gave_up {
            ClientStatus::GaveUp
        } else if self.closing || self.finished {
            ClientStatus::Closed
        } else if self.current.is_some() {
            ClientStatus::Connected
        } else {
            ClientStatus::Connecting
        }
    }

    /// Why nothing more will come: closed by the application, or given up.
    pub(crate) fn ended(&self) -> Option<Error> {
        if self.closing {
            Some(Error::Closed)
        } else if self.gave_up {
            Some(Error::Disconnected)
        } else {
            None
        }
    }

    /// The installed connection, open or not.
    pub(crate) fn current(&self) -> Option<&S> {
        self.current.as_ref()
    }

    /// The installed connection if it is open; `Err` with the one that
    /// closed, now detached, if it is not.
    pub(crate) fn open(&mut self) -> Result<Option<S>, &S> {
        let open = match &self.current {
            Some(current) => current.is_open(),
            None => return Ok(None),
        };
        if open {
            return Ok(self.current.clone());
        }
        match self.detach() {
            Some(closed) => Err(closed),
            None => Ok(None),
        }
    }

    /// Moves the current connection to the draining one, and returns it.
    pub(crate) fn detach(&mut self) -> Option<&S> {
        let current = self.current.take()?;
        self.draining = Some((current, self.epoch));
        self.draining.as_ref().map(|(draining, _)| draining)
    }

    /// Makes `session` the current connection; returns its epoch.
    pub(crate) fn install(&mut self, session: S) -> u64 {
        self.epoch += 1;
        self.current = Some(session);
        self.epoch
    }

    /// The connection whose messages to read next after those of epoch
    /// `drained` (the draining one first), or why there will be none.
    pub(crate) fn next_to_drain(&self, drained: u64) -> Option<Result<(S, u64), Error>> {
        let draining = self
            .draining
            .as_ref()
            .filter(|(_, epoch)| *epoch > drained)
            .cloned();
        let current = self
            .current
            .as_ref()
            .filter(|_| self.epoch > drained)
            .map(|current| (current.clone(), self.epoch));
        match draining.or(current) {
            Some(found) => Some(Ok(found)),
            None => self.ended().map(Err),
        }
    }

    /// Every message of the connection of `epoch` is taken.
    pub(crate) fn drained(&mut self, epoch: u64) {
        if self.draining.as_ref().is_some_and(|(_, e)| *e == epoch) {
            self.draining = None;
        }
    }

    /// The application closes the client: the connection to close.
    pub(crate) fn close(&mut self) -> Option<S> {
        self.closing = true;
        self.current.clone()
    }

    /// The supervisor has ended, closed or given up.
    pub(crate) fn finish(&mut self, gave_up: bool) {
        self.detach();
        self.finished = true;
        self.gave_up = gave_up && !self.closing;
    }
}
