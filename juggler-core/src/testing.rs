//! A virtual-time pair of engines wired back to back, for tests.
//!
//! No sockets and no sleeps: [`Pair::drive`] carries frames between the two
//! engines until neither has any, and [`Pair::step`] jumps the clock to the
//! earliest deadline. Any two engines of the [`Driven`] contract make a
//! pair: two 0.5 [`Engine`]s ([`Pair::new`]), or a 0.6/0.7
//! [`ServerEngine`](crate::v07::ServerEngine) and
//! [`ClientEngine`](crate::v07::ClientEngine) ([`Pair::with_engines`]).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use juggler_core::testing::Pair;
//! use juggler_core::v07::{ClientConfig, ClientEngine, ClientEvent, ServerConfig, ServerEngine};
//! use serde_json::json;
//!
//! let start = Instant::now();
//! let server = ServerEngine::new(ServerConfig::v0_7(), json!({"n": 1}), start);
//! let mut pair = Pair::with_engines(start, server, ClientEngine::new(ClientConfig::v0_7()));
//! pair.run(); // the autoflush window passes on the virtual clock
//! assert_eq!(pair.now, start + Duration::from_millis(200));
//! assert_eq!(**pair.b.engine.state(), json!({"n": 1}));
//! assert_eq!(pair.b.events, [ClientEvent::StateChanged]);
//! ```

use std::fmt;
use std::time::Instant;

use crate::{CloseReason, Config, Driven, Engine, Event, Transmit};

/// One side of a [`Pair`]: an engine and what came out of it.
pub struct Side<E: Driven = Engine> {
    /// The engine.
    pub engine: E,
    /// Every event the engine produced, in order.
    pub events: Vec<E::Event>,
    /// Every frame the engine sent, in order.
    pub sent: Vec<Transmit>,
    /// What must hold of the engine after every frame it takes.
    check: fn(&E),
}

impl<E: Driven + fmt::Debug> fmt::Debug for Side<E>
where
    E::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Side")
            .field("engine", &self.engine)
            .field("events", &self.events)
            .field("sent", &self.sent)
            .finish()
    }
}

impl<E: Driven> Side<E> {
    fn with_check(engine: E, check: fn(&E)) -> Self {
        Side {
            engine,
            events: Vec::new(),
            sent: Vec::new(),
            check,
        }
    }
}

impl Side {
    fn new(config: Config) -> Self {
        Side::with_check(Engine::new(config), |engine| {
            assert!(
                engine.remote_data_size() <= engine.config().max_remote_data_size,
                "the remote data's estimate passed its limit"
            );
        })
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
pub struct Pair<A: Driven = Engine, B: Driven = Engine> {
    /// The virtual now.
    pub now: Instant,
    /// One peer.
    pub a: Side<A>,
    /// The other peer.
    pub b: Side<B>,
}

impl<A: Driven + fmt::Debug, B: Driven + fmt::Debug> fmt::Debug for Pair<A, B>
where
    A::Event: fmt::Debug,
    B::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pair")
            .field("now", &self.now)
            .field("a", &self.a)
            .field("b", &self.b)
            .finish()
    }
}

impl Pair {
    /// Two fresh 0.5 engines; the clock starts at `start`.
    pub fn new(start: Instant, a: Config, b: Config) -> Self {
        Pair {
            now: start,
            a: Side::new(a),
            b: Side::new(b),
        }
    }
}

impl<A: Driven, B: Driven> Pair<A, B> {
    /// Two engines of any generation made by the caller; the clock starts
    /// at `start`.
    pub fn with_engines(start: Instant, a: A, b: B) -> Self {
        Pair {
            now: start,
            a: Side::with_check(a, |_| {}),
            b: Side::with_check(b, |_| {}),
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
fn carry<F: Driven, T: Driven>(from: &mut Side<F>, to: &mut Side<T>) -> bool {
    let mut moved = false;
    let counted = from.engine.queued_bytes();
    let mut polled = 0;
    while let Some(transmit) = from.engine.poll_transmit() {
        polled += transmit.text.len();
        // A protocol error closes `to`; the pair shows it as a Closed event.
        let _ = to.engine.handle_text(transmit.text.as_str());
        (to.check)(&to.engine);
        from.sent.push(transmit);
        moved = true;
    }
    assert_eq!(counted, polled, "the send queue's bytes are its frames'");
    assert_eq!(from.engine.queued_bytes(), 0);
    moved
}

fn drain_events<E: Driven>(side: &mut Side<E>) {
    while let Some(event) = side.engine.poll_event() {
        side.events.push(event);
    }
}

fn propagate_close<C: Driven, O: Driven>(closed: &Side<C>, other: &mut Side<O>) {
    if closed.engine.is_closed() && !other.engine.is_closed() {
        other.engine.handle_transport_closed(CloseReason::Remote);
        drain_events(other);
    }
}
