//! What the one driver (crate::driver) needs of a 0.5 connection: its
//! reader's batches decoded outside the lock, its writer's look at the
//! engine and keep-alive, and the end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use juggler_core::{
    value_cost, CloseReason, Frame, LivenessDeadline, PatchOperation, ProtocolError, Transmit,
};
use serde_json::Value;

use super::{Shared, State, Wake};
use crate::budget::{Charge, MemoryBudget};
use crate::driver::{Host, ReaderRoom, StreamState, Weight, WriterTurn};
use crate::metrics::ConnectionMetrics;
use crate::reader_steps::{NotText, Received, StreamItem};
use crate::writer_steps::{keep_alive_turn, take_frames, KeepAliveWords};
use crate::writer_wake::WriterWake;
use crate::Runtime;

impl Host for Shared {
    type Incoming = Incoming;

    const KEEP_ALIVE_WORDS: KeepAliveWords = KeepAliveWords {
        dead: "keep-alive timeout",
        stalled: "the peer stopped reading: a write stalled past the keep-alive timeout",
    };

    fn runtime(&self) -> &dyn Runtime {
        &*self.runtime
    }

    fn writer(&self) -> &WriterWake {
        &self.writer
    }

    fn metrics(&self) -> &ConnectionMetrics {
        &self.metrics
    }

    fn stall_limit(&self) -> Option<Duration> {
        self.options.keep_alive.map(|k| k.interval + k.timeout)
    }

    fn close_timeout(&self) -> Duration {
        self.options.close_timeout
    }

    fn reader_room(&self) -> impl std::future::Future<Output = ReaderRoom> + Send {
        self.wait_for_reader_room()
    }

    fn budget_is_full(&self) -> bool {
        self.budget().is_full()
    }

    fn decode(&self, item: StreamItem) -> Incoming {
        let received = Received::within(item, self.options.max_message_size);
        Incoming::decode(received, self.budget())
    }

    fn weigh(incoming: &Incoming) -> Weight {
        Weight {
            frame: match incoming {
                Incoming::NotText(other) => other.is_frame(),
                _ => true,
            },
            cost: match incoming {
                Incoming::Message(_, charge) => charge.bytes(),
                _ => 0,
            },
            ends_stream: matches!(incoming, Incoming::NotText(other) if other.ends_stream()),
        }
    }

    fn hand_over(&self, batch: &mut VecDeque<Incoming>) -> StreamState {
        self.update(Wake::Reader, |state| {
            if let Some(liveness) = &mut state.driver.liveness {
                liveness.handle_received();
            }
            handle_frames(state, batch)
        })
    }

    fn look(&self, now: Instant, batch: &mut Vec<Transmit>) -> WriterTurn {
        self.update(Wake::Writer, |state| look(self, state, now, batch))
    }

    fn written(&self, seq: u64) -> Option<Arc<Value>> {
        self.update(Wake::Writer, |state| {
            state.driver.written = seq;
            state.driver.retired.take()
        })
    }

    fn hand_over_diff(
        &self,
        now: Instant,
        base: &Arc<Value>,
        local: &Arc<Value>,
        ops: Vec<PatchOperation>,
    ) {
        self.update(Wake::Writer, |state| {
            state.engine.handle_timeout_diffed(now, base, local, ops)
        });
    }

    fn ping_sent(&self, now: Instant) {
        self.update(Wake::Writer, |state| {
            if let Some(liveness) = &mut state.driver.liveness {
                liveness.handle_ping_sent(now);
            }
        });
    }

    fn transport_failed(&self, reason: CloseReason) {
        self.update(Wake::Writer, |state| {
            state.engine.handle_transport_closed(reason)
        });
    }

    fn engine_closed(&self) -> impl std::future::Future<Output = Instant> + Send {
        self.wait_engine_closed()
    }

    fn finish(&self, close_timed_out: bool) {
        if close_timed_out {
            self.update(Wake::Writer, |state| state.driver.close_timed_out = true);
        }
        // Dropped outside the lock (it may own the last handle of something
        // whose drop locks again), and before the end is announced, so that
        // what it owns is free by the time `wait_closed` returns.
        let filter = self.update(Wake::Writer, State::take_message_filter);
        drop(filter);
        self.update(Wake::Writer, |state| {
            state.engine.handle_transport_closed(CloseReason::Remote);
            state.driver.done = true;
            report_collapsed(self, state);
            if let Some(reason) = state.engine.close_reason() {
                self.metrics.closed(reason);
            }
        });
    }
}

/// Counts the DATA frames the engine collapsed since last counted.
fn report_collapsed(shared: &Shared, state: &mut State) {
    let collapsed = state.engine.collapsed_data_frames();
    shared
        .metrics
        .collapsed(collapsed - state.driver.collapsed_reported);
    state.driver.collapsed_reported = collapsed;
}

/// Hands frames from the front of `batch` to the engine. Change callbacks
/// read the remote data when they run, so while any are registered a
/// remote data change ends the turn: each callback call then sees the data
/// of its own change.
fn handle_frames(state: &mut State, batch: &mut VecDeque<Incoming>) -> StreamState {
    let one_change = state.has_change_callbacks();
    while let Some(frame) = batch.pop_front() {
        if handle_frame(state, frame) == StreamState::Ended {
            return StreamState::Ended;
        }
        if one_change {
            state.drain_events();
            if state.has_unreported_changes() {
                return StreamState::Open;
            }
        }
    }
    StreamState::Open
}

/// A frame read, classified for the engine, text frames decoded: decoding
/// (JSON parsing) is most of a frame's cost, and done here it does not hold
/// the connection's lock, which the application's `send` and `receive`
/// take.
pub(crate) enum Incoming {
    /// A text frame decoded.
    Frame(Result<Frame, ProtocolError>),
    /// A MESSAGE frame decoded, and what its payload costs
    /// ([`value_cost`]), charged to the byte budget (released if the frame
    /// is dropped unhandled, with its batch when the driver is).
    Message(Frame, Charge),
    /// Anything but a text frame.
    NotText(NotText),
}

impl Incoming {
    fn decode(received: Received, budget: &Arc<MemoryBudget>) -> Self {
        match received {
            Received::Text(text) => match Frame::decode(&text) {
                Ok(Frame::Message(message)) => {
                    let charge = Charge::new(budget, value_cost(&message));
                    Incoming::Message(Frame::Message(message), charge)
                }
                decoded => Incoming::Frame(decoded),
            },
            Received::NotText(other) => Incoming::NotText(other),
        }
    }
}

/// Hands one frame to the engine.
fn handle_frame(state: &mut State, frame: Incoming) -> StreamState {
    match frame {
        // A violation closes the engine itself; reading goes on until the
        // peer's close frame ends the stream.
        Incoming::Frame(Ok(frame)) => {
            let _ = state.engine.handle_frame(frame);
            StreamState::Open
        }
        Incoming::Message(frame, charge) => {
            let _ = state.engine.handle_frame(frame);
            state.drain_events_charged(Some(charge));
            StreamState::Open
        }
        Incoming::Frame(Err(violation)) => {
            state.engine.handle_protocol_error(violation);
            StreamState::Open
        }
        Incoming::NotText(other) => {
            if let NotText::Closed(peer_close) = &other {
                state.driver.peer_close.clone_from(peer_close);
            }
            other.hand_to(&mut state.engine)
        }
    }
}

/// The writer's look: the engine's and keep-alive's timers fired, frames
/// taken into `batch`, and what else there is to do.
fn look(shared: &Shared, state: &mut State, now: Instant, batch: &mut Vec<Transmit>) -> WriterTurn {
    let due_diff = state.engine.due_diff(now);
    if due_diff.is_none() {
        state.engine.handle_timeout(now);
    }
    let held = state.reader_must_wait(&shared.options);
    let mut ping_due = false;
    if let Some(liveness) = &mut state.driver.liveness {
        if held {
            liveness.handle_reader_held(now);
        }
        ping_due = keep_alive_turn(liveness, &mut state.engine, now, &Shared::KEEP_ALIVE_WORDS);
    }
    take_frames(&mut state.engine, batch);
    report_collapsed(shared, state);
    let engine = state.engine.poll_timeout().map(|at| (at, "autoflush"));
    let keep_alive = state.driver.liveness.as_ref().map(|liveness| {
        let (at, why) = liveness.poll_timeout();
        let why = match why {
            LivenessDeadline::NextPing => "keep-alive ping",
            LivenessDeadline::AnswerDue => "keep-alive answer due",
        };
        (at, why)
    });
    WriterTurn {
        closed: state.engine.close_reason().cloned(),
        ping_due,
        due_diff,
        deadline: [engine, keep_alive]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at),
    }
}
