//! The client side of the 0.6/0.7 user layer as a sans-IO machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::message::{decode_server_message, encode_request, ServerMessage};
use super::output::{Framing, Input, Output};
use super::DEFAULT_MAX_MESSAGE_SIZE;
use crate::remote_document::RemoteDocument;
use crate::{CloseReason, Closed, FlushTicket, ProtocolError};

/// Settings of a [`ClientEngine`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// 0.6 (whole frames) or 0.7 (segments).
    pub framing: Framing,
    /// The largest message the server may send, joined from its segments.
    /// Default 64 MiB.
    pub max_message_size: usize,
    /// The most the server state may take, decoded (see
    /// [`value_cost`](crate::value_cost)). Default 64 MiB.
    pub max_state_size: usize,
}

impl ClientConfig {
    /// The 0.7 defaults: segments of 65,536 bytes.
    pub fn v0_7() -> Self {
        ClientConfig {
            framing: Framing::Segmented {
                max_segment_size: super::DEFAULT_MAX_SEGMENT_SIZE,
            },
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_state_size: 64 << 20,
        }
    }

    /// The 0.6 defaults: whole frames.
    pub fn v0_6() -> Self {
        ClientConfig {
            framing: Framing::Whole,
            ..ClientConfig::v0_7()
        }
    }
}

/// What the client application must hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server state changed (read it with [`ClientEngine::state`]);
    /// once per `state` message.
    StateChanged,
    /// A notification.
    Notify {
        /// Its name.
        name: String,
        /// Its data.
        data: Value,
    },
    /// The answer to request `id`: its data, or the error the server sent.
    Response {
        /// The id [`ClientEngine::request`] gave.
        id: u64,
        /// `success: true` with the data, or the failure's data.
        result: Result<Value, Value>,
    },
    /// Request `id` got no answer within its timeout; a late answer is
    /// ignored.
    TimedOut {
        /// The request.
        id: u64,
    },
    /// Request `id` will get no answer: the connection closed first.
    Failed {
        /// The request.
        id: u64,
    },
    /// The engine closed; it is the last event.
    Closed(CloseReason),
}

/// One client connection of the 0.6/0.7 generations: requests numbered
/// from 1 with an optional timeout each, the server state kept by
/// applying its patches whole or not at all (within
/// [`ClientConfig::max_state_size`] and [`MAX_DEPTH`](crate::MAX_DEPTH)
/// levels of nesting, as the 0.5 engine keeps remote data), and
/// notifications. Unknown response ids are ignored, as the references do.
/// The driver contract is [`ServerEngine`](super::ServerEngine)'s.
#[derive(Debug)]
pub struct ClientEngine {
    config: ClientConfig,
    input: Input,
    output: Output,
    state: RemoteDocument,
    next_id: u64,
    /// Pending requests and their deadlines.
    pending: BTreeMap<u64, Option<Instant>>,
    deadlines: BTreeSet<(Instant, u64)>,
    events: VecDeque<ClientEvent>,
    closed: Option<CloseReason>,
}

impl ClientEngine {
    /// A new connection: state `null`, no request yet.
    pub fn new(config: ClientConfig) -> Self {
        let input = Input::new(config.framing, config.max_message_size);
        ClientEngine {
            config,
            input,
            output: Output::default(),
            state: RemoteDocument::new(),
            next_id: 1,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            events: VecDeque::new(),
            closed: None,
        }
    }

    /// The server state as last received (`null` until the first `state`).
    pub fn state(&self) -> &Arc<Value> {
        self.state.value()
    }

    /// Sends a request; its id, and the ticket of its last frame. The
    /// answer comes as [`ClientEvent::Response`], or
    /// [`ClientEvent::TimedOut`] after `timeout`, or
    /// [`ClientEvent::Failed`] at the close.
    pub fn request(
        &mut self,
        now: Instant,
        name: &str,
        data: &Value,
        timeout: Option<Duration>,
    ) -> Result<(u64, FlushTicket), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        let id = self.next_id;
        self.next_id += 1;
        let deadline = timeout.and_then(|timeout| now.checked_add(timeout));
        if let Some(at) = deadline {
            self.deadlines.insert((at, id));
        }
        self.pending.insert(id, deadline);
        let ticket = self
            .output
            .push_message(self.config.framing, encode_request(id, name, data));
        Ok((id, ticket))
    }

    /// Requests waiting for their answer.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Queues a transport ping (0.7 only).
    pub fn send_ping(&mut self, payload: &str) -> Result<(), Closed> {
        if self.closed.is_some() {
            return Err(Closed);
        }
        self.output.push_ping(self.config.framing, payload);
        Ok(())
    }

    /// Takes one received text frame. A violation closes the engine and
    /// is returned.
    pub fn handle_text(&mut self, frame: &str) -> Result<(), ProtocolError> {
        if self.closed.is_some() {
            return Ok(());
        }
        let outcome = self
            .input
            .take(frame, &mut self.output)
            .and_then(|text| text.map(|text| decode_server_message(&text)).transpose())
            .and_then(|message| match message {
                Some(message) => self.handle_message(message),
                None => Ok(()),
            });
        if let Err(err) = &outcome {
            self.handle_protocol_error(err.clone());
        }
        outcome
    }

    fn handle_message(&mut self, message: ServerMessage) -> Result<(), ProtocolError> {
        match message {
            ServerMessage::Response { id, success, data } => {
                let Some(id) = id.as_u64() else {
                    return Ok(());
                };
                if let Some(deadline) = self.pending.remove(&id) {
                    if let Some(at) = deadline {
                        self.deadlines.remove(&(at, id));
                    }
                    let result = if success { Ok(data) } else { Err(data) };
                    self.events.push_back(ClientEvent::Response { id, result });
                }
            }
            ServerMessage::State { mut diff } => {
                self.state.apply(&mut diff, self.config.max_state_size)?;
                self.events.push_back(ClientEvent::StateChanged);
            }
            ServerMessage::Notify { name, data } => {
                self.events.push_back(ClientEvent::Notify { name, data });
            }
        }
        Ok(())
    }

    /// The next frame to write.
    pub fn poll_transmit(&mut self) -> Option<crate::Transmit> {
        self.output.pop()
    }

    /// Frames waiting for [`poll_transmit`](Self::poll_transmit).
    pub fn queued_frames(&self) -> usize {
        self.output.frames()
    }

    /// Their text bytes.
    pub fn queued_bytes(&self) -> usize {
        self.output.bytes()
    }

    /// 0.6 (whole frames) or 0.7 (segments).
    pub(crate) fn framing(&self) -> Framing {
        self.config.framing
    }

    /// When the next request times out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Time has reached `now`: requests past their deadline time out.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.pending.remove(&id);
            self.events.push_back(ClientEvent::TimedOut { id });
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Closes the engine.
    pub fn close(&mut self) {
        self.finish(CloseReason::Local);
    }

    /// The transport closed.
    pub fn handle_transport_closed(&mut self, reason: CloseReason) {
        self.finish(reason);
    }

    /// Why the engine closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// A violation the driver found (a binary frame, a frame over the
    /// WebSocket limit): the engine closes with it, dropping queued output.
    pub fn handle_protocol_error(&mut self, err: ProtocolError) {
        self.output.clear();
        self.finish(CloseReason::Protocol(err));
    }

    fn finish(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        for id in std::mem::take(&mut self.pending).into_keys() {
            self.events.push_back(ClientEvent::Failed { id });
        }
        self.deadlines.clear();
        self.closed = Some(reason.clone());
        self.events.push_back(ClientEvent::Closed(reason));
    }
}
