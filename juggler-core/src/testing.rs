//! A virtual-time pair of engines wired back to back, for tests.
//!
//! No sockets and no sleeps: [`Pair::drive`] carries frames between the two
//! engines until neither has any, and [`Pair::step`] jumps the clock to the
//! earliest deadline.

use std::time::Instant;

use crate::{CloseReason, Config, Engine, Event, Transmit};

/// One side of a [`Pair`]: an engine and what came out of it.
#[derive(Debug)]
pub struct Side {
    /// The engine.
    pub engine: Engine,
    /// Every event the engine produced, in order.
    pub events: Vec<Event>,
    /// Every frame the engine sent, in order.
    pub sent: Vec<Transmit>,
}

impl Side {
    fn new(config: Config) -> Self {
        Side {
            engine: Engine::new(config),
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        self.events
            .iter()
            .filter_map(|event| match event {
                Event::Message(message) => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many DATA frames were applied to remote data so far.
    pub fn changes(&self) -> usize {
        self.events
            .iter()
            .filter(|event| matches!(event, Event::RemoteDataChanged))
            .count()
    }
}

/// Two engines, `a` and `b`, connected by an in-memory "socket" on a
/// virtual clock.
#[derive(Debug)]
pub struct Pair {
    /// The virtual now.
    pub now: Instant,
    /// One peer.
    pub a: Side,
    /// The other peer.
    pub b: Side,
}

impl Pair {
    /// Two fresh engines; the clock starts at `start`.
    pub fn new(start: Instant, a: Config, b: Config) -> Self {
        Pair {
            now: start,
            a: Side::new(a),
            b: Side::new(b),
        }
    }

    /// Carries frames both ways and collects events until nothing moves.
    pub fn drive(&mut self) {
        loop {
            let moved = carry(&mut self.a, &mut self.b) | carry(&mut self.b, &mut self.a);
            drain_events(&mut self.a);
            drain_events(&mut self.b);
            // A closed engine's socket ends; the other side sees the peer go.
            propagate_close(&self.a, &mut self.b);
            propagate_close(&self.b, &mut self.a);
            if !moved {
                break;
            }
        }
    }

    /// The earliest deadline of either engine.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.a.engine.poll_timeout(), self.b.engine.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Jumps the clock to the earliest deadline, fires it and drives.
    /// Returns `false` when there was no deadline.
    pub fn step(&mut self) -> bool {
        let Some(deadline) = self.next_deadline() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.a.engine.handle_timeout(self.now);
        self.b.engine.handle_timeout(self.now);
        self.drive();
        true
    }

    /// Drives and steps until no frame moves and no deadline is open.
    pub fn run(&mut self) {
        self.drive();
        while self.step() {}
    }
}

/// Moves every frame `from` has into `to`; true if any moved. Checks the
/// send queue's byte count on the way: it is the sum of the queued texts,
/// and nothing once they are out (every test and the fuzz target that use
/// a pair check it).
fn carry(from: &mut Side, to: &mut Side) -> bool {
    let mut moved = false;
    let counted = from.engine.queued_transmit_bytes();
    let mut polled = 0;
    while let Some(transmit) = from.engine.poll_transmit() {
        polled += transmit.text.len();
        // A protocol error closes `to`; the pair shows it as a Closed event.
        let _ = to.engine.handle_text(transmit.text.as_str());
        assert!(
            to.engine.remote_data_size() <= to.engine.config().max_remote_data_size,
            "the remote data's estimate passed its limit"
        );
        from.sent.push(transmit);
        moved = true;
    }
    assert_eq!(counted, polled, "the send queue's bytes are its frames'");
    assert_eq!(from.engine.queued_transmit_bytes(), 0);
    moved
}

fn drain_events(side: &mut Side) {
    while let Some(event) = side.engine.poll_event() {
        side.events.push(event);
    }
}

fn propagate_close(closed: &Side, other: &mut Side) {
    if closed.engine.is_closed() && !other.engine.is_closed() {
        other.engine.handle_transport_closed(CloseReason::Remote);
        drain_events(other);
    }
}
