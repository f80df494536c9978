//! Keep-alive as a deterministic machine: when to ping, and when a peer
//! that answers nothing is taken for dead.
//!
//! The Juggler 0.5 engine never pings (peers before hat-juggler 0.5.13
//! close on a Juggler `PING`), so drivers find dead peers with WebSocket
//! ping control frames, and this type decides when. Like [`Engine`], it
//! reads no clock: every input carries `now`, and
//! [`poll_timeout`](Liveness::poll_timeout) says when to call again and why.
//!
//! The rules:
//!
//! - a ping every `interval`;
//! - after a ping, anything at all from the peer is an answer; a peer that
//!   sends nothing for `timeout` after the first unanswered ping is dead;
//! - while the application holds the reader back (its receive queue is
//!   full), the answer may be waiting unread in the socket, so the wait
//!   starts again ([`handle_reader_held`](Liveness::handle_reader_held));
//! - a write that makes no progress for
//!   [`write_stall_limit`](Liveness::write_stall_limit) (`interval +
//!   timeout`) means a peer that stopped reading: keep-alive cannot run
//!   while the driver is stuck in that write.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use juggler_core::{Liveness, LivenessAction, LivenessDeadline};
//!
//! let start = Instant::now();
//! let second = Duration::from_secs(1);
//! let mut liveness = Liveness::new(start, 20 * second, 5 * second);
//! assert_eq!(liveness.poll_timeout(), (start + 20 * second, LivenessDeadline::NextPing));
//!
//! let at = start + 20 * second;
//! assert_eq!(liveness.poll(at), Some(LivenessAction::SendPing));
//! liveness.handle_ping_sent(at);
//! assert_eq!(liveness.poll_timeout(), (at + 5 * second, LivenessDeadline::AnswerDue));
//! assert_eq!(liveness.poll(at + 5 * second), Some(LivenessAction::PeerDead));
//! ```
//!
//! [`Engine`]: crate::Engine

use std::time::{Duration, Instant};

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessAction {
    /// Send a ping, then call [`Liveness::handle_ping_sent`].
    SendPing,
    /// The peer answered nothing within the timeout: close the transport.
    PeerDead,
}

/// Why [`Liveness::poll_timeout`] asks to be called then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivenessDeadline {
    /// The next ping is due.
    NextPing,
    /// The answer to a ping is due; without one the peer is dead.
    AnswerDue,
}

/// The keep-alive state of one connection; see the [module](self) docs.
#[derive(Debug, Clone)]
pub struct Liveness {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// Since when an answer is awaited: the first ping not answered yet,
    /// or the last time the wait restarted.
    awaiting_since: Option<Instant>,
}

impl Liveness {
    /// Keep-alive for a connection that opened at `now`: the first ping
    /// goes out at `now + interval`.
    pub fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Liveness {
            interval,
            timeout,
            next_ping: now + interval,
            awaiting_since: None,
        }
    }

    /// Anything arrived from the peer: it is alive.
    pub fn handle_received(&mut self) {
        self.awaiting_since = None;
    }

    /// The application holds the reader back (its receive queue is full):
    /// an answer may be waiting unread, so the wait for it starts again.
    pub fn handle_reader_held(&mut self, now: Instant) {
        if self.awaiting_since.is_some() {
            self.awaiting_since = Some(now);
        }
    }

    /// A ping went out at `now`.
    pub fn handle_ping_sent(&mut self, now: Instant) {
        self.awaiting_since.get_or_insert(now);
        self.next_ping = now + self.interval;
    }

    /// What is due at `now`, if anything. A dead peer comes first.
    pub fn poll(&self, now: Instant) -> Option<LivenessAction> {
        match self.awaiting_since {
            Some(since) if now >= since + self.timeout => Some(LivenessAction::PeerDead),
            _ if now >= self.next_ping => Some(LivenessAction::SendPing),
            _ => None,
        }
    }

    /// The next moment something may be due, and what.
    pub fn poll_timeout(&self) -> (Instant, LivenessDeadline) {
        let ping = (self.next_ping, LivenessDeadline::NextPing);
        match self.awaiting_since {
            Some(since) if since + self.timeout < self.next_ping => {
                (since + self.timeout, LivenessDeadline::AnswerDue)
            }
            _ => ping,
        }
    }

    /// How long one write may make no progress before the peer counts as
    /// one that stopped reading: `interval + timeout`.
    pub fn write_stall_limit(&self) -> Duration {
        self.interval + self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn start() -> (Instant, Liveness) {
        #[allow(clippy::disallowed_methods)] // the virtual clock's origin
        let t0 = Instant::now();
        (t0, Liveness::new(t0, 20 * S, 7 * S))
    }

    #[test]
    fn pings_every_interval_while_the_peer_answers() {
        let (t0, mut liveness) = start();
        for n in 1..=5 {
            let at = t0 + n * 20 * S;
            assert_eq!(liveness.poll(at - S), None);
            assert_eq!(liveness.poll(at), Some(LivenessAction::SendPing));
            liveness.handle_ping_sent(at);
            liveness.handle_received();
            assert_eq!(
                liveness.poll_timeout(),
                (at + 20 * S, LivenessDeadline::NextPing)
            );
        }
    }

    #[test]
    fn a_peer_silent_for_the_timeout_after_a_ping_is_dead() {
        let (t0, mut liveness) = start();
        let ping = t0 + 20 * S;
        liveness.handle_ping_sent(ping);
        assert_eq!(
            liveness.poll_timeout(),
            (ping + 7 * S, LivenessDeadline::AnswerDue)
        );
        assert_eq!(liveness.poll(ping + 7 * S - Duration::from_nanos(1)), None);
        assert_eq!(liveness.poll(ping + 7 * S), Some(LivenessAction::PeerDead));
    }

    #[test]
    fn later_pings_do_not_move_the_answer_deadline() {
        let mut liveness = Liveness::new(start().0, 2 * S, 7 * S);
        let t0 = start().0;
        liveness.handle_ping_sent(t0);
        liveness.handle_ping_sent(t0 + 2 * S);
        liveness.handle_ping_sent(t0 + 4 * S);
        assert_eq!(liveness.poll(t0 + 7 * S), Some(LivenessAction::PeerDead));
    }

    #[test]
    fn the_wait_restarts_while_the_reader_is_held() {
        let (t0, mut liveness) = start();
        let ping = t0 + 20 * S;
        liveness.handle_ping_sent(ping);
        let held = ping + 30 * S;
        liveness.handle_reader_held(held);
        assert_eq!(liveness.poll(held), Some(LivenessAction::SendPing));
        liveness.handle_ping_sent(held);
        // The deadline moved on from the restart, so nothing is due at
        // once, which is what keeps a driver from spinning.
        assert_eq!(
            liveness.poll_timeout(),
            (held + 7 * S, LivenessDeadline::AnswerDue)
        );
        assert_eq!(liveness.poll(held + S), None);
        // Held with nothing awaited, there is nothing to restart.
        liveness.handle_received();
        liveness.handle_reader_held(held + 2 * S);
        assert_eq!(
            liveness.poll_timeout(),
            (held + 20 * S, LivenessDeadline::NextPing)
        );
    }

    #[test]
    fn a_write_may_stall_for_interval_plus_timeout() {
        assert_eq!(start().1.write_stall_limit(), 27 * S);
    }
}
