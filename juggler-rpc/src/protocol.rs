//! The RPC protocol of SPEC §5, sans I/O: no async, no sockets, no clock.
//!
//! - [`decode`] sorts a received message into an rpc [`Request`], an rpc
//!   [`Response`], or a plain message that is not rpc and passes through
//!   unchanged; an object with `"type": "rpc"` that breaks the schema is an
//!   [`InvalidRpc`] error.
//! - [`Request::encode`] and [`Response::encode`] give the exact wire shapes.
//! - [`Calls`] is the caller's side: id allocation (1, 2, 3, ... per
//!   connection), the table of pending calls, matching responses to them,
//!   cancelling (timeouts) and failing everything on close.
//!
//! ```
//! use juggler_rpc::protocol::{decode, Calls, Decoded, Resolved, Response, RpcMessage};
//! use serde_json::json;
//!
//! let mut calls = Calls::new();
//! let (id, request) = calls.start("act", vec![json!(123)], "waiter").unwrap();
//! assert_eq!(id, 1);
//! assert_eq!(
//!     request,
//!     json!({"type": "rpc", "id": 1, "direction": "request", "action": "act", "args": [123]})
//! );
//!
//! let wire = Response::success(1, json!(124)).encode();
//! let Decoded::Rpc(RpcMessage::Response(response)) = decode(wire).unwrap() else { panic!() };
//! match calls.resolve(response) {
//!     Resolved::Pending { waiter, outcome, .. } => {
//!         assert_eq!(waiter, "waiter");
//!         assert_eq!(outcome, Ok(json!(124)));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // Plain messages are not rpc and come back as they were.
//! assert_eq!(decode(json!({"type": "chat"})).unwrap(), Decoded::Other(json!({"type": "chat"})));
//! ```

use std::collections::HashMap;

use serde_json::{Map, Value};
use thiserror::Error;

/// The id of an rpc request, echoed by its response. The schema says
/// "integer"; ids outside the `i64` range are rejected as malformed.
pub type RpcId = i64;

/// What [`decode`] makes of a received message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A well-formed rpc object.
    Rpc(RpcMessage),
    /// Anything that is not an object with `"type": "rpc"`: an application
    /// message, returned unchanged.
    Other(Value),
}

/// A well-formed rpc object.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcMessage {
    /// `"direction": "request"`.
    Request(Request),
    /// `"direction": "response"`.
    Response(Response),
}

/// An rpc request: run `action` with `args`, answer with the same `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Chosen by the caller; echoed in the response.
    pub id: RpcId,
    /// The name of the action to run.
    pub action: String,
    /// The positional arguments.
    pub args: Vec<Value>,
}

/// An rpc response to the request with the same `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the request answered.
    pub id: RpcId,
    /// Whether the action succeeded.
    pub success: bool,
    /// The action's result on success, else the error text.
    pub result: Value,
}

/// An object with `"type": "rpc"` that does not follow the rpc schema
/// (SPEC §5): a protocol error that closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed rpc object: {0}")]
pub struct InvalidRpc(pub String);

impl InvalidRpc {
    fn new(text: impl Into<String>) -> Self {
        InvalidRpc(text.into())
    }
}

/// Sorts a received message: a plain message (anything that is not an
/// object whose `type` is the string `"rpc"`) comes back unchanged as
/// [`Decoded::Other`]; an rpc object is checked against the schema.
///
/// Required of every rpc object: `id`, an integer (in `i64`), and
/// `direction`, `"request"` or `"response"`. Of a request: `action`, a
/// string, and `args`, an array. Of a response: `success`, a boolean; a
/// missing `result` reads as `null` (a JavaScript peer whose action returned
/// `undefined` omits it). Other members are ignored. Never panics.
pub fn decode(message: Value) -> Result<Decoded, InvalidRpc> {
    let mut object = match message {
        Value::Object(object) if is_rpc(&object) => object,
        other => return Ok(Decoded::Other(other)),
    };
    let id = match object.get("id") {
        None => return Err(InvalidRpc::new("no \"id\" member")),
        Some(id) => id
            .as_i64()
            .ok_or_else(|| InvalidRpc(format!("\"id\" is not an integer: {}", brief(id))))?,
    };
    let direction = match object.get("direction") {
        None => return Err(InvalidRpc(format!("no \"direction\" member (id {id})"))),
        Some(Value::String(direction)) => direction.as_str(),
        Some(other) => {
            return Err(InvalidRpc(format!(
                "\"direction\" is not a string: {} (id {id})",
                brief(other)
            )))
        }
    };
    match direction {
        "request" => {
            let action = match object.remove("action") {
                Some(Value::String(action)) => action,
                None => return Err(InvalidRpc(format!("request {id} has no \"action\""))),
                Some(other) => {
                    return Err(InvalidRpc(format!(
                        "request {id}: \"action\" is not a string: {}",
                        brief(&other)
                    )))
                }
            };
            let args = match object.remove("args") {
                Some(Value::Array(args)) => args,
                None => return Err(InvalidRpc(format!("request {id} has no \"args\""))),
                Some(other) => {
                    return Err(InvalidRpc(format!(
                        "request {id}: \"args\" is not an array: {}",
                        brief(&other)
                    )))
                }
            };
            Ok(Decoded::Rpc(RpcMessage::Request(Request {
                id,
                action,
                args,
            })))
        }
        "response" => {
            let success = match object.get("success") {
                Some(Value::Bool(success)) => *success,
                None => return Err(InvalidRpc(format!("response {id} has no \"success\""))),
                Some(other) => {
                    return Err(InvalidRpc(format!(
                        "response {id}: \"success\" is not a boolean: {}",
                        brief(other)
                    )))
                }
            };
            let result = object.remove("result").unwrap_or(Value::Null);
            Ok(Decoded::Rpc(RpcMessage::Response(Response {
                id,
                success,
                result,
            })))
        }
        other => Err(InvalidRpc(format!(
            "\"direction\" is {other:?}, not \"request\" or \"response\" (id {id})"
        ))),
    }
}

fn is_rpc(object: &Map<String, Value>) -> bool {
    matches!(object.get("type"), Some(Value::String(kind)) if kind == "rpc")
}

/// A short rendering of a value for error texts: at most about 60 bytes.
fn brief(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    match text.len() <= LIMIT {
        true => text,
        false => format!("{}...", juggler_core::truncate_utf8(&text, LIMIT)),
    }
}

impl Request {
    /// The wire shape:
    /// `{"type": "rpc", "id": N, "direction": "request", "action": A, "args": [...]}`.
    pub fn encode(&self) -> Value {
        encode_request(self.id, &self.action, self.args.clone())
    }
}

fn encode_request(id: RpcId, action: &str, args: Vec<Value>) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), "rpc".into());
    object.insert("id".into(), id.into());
    object.insert("direction".into(), "request".into());
    object.insert("action".into(), action.into());
    object.insert("args".into(), Value::Array(args));
    Value::Object(object)
}

impl Response {
    /// A successful response carrying `result`.
    pub fn success(id: RpcId, result: Value) -> Self {
        Response {
            id,
            success: true,
            result,
        }
    }

    /// A failed response carrying the error text.
    pub fn failure(id: RpcId, text: impl Into<String>) -> Self {
        Response {
            id,
            success: false,
            result: Value::String(text.into()),
        }
    }

    /// The response to request `id` from an action's outcome.
    pub fn from_outcome(id: RpcId, outcome: Result<Value, String>) -> Self {
        match outcome {
            Ok(result) => Response::success(id, result),
            Err(text) => Response::failure(id, text),
        }
    }

    /// The wire shape:
    /// `{"type": "rpc", "id": N, "direction": "response", "success": B, "result": R}`.
    pub fn encode(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), "rpc".into());
        object.insert("id".into(), self.id.into());
        object.insert("direction".into(), "response".into());
        object.insert("success".into(), self.success.into());
        object.insert("result".into(), self.result.clone());
        Value::Object(object)
    }

    /// `result` on success; on failure the remote error, `result` as the
    /// peer sent it (the reference sends the error's text).
    pub fn into_outcome(self) -> Result<Value, Value> {
        match self.success {
            true => Ok(self.result),
            false => Err(self.result),
        }
    }
}

/// [`Calls::start`] after [`Calls::close`]: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("connection closed")]
pub struct CallsClosed;

/// What [`Calls::resolve`] did with a response.
#[derive(Debug, PartialEq)]
pub enum Resolved<T> {
    /// The response answers a pending call, now removed from the table.
    Pending {
        /// The call's id.
        id: RpcId,
        /// What the caller left waiting.
        waiter: T,
        /// The result, or the remote error ([`Response::into_outcome`]).
        outcome: Result<Value, Value>,
    },
    /// No call with this id is pending (never made, already answered,
    /// cancelled, or the table is closed): the response is ignored.
    Unknown(RpcId),
}

/// The caller's side of the protocol: ids and the pending-call table.
///
/// `T` is whatever the caller waits on (a oneshot sender in
/// [`RpcConnection`](crate::RpcConnection)). Ids count up from 1; an id is
/// never reused while its call is pending.
#[derive(Debug)]
pub struct Calls<T> {
    last_id: RpcId,
    pending: HashMap<RpcId, T>,
    closed: bool,
}

impl<T> Default for Calls<T> {
    fn default() -> Self {
        Calls::new()
    }
}

impl<T> Calls<T> {
    /// An empty, open table whose first id is 1.
    pub fn new() -> Self {
        Calls {
            last_id: 0,
            pending: HashMap::new(),
            closed: false,
        }
    }

    /// Starts a call: allocates the next id, records `waiter` as pending
    /// and returns the id and the request to send. Fails once the table
    /// is closed.
    pub fn start(
        &mut self,
        action: &str,
        args: Vec<Value>,
        waiter: T,
    ) -> Result<(RpcId, Value), CallsClosed> {
        if self.closed {
            return Err(CallsClosed);
        }
        let id = self.next_id();
        self.pending.insert(id, waiter);
        Ok((id, encode_request(id, action, args)))
    }

    fn next_id(&mut self) -> RpcId {
        // Counting from 1 never reaches i64::MAX in practice; should it,
        // wrap to 1 and skip ids still pending.
        loop {
            self.last_id = self.last_id.checked_add(1).unwrap_or(1);
            if !self.pending.contains_key(&self.last_id) {
                return self.last_id;
            }
        }
    }

    /// Matches a response to its pending call and removes that call.
    pub fn resolve(&mut self, response: Response) -> Resolved<T> {
        match self.pending.remove(&response.id) {
            Some(waiter) => Resolved::Pending {
                id: response.id,
                waiter,
                outcome: response.into_outcome(),
            },
            None => Resolved::Unknown(response.id),
        }
    }

    /// Gives up on a pending call (a timeout, a dropped caller); a late
    /// response to it is then [`Resolved::Unknown`].
    pub fn cancel(&mut self, id: RpcId) -> Option<T> {
        self.pending.remove(&id)
    }

    /// Closes the table: later [`start`](Self::start)s fail, and every
    /// pending call is returned, to be failed with connection-closed.
    pub fn close(&mut self) -> Vec<(RpcId, T)> {
        self.closed = true;
        let mut drained: Vec<(RpcId, T)> = self.pending.drain().collect();
        drained.sort_unstable_by_key(|(id, _)| *id);
        drained
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether call `id` is pending.
    pub fn is_pending(&self, id: RpcId) -> bool {
        self.pending.contains_key(&id)
    }

    /// How many calls are pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no call is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn invalid(message: Value) -> String {
        match decode(message) {
            Err(InvalidRpc(text)) => text,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_request() {
        let message = json!({"type": "rpc", "id": 7, "direction": "request", "action": "act", "args": [1, "x"]});
        assert_eq!(
            decode(message).unwrap(),
            Decoded::Rpc(RpcMessage::Request(Request {
                id: 7,
                action: "act".into(),
                args: vec![json!(1), json!("x")],
            }))
        );
    }

    #[test]
    fn decodes_a_response() {
        let message = json!({"type": "rpc", "id": -3, "direction": "response", "success": false, "result": {"a": 1}});
        assert_eq!(
            decode(message).unwrap(),
            Decoded::Rpc(RpcMessage::Response(Response {
                id: -3,
                success: false,
                result: json!({"a": 1}),
            }))
        );
    }

    #[test]
    fn missing_result_reads_as_null() {
        let message = json!({"type": "rpc", "id": 1, "direction": "response", "success": true});
        assert_eq!(
            decode(message).unwrap(),
            Decoded::Rpc(RpcMessage::Response(Response::success(1, Value::Null)))
        );
    }

    #[test]
    fn extra_members_are_ignored() {
        let message = json!({"type": "rpc", "id": 2, "direction": "request", "action": "a", "args": [], "x": 1});
        assert!(matches!(
            decode(message),
            Ok(Decoded::Rpc(RpcMessage::Request(_)))
        ));
    }

    #[test]
    fn non_rpc_messages_pass_unchanged() {
        for message in [
            json!(null),
            json!(1),
            json!("rpc"),
            json!([{"type": "rpc"}]),
            json!({}),
            json!({"type": "RPC", "id": "x"}),
            json!({"type": ["rpc"]}),
            json!({"kind": "rpc"}),
            json!({"type": "other", "direction": "request"}),
        ] {
            assert_eq!(decode(message.clone()).unwrap(), Decoded::Other(message));
        }
    }

    #[test]
    fn malformed_rpc_objects_are_errors_with_clear_text() {
        let cases = [
            (
                json!({"type": "rpc", "direction": "request", "action": "a", "args": []}),
                "no \"id\"",
            ),
            (
                json!({"type": "rpc", "id": "x", "direction": "request"}),
                "\"id\" is not an integer",
            ),
            (
                json!({"type": "rpc", "id": 1.5, "direction": "response", "success": true}),
                "\"id\" is not an integer",
            ),
            (
                json!({"type": "rpc", "id": u64::MAX, "direction": "response", "success": true}),
                "\"id\" is not an integer",
            ),
            (json!({"type": "rpc", "id": 1}), "no \"direction\""),
            (
                json!({"type": "rpc", "id": 1, "direction": 5}),
                "\"direction\" is not a string",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "sideways"}),
                "\"sideways\"",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "request", "args": []}),
                "no \"action\"",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "request", "action": 3, "args": []}),
                "\"action\" is not a string",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "request", "action": "a"}),
                "no \"args\"",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "request", "action": "a", "args": {}}),
                "\"args\" is not an array",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "response", "result": 1}),
                "no \"success\"",
            ),
            (
                json!({"type": "rpc", "id": 1, "direction": "response", "success": 1, "result": 1}),
                "\"success\" is not a boolean",
            ),
        ];
        for (message, expected) in cases {
            let text = invalid(message.clone());
            assert!(
                text.contains(expected),
                "{message}: {text:?} lacks {expected:?}"
            );
        }
        let err = decode(json!({"type": "rpc", "direction": "request"})).unwrap_err();
        assert_eq!(err.to_string(), "malformed rpc object: no \"id\" member");
    }

    #[test]
    fn error_texts_stay_short() {
        let huge = "x".repeat(10_000);
        let text = invalid(json!({"type": "rpc", "id": huge}));
        assert!(text.len() < 120, "{}", text.len());
    }

    #[test]
    fn encodes_the_exact_wire_shapes() {
        let request = Request {
            id: 1,
            action: "act".into(),
            args: vec![json!(123)],
        };
        assert_eq!(
            request.encode(),
            json!({"type": "rpc", "id": 1, "direction": "request", "action": "act", "args": [123]})
        );
        assert_eq!(
            request.encode().as_object().unwrap().len(),
            5,
            "no other members"
        );
        assert_eq!(
            Response::success(4, json!([1])).encode(),
            json!({"type": "rpc", "id": 4, "direction": "response", "success": true, "result": [1]})
        );
        assert_eq!(
            Response::failure(5, "invalid action").encode(),
            json!({"type": "rpc", "id": 5, "direction": "response", "success": false, "result": "invalid action"})
        );
    }

    #[test]
    fn outcome_of_a_failure_is_its_result_as_sent() {
        assert_eq!(
            Response::failure(1, "boom").into_outcome(),
            Err(json!("boom"))
        );
        let not_a_string = Response {
            id: 1,
            success: false,
            result: json!({"code": 3}),
        };
        assert_eq!(not_a_string.into_outcome(), Err(json!({"code": 3})));
        assert_eq!(
            Response::success(1, json!(null)).into_outcome(),
            Ok(Value::Null)
        );
        assert_eq!(
            Response::from_outcome(9, Err("bad".into())),
            Response::failure(9, "bad")
        );
    }

    #[test]
    fn ids_count_up_from_one() {
        let mut calls = Calls::new();
        for expected in 1..=5 {
            let (id, request) = calls.start("a", vec![], expected).unwrap();
            assert_eq!(id, expected);
            assert_eq!(request["id"], json!(expected));
        }
        assert_eq!(calls.len(), 5);
    }

    #[test]
    fn responses_resolve_their_own_call_once() {
        let mut calls = Calls::new();
        let (a, _) = calls.start("a", vec![], "a").unwrap();
        let (b, _) = calls.start("b", vec![], "b").unwrap();
        assert_eq!(
            calls.resolve(Response::failure(b, "no")),
            Resolved::Pending {
                id: b,
                waiter: "b",
                outcome: Err("no".into())
            }
        );
        assert_eq!(
            calls.resolve(Response::success(b, json!(1))),
            Resolved::Unknown(b)
        );
        assert_eq!(
            calls.resolve(Response::success(99, json!(1))),
            Resolved::Unknown(99)
        );
        assert!(calls.is_pending(a));
        assert_eq!(
            calls.resolve(Response::success(a, json!(2))),
            Resolved::Pending {
                id: a,
                waiter: "a",
                outcome: Ok(json!(2))
            }
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn cancelled_calls_ignore_late_responses() {
        let mut calls = Calls::new();
        let (id, _) = calls.start("slow", vec![], ()).unwrap();
        assert_eq!(calls.cancel(id), Some(()));
        assert_eq!(calls.cancel(id), None);
        assert_eq!(
            calls.resolve(Response::success(id, json!(1))),
            Resolved::Unknown(id)
        );
        let (next, _) = calls.start("fast", vec![], ()).unwrap();
        assert_eq!(next, id + 1, "a cancelled id is not reused");
    }

    #[test]
    fn close_drains_and_refuses_new_calls() {
        let mut calls = Calls::new();
        for waiter in ["a", "b", "c"] {
            calls.start(waiter, vec![], waiter).unwrap();
        }
        calls.resolve(Response::success(2, json!(null)));
        assert_eq!(calls.close(), vec![(1, "a"), (3, "c")]);
        assert!(calls.is_closed() && calls.is_empty());
        assert_eq!(calls.start("d", vec![], "d"), Err(CallsClosed));
        assert_eq!(
            calls.resolve(Response::success(1, json!(null))),
            Resolved::Unknown(1)
        );
    }

    #[test]
    fn ids_wrap_and_skip_pending_ones() {
        let mut calls = Calls::new();
        calls.start("one", vec![], ()).unwrap();
        calls.last_id = RpcId::MAX - 1;
        assert_eq!(calls.start("max", vec![], ()).unwrap().0, RpcId::MAX);
        assert_eq!(
            calls.start("wrap", vec![], ()).unwrap().0,
            2,
            "1 is pending"
        );
    }

    #[test]
    fn fuzz_entry_accepts_samples() {
        for message in [
            json!(null),
            json!({"type": "rpc"}),
            json!({"type": "rpc", "id": 1, "direction": "response", "success": true, "result": 1}),
            json!({"type": "rpc", "id": 5, "direction": "response", "success": false}),
            json!({"type": "rpc", "id": 2, "direction": "request", "action": "", "args": [[]]}),
        ] {
            crate::fuzzing::fuzz_message(&message);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "[a-z]{0,6}".prop_map(Value::from),
            prop_oneof![
                Just("rpc"),
                Just("request"),
                Just("response"),
                Just("type"),
                Just("id")
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("type".to_owned()),
                        Just("id".to_owned()),
                        Just("direction".to_owned()),
                        Just("action".to_owned()),
                        Just("args".to_owned()),
                        Just("success".to_owned()),
                        Just("result".to_owned()),
                        "[a-z]{0,4}",
                    ],
                    inner,
                    0..7
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Objects that look like rpc objects with each member present or not
    /// and of the right type or not.
    fn arb_rpc_like() -> impl Strategy<Value = Value> {
        (
            proptest::option::of(prop_oneof![any::<i64>().prop_map(Value::from), arb_json()]),
            proptest::option::of(prop_oneof![
                Just(json!("request")),
                Just(json!("response")),
                arb_json()
            ]),
            proptest::option::of(prop_oneof!["[a-z]{0,5}".prop_map(Value::from), arb_json()]),
            proptest::option::of(prop_oneof![
                prop::collection::vec(arb_json(), 0..4).prop_map(Value::Array),
                arb_json()
            ]),
            proptest::option::of(prop_oneof![any::<bool>().prop_map(Value::from), arb_json()]),
            proptest::option::of(arb_json()),
        )
            .prop_map(|(id, direction, action, args, success, result)| {
                let mut object = Map::new();
                object.insert("type".into(), "rpc".into());
                for (key, value) in [
                    ("id", id),
                    ("direction", direction),
                    ("action", action),
                    ("args", args),
                    ("success", success),
                    ("result", result),
                ] {
                    if let Some(value) = value {
                        object.insert(key.into(), value);
                    }
                }
                Value::Object(object)
            })
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        (
            any::<i64>(),
            ".{0,12}",
            prop::collection::vec(arb_json(), 0..5),
        )
            .prop_map(|(id, action, args)| Request { id, action, args })
    }

    fn arb_response() -> impl Strategy<Value = Response> {
        (any::<i64>(), any::<bool>(), arb_json()).prop_map(|(id, success, result)| Response {
            id,
            success,
            result,
        })
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics_the_decoder(message in arb_json()) {
            crate::fuzzing::fuzz_message(&message);
        }

        #[test]
        fn rpc_like_objects_never_panic_the_decoder(message in arb_rpc_like()) {
            crate::fuzzing::fuzz_message(&message);
            let is_valid = decode(message.clone()).is_ok();
            let id_ok = message.get("id").is_some_and(Value::is_i64);
            let direction = message.get("direction").and_then(Value::as_str);
            let expected = id_ok && match direction {
                Some("request") => message.get("action").is_some_and(Value::is_string)
                    && message.get("args").is_some_and(Value::is_array),
                Some("response") => message.get("success").is_some_and(Value::is_boolean),
                _ => false,
            };
            prop_assert_eq!(is_valid, expected);
        }

        #[test]
        fn requests_round_trip(request in arb_request()) {
            prop_assert_eq!(
                decode(request.encode()).unwrap(),
                Decoded::Rpc(RpcMessage::Request(request))
            );
        }

        #[test]
        fn responses_round_trip(response in arb_response()) {
            prop_assert_eq!(
                decode(response.encode()).unwrap(),
                Decoded::Rpc(RpcMessage::Response(response))
            );
        }

        #[test]
        fn requests_survive_json_text(request in arb_request()) {
            let text = serde_json::to_string(&request.encode()).unwrap();
            let value: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decode(value).unwrap(), Decoded::Rpc(RpcMessage::Request(request)));
        }

        #[test]
        fn calls_resolve_exactly_the_pending_ids(
            count in 1usize..20,
            responses in prop::collection::vec((0i64..25, any::<bool>()), 0..40),
        ) {
            let mut calls = Calls::new();
            for n in 0..count {
                let (id, _) = calls.start("a", vec![], n).unwrap();
                prop_assert_eq!(id, n as i64 + 1);
            }
            let mut open: std::collections::BTreeSet<i64> = (1..=count as i64).collect();
            for (id, success) in responses {
                let response = Response { id, success, result: json!(id) };
                match calls.resolve(response) {
                    Resolved::Pending { id: resolved, waiter, outcome } => {
                        prop_assert!(open.remove(&resolved));
                        prop_assert_eq!(waiter as i64 + 1, resolved);
                        prop_assert_eq!(outcome.is_ok(), success);
                    }
                    Resolved::Unknown(unknown) => prop_assert!(!open.contains(&unknown)),
                }
            }
            let drained: Vec<i64> = calls.close().into_iter().map(|(id, _)| id).collect();
            prop_assert_eq!(drained, open.into_iter().collect::<Vec<_>>());
        }
    }
}
