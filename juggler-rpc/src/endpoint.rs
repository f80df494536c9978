//! One side of an rpc connection as a sans-IO machine: the table of this
//! side's calls and the count of the peer's requests running, with the
//! decision of what each received message asks for.
//!
//! [`RpcConnection`](crate::RpcConnection)'s message filter and dispatch
//! task, and the rpc fuzz target, all drive the same [`Endpoint`]: they
//! hand it messages and finished requests, and do what it answers (run an
//! action, send a response, wake a caller, close the connection). It does
//! no I/O and runs no action itself.
//!
//! ```
//! use juggler_rpc::endpoint::{Endpoint, Inbound};
//! use juggler_rpc::protocol::Response;
//! use serde_json::json;
//!
//! let mut endpoint = Endpoint::new(16);
//! let (id, request) = endpoint.start_call("act", vec![json!(1)], "waiter").unwrap();
//! assert_eq!(request["id"], json!(id));
//!
//! // The peer asks us something: a slot is taken until the request is done.
//! let ask = json!({"type": "rpc", "id": 7, "direction": "request", "action": "f", "args": []});
//! let Inbound::Run(request) = endpoint.handle_message(ask) else { panic!() };
//! assert_eq!(endpoint.running_requests(), 1);
//! endpoint.request_done();
//! let answer = Response::from_outcome(request.id, Ok(json!("done")));
//! assert_eq!(answer.encode()["id"], json!(7));
//!
//! // The peer answers our call.
//! let reply = Response::success(id, json!(2)).encode();
//! let Inbound::Resolved { waiter, outcome, .. } = endpoint.handle_message(reply) else { panic!() };
//! assert_eq!((waiter, outcome), ("waiter", Ok(json!(2))));
//! ```

use juggler_core::responder::{Limits, Responder};
use serde_json::Value;

use crate::protocol::{
    decode, Calls, CallsClosed, Decoded, InvalidRpc, Request, Resolved, Response, RpcId, RpcMessage,
};

/// The error text of a request refused because
/// [`RpcOptions::max_concurrent_requests`](crate::RpcOptions::max_concurrent_requests)
/// actions are already running.
pub const TOO_MANY_REQUESTS: &str = "too many concurrent requests";

/// What to do with one received message.
#[derive(Debug, PartialEq)]
pub enum Inbound<W> {
    /// Not an rpc object: the application's, unchanged.
    Plain(Value),
    /// A request to run. A running slot is taken for it: call
    /// [`Endpoint::request_done`] once its response is sent (or the
    /// connection closed first).
    Run(Request),
    /// A request refused at once (too many running): send this response.
    Refuse(Response),
    /// A response that completes one of this side's calls.
    Resolved {
        /// The call's id.
        id: RpcId,
        /// What the caller left waiting.
        waiter: W,
        /// The result, or the remote error text.
        outcome: Result<Value, Value>,
    },
    /// A response to no pending call (never made, answered, given up):
    /// ignored.
    Unmatched(RpcId),
    /// A request that arrived after the close: not run.
    Ignored,
    /// A malformed rpc object: close the connection with
    /// `ProtocolError::InvalidMessage` and [`close`](Endpoint::close) the
    /// endpoint.
    Violation(InvalidRpc),
}

/// The protocol state of one rpc connection; see the [module](self) docs.
///
/// `W` is whatever a caller waits on (a oneshot sender in
/// [`RpcConnection`](crate::RpcConnection)).
#[derive(Debug)]
pub struct Endpoint<W> {
    calls: Calls<W>,
    /// The peer's requests running: refused beyond the limit, run in
    /// parallel. Their bytes are held against the connection's receive
    /// budget instead ([`Connection::hold`]), so none are charged here.
    ///
    /// [`Connection::hold`]: juggler_driver::Connection::hold
    requests: Responder<()>,
}

impl<W> Endpoint<W> {
    /// An open endpoint that runs at most `max_running` of the peer's
    /// requests at once.
    pub fn new(max_running: usize) -> Self {
        Endpoint {
            calls: Calls::new(),
            requests: Responder::new(Limits {
                max_running,
                max_bytes: usize::MAX,
                parallel: true,
            }),
        }
    }

    /// Sorts a received message and takes what it means for the state: a
    /// running slot for a request, the pending entry of the call a response
    /// answers.
    pub fn handle_message(&mut self, message: Value) -> Inbound<W> {
        match decode(message) {
            Ok(Decoded::Other(message)) => Inbound::Plain(message),
            Ok(Decoded::Rpc(RpcMessage::Request(request))) => self.handle_request(request),
            Ok(Decoded::Rpc(RpcMessage::Response(response))) => {
                match self.calls.resolve(response) {
                    Resolved::Pending {
                        id,
                        waiter,
                        outcome,
                    } => Inbound::Resolved {
                        id,
                        waiter,
                        outcome,
                    },
                    Resolved::Unknown(id) => Inbound::Unmatched(id),
                }
            }
            Err(violation) => Inbound::Violation(violation),
        }
    }

    fn handle_request(&mut self, request: Request) -> Inbound<W> {
        if self.calls.is_closed() {
            Inbound::Ignored
        } else {
            match self.requests.try_take((), 0) {
                Ok(_) => Inbound::Run(request),
                Err(()) => Inbound::Refuse(Response::failure(request.id, TOO_MANY_REQUESTS)),
            }
        }
    }

    /// Whether `message` is a request that [`handle_message`] would refuse
    /// for want of a running slot: a look at two members, no decoding. A
    /// caller that cannot wait to send the refusal hands such a message to
    /// one that can.
    ///
    /// [`handle_message`]: Self::handle_message
    pub fn would_refuse(&self, message: &Value) -> bool {
        self.requests.at_running_limit()
            && !self.calls.is_closed()
            && message.get("type").and_then(Value::as_str) == Some("rpc")
            && message.get("direction").and_then(Value::as_str) == Some("request")
    }

    /// A request of the peer's is done: its response was handed to the
    /// connection, or the connection closed first. Frees its slot.
    pub fn request_done(&mut self) {
        self.requests.finish(0);
    }

    /// Starts a call of this side's: the id and the request to send.
    /// Fails once the endpoint is closed.
    pub fn start_call(
        &mut self,
        action: &str,
        args: Vec<Value>,
        waiter: W,
    ) -> Result<(RpcId, Value), CallsClosed> {
        self.calls.start(action, args, waiter)
    }

    /// Gives a call up (a timeout, a dropped caller); a late response to it
    /// is then [`Inbound::Unmatched`].
    pub fn cancel_call(&mut self, id: RpcId) -> Option<W> {
        self.calls.cancel(id)
    }

    /// Closes the endpoint: calls can no longer start, requests are no
    /// longer run, and every pending call comes back, to be failed.
    pub fn close(&mut self) -> Vec<(RpcId, W)> {
        self.calls.close()
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.calls.is_closed()
    }

    /// How many of this side's calls wait for a response.
    pub fn pending_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether call `id` waits for a response.
    pub fn is_pending(&self, id: RpcId) -> bool {
        self.calls.is_pending(id)
    }

    /// How many of the peer's requests hold a running slot.
    pub fn running_requests(&self) -> usize {
        self.requests.running()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(id: i64) -> Value {
        json!({"type": "rpc", "id": id, "direction": "request", "action": "a", "args": []})
    }

    #[test]
    fn requests_beyond_the_limit_are_refused_until_a_slot_frees() {
        let mut endpoint = Endpoint::<()>::new(2);
        assert!(matches!(
            endpoint.handle_message(request(1)),
            Inbound::Run(_)
        ));
        assert!(!endpoint.would_refuse(&request(2)));
        assert!(matches!(
            endpoint.handle_message(request(2)),
            Inbound::Run(_)
        ));
        assert!(endpoint.would_refuse(&request(3)));
        assert!(!endpoint.would_refuse(&json!({"plain": 1})));
        assert_eq!(
            endpoint.handle_message(request(3)),
            Inbound::Refuse(Response::failure(3, TOO_MANY_REQUESTS))
        );
        endpoint.request_done();
        assert!(matches!(
            endpoint.handle_message(request(4)),
            Inbound::Run(_)
        ));
        assert_eq!(endpoint.running_requests(), 2);
    }

    #[test]
    fn responses_resolve_their_call_once() {
        let mut endpoint = Endpoint::new(1);
        let (id, _) = endpoint.start_call("a", Vec::new(), 'w').unwrap();
        let reply = Response::failure(id, "no").encode();
        assert_eq!(
            endpoint.handle_message(reply.clone()),
            Inbound::Resolved {
                id,
                waiter: 'w',
                outcome: Err("no".into())
            }
        );
        assert_eq!(endpoint.handle_message(reply), Inbound::Unmatched(id));
        assert_eq!(endpoint.pending_calls(), 0);
    }

    #[test]
    fn after_the_close_nothing_runs_or_starts() {
        let mut endpoint = Endpoint::new(4);
        endpoint.start_call("a", Vec::new(), 1).unwrap();
        endpoint.start_call("b", Vec::new(), 2).unwrap();
        assert_eq!(endpoint.close(), vec![(1, 1), (2, 2)]);
        assert_eq!(endpoint.handle_message(request(5)), Inbound::Ignored);
        assert!(!endpoint.would_refuse(&request(6)));
        assert!(endpoint.start_call("c", Vec::new(), 3).is_err());
        assert_eq!(
            endpoint.handle_message(json!({"plain": true})),
            Inbound::Plain(json!({"plain": true}))
        );
    }

    #[test]
    fn malformed_rpc_is_a_violation() {
        let mut endpoint = Endpoint::<()>::new(1);
        assert!(matches!(
            endpoint.handle_message(json!({"type": "rpc", "id": "x"})),
            Inbound::Violation(_)
        ));
    }
}
