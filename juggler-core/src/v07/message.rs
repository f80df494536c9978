//! The 0.6/0.7 user layer (SPEC-0.7.md §5): the client sends `request`;
//! the server sends `response`, `state` and `notify`. Anything else, in
//! either direction, is a protocol error.

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use crate::envelope::{BadType, Envelope, Shape};
use crate::ProtocolError;

/// A client's request, as the server receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The id, copied back verbatim in the response (the reference does
    /// not check its type).
    pub id: Value,
    /// The name: a string from the references; a falsy one (`""`, `null`,
    /// `0`, `false`) asks for an echo.
    pub name: Value,
    /// The data, if the request had any.
    pub data: Option<Value>,
}

impl Request {
    /// Whether the name is falsy in Python's sense: such a request is
    /// answered with its own data (the 0.6 ping the server still echoes).
    pub fn wants_echo(&self) -> bool {
        !is_truthy(&self.name)
    }
}

/// A message from the server, as the client receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMessage {
    /// The answer to a request.
    Response {
        /// The request's id.
        id: Value,
        /// `success`, taken as Python does (any truthy value).
        success: bool,
        /// The result, or the error (the reference sends its text).
        data: Value,
    },
    /// A change of the server state, as a JSON Patch.
    State {
        /// The patch, to apply in order and atomically.
        diff: Vec<PatchOperation>,
    },
    /// A notification.
    Notify {
        /// Its name.
        name: String,
        /// Its data.
        data: Value,
    },
}

/// Python's truthiness of a JSON value.
pub(crate) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(entries) => !entries.is_empty(),
    }
}

/// Reads a user message of `shape`: its type's index among the shape's
/// types, and its members.
fn read<const N: usize>(
    shape: Shape<N>,
    text: &str,
) -> Result<(usize, Envelope<N>), ProtocolError> {
    let mut envelope = shape.read(text)?.ok_or(ProtocolError::NotAnObject)?;
    match envelope.kind() {
        Ok(kind) => Ok((kind, envelope)),
        Err(BadType::Missing) => Err(ProtocolError::MissingType),
        Err(BadType::Unknown(name)) => Err(ProtocolError::UnexpectedMessageType(name)),
    }
}

fn missing(kind: &str, field: &str) -> ProtocolError {
    ProtocolError::InvalidMessage(format!("{kind} without {field}"))
}

/// Decodes what a server receives: a `request`.
pub fn decode_request(text: &str) -> Result<Request, ProtocolError> {
    const ID: usize = 0;
    const NAME: usize = 1;
    const DATA: usize = 2;
    const SHAPE: Shape<3> = Shape {
        types: &["request"],
        members: ["id", "name", "data"],
    };
    let (_, mut message) = read(SHAPE, text)?;
    let id = message.take(ID).ok_or_else(|| missing("request", "id"))?;
    let name = message
        .take(NAME)
        .ok_or_else(|| missing("request", "name"))?;
    Ok(Request {
        id,
        name,
        data: message.take(DATA),
    })
}

/// Decodes what a client receives: a `response`, `state` or `notify`.
pub fn decode_server_message(text: &str) -> Result<ServerMessage, ProtocolError> {
    const RESPONSE: usize = 0;
    const STATE: usize = 1;
    const ID: usize = 0;
    const SUCCESS: usize = 1;
    const DATA: usize = 2;
    const DIFF: usize = 3;
    const NAME: usize = 4;
    const SHAPE: Shape<5> = Shape {
        types: &["response", "state", "notify"],
        members: ["id", "success", "data", "diff", "name"],
    };
    let (kind, mut message) = read(SHAPE, text)?;
    match kind {
        RESPONSE => Ok(ServerMessage::Response {
            id: message.take(ID).ok_or_else(|| missing("response", "id"))?,
            success: is_truthy(
                &message
                    .take(SUCCESS)
                    .ok_or_else(|| missing("response", "success"))?,
            ),
            data: message.take(DATA).unwrap_or(Value::Null),
        }),
        STATE => {
            let diff = message.take(DIFF).ok_or_else(|| missing("state", "diff"))?;
            Ok(ServerMessage::State {
                diff: crate::op_decode::ops_from_value(diff)
                    .map_err(ProtocolError::InvalidPatch)?,
            })
        }
        _ => match message.take(NAME) {
            Some(Value::String(name)) => Ok(ServerMessage::Notify {
                name,
                data: message.take(DATA).unwrap_or(Value::Null),
            }),
            _ => Err(missing("notify", "a string name")),
        },
    }
}

/// The text of a request (compact JSON, raw UTF-8). Every encoder
/// serializes what it borrows: no copy of the data is made first.
pub fn encode_request(id: u64, name: &str, data: &Value) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: u64,
        name: &'a str,
        data: &'a Value,
    }
    to_text(&Message {
        kind: "request",
        id,
        name,
        data,
    })
}

/// The text of a response.
pub fn encode_response(id: &Value, success: bool, data: &Value) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a Value,
        success: bool,
        data: &'a Value,
    }
    to_text(&Message {
        kind: "response",
        id,
        success,
        data,
    })
}

#[derive(Serialize)]
struct StateMessage<D: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff: D,
}

/// The text of a state change.
pub fn encode_state(diff: &[PatchOperation]) -> String {
    to_text(&StateMessage {
        kind: "state",
        diff,
    })
}

/// Whether every op is `add`, `remove` or `replace`: all a 0.6/0.7
/// server may send (the Python client misapplies `test`).
pub(crate) fn plain_ops(ops: &[PatchOperation]) -> bool {
    ops.iter().all(|op| {
        matches!(
            op,
            PatchOperation::Add(_) | PatchOperation::Remove(_) | PatchOperation::Replace(_)
        )
    })
}

/// The text of a state change that replaces the whole state with
/// `state`: what [`encode_state`] gives for that one `replace` at `""`,
/// without building the op (a copy of the state).
pub fn encode_whole_state(state: &Value) -> String {
    #[derive(Serialize)]
    struct Replace<'a> {
        op: &'static str,
        path: &'static str,
        value: &'a Value,
    }
    to_text(&StateMessage {
        kind: "state",
        diff: [Replace {
            op: "replace",
            path: "",
            value: state,
        }],
    })
}

/// The text of a notification.
pub fn encode_notify(name: &str, data: &Value) -> String {
    #[derive(Serialize)]
    struct Message<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        name: &'a str,
        data: &'a Value,
    }
    to_text(&Message {
        kind: "notify",
        name,
        data,
    })
}

/// A notification encoded once, whose text every connection it is queued
/// on shares without a copy: a group's broadcast encodes it once for all
/// members. Queue it with
/// [`ServerEngine::notify_encoded`](super::ServerEngine::notify_encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedNotify(std::sync::Arc<str>);

impl EncodedNotify {
    /// Encodes the notification `name` with `data`.
    pub fn new(name: &str, data: &Value) -> Self {
        EncodedNotify(encode_notify(name, data).into())
    }

    /// The encoded text's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a notification is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn text(&self) -> std::sync::Arc<str> {
        self.0.clone()
    }
}

/// Compact JSON of a message whose parts are all JSON already: it cannot
/// fail (no map with keys that are not strings, no failing `Serialize`).
fn to_text(message: &impl Serialize) -> String {
    serde_json::to_string(message).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use proptest::prelude::*;
    use serde_json::Map;

    use crate::envelope::tests::arb_message_text;
    use crate::truncate_utf8;

    /// Parses a user message into its object and `type`.
    fn parse_whole(text: &str) -> Result<(Map<String, Value>, String), ProtocolError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| ProtocolError::InvalidJson(err.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(ProtocolError::NotAnObject);
        };
        match object.remove("type") {
            Some(Value::String(kind)) => Ok((object, kind)),
            _ => Err(ProtocolError::MissingType),
        }
    }

    /// The decoder `decode_request` replaced: the whole text parsed first.
    fn decode_request_parsed_whole(text: &str) -> Result<Request, ProtocolError> {
        let (mut object, kind) = parse_whole(text)?;
        if kind != "request" {
            return Err(ProtocolError::UnexpectedMessageType(truncate_utf8(
                &kind, 64,
            )));
        }
        let id = object
            .remove("id")
            .ok_or_else(|| missing("request", "id"))?;
        let name = object
            .remove("name")
            .ok_or_else(|| missing("request", "name"))?;
        Ok(Request {
            id,
            name,
            data: object.remove("data"),
        })
    }

    /// The decoder `decode_server_message` replaced.
    fn decode_server_message_parsed_whole(text: &str) -> Result<ServerMessage, ProtocolError> {
        let (mut object, kind) = parse_whole(text)?;
        match kind.as_str() {
            "response" => Ok(ServerMessage::Response {
                id: object
                    .remove("id")
                    .ok_or_else(|| missing("response", "id"))?,
                success: is_truthy(
                    &object
                        .remove("success")
                        .ok_or_else(|| missing("response", "success"))?,
                ),
                data: object.remove("data").unwrap_or(Value::Null),
            }),
            "state" => {
                let diff = object
                    .remove("diff")
                    .ok_or_else(|| missing("state", "diff"))?;
                Ok(ServerMessage::State {
                    diff: crate::op_decode::ops_from_value(diff)
                        .map_err(ProtocolError::InvalidPatch)?,
                })
            }
            "notify" => match object.remove("name") {
                Some(Value::String(name)) => Ok(ServerMessage::Notify {
                    name,
                    data: object.remove("data").unwrap_or(Value::Null),
                }),
                _ => Err(missing("notify", "a string name")),
            },
            other => Err(ProtocolError::UnexpectedMessageType(truncate_utf8(
                other, 64,
            ))),
        }
    }

    proptest! {
        #[test]
        fn requests_decode_as_parsing_the_whole_text_did(
            text in arb_message_text(&["request", "response"], &["id", "name", "data"]),
        ) {
            prop_assert_eq!(decode_request(&text), decode_request_parsed_whole(&text));
        }

        #[test]
        fn server_messages_decode_as_parsing_the_whole_text_did(
            text in arb_message_text(
                &["response", "state", "notify", "request"],
                &["id", "success", "data", "diff", "name"],
            ),
        ) {
            prop_assert_eq!(
                decode_server_message(&text),
                decode_server_message_parsed_whole(&text)
            );
        }
    }

    #[test]
    fn a_whole_state_encodes_as_its_replace_op() {
        let state = json!({"a": [1, "é"], "b": null});
        let op: PatchOperation =
            serde_json::from_value(json!({"op": "replace", "path": "", "value": state})).unwrap();
        assert_eq!(encode_whole_state(&state), encode_state(&[op]));
    }

    #[test]
    fn requests_decode_with_their_id_verbatim() {
        let request =
            decode_request(r#"{"type":"request","id":"abc","name":"hi","data":{"x":1}}"#).unwrap();
        assert_eq!(request.id, json!("abc"));
        assert_eq!(request.data, Some(json!({"x": 1})));
        assert!(!request.wants_echo());
        let echo = decode_request(r#"{"type":"request","id":3,"name":"","data":1}"#).unwrap();
        assert!(echo.wants_echo());
    }

    #[test]
    fn wrong_direction_and_missing_fields_are_protocol_errors() {
        for (text, expected) in [
            (r#"{"type":"notify","name":"n","data":1}"#, "unexpected"),
            (r#"{"type":"request","name":"n","data":1}"#, "without id"),
            (r#"{"type":"request","id":1,"data":1}"#, "without name"),
            (r#"[1]"#, "not a JSON object"),
            (r#"{"id":1}"#, "no string"),
            (r#"{"#, "not valid JSON"),
        ] {
            let err = decode_request(text).unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
        for text in [
            r#"{"type":"request","id":1,"name":"n","data":1}"#,
            r#"{"type":"response","id":1,"data":1}"#,
            r#"{"type":"state","diff":{}}"#,
            r#"{"type":"notify","name":1,"data":1}"#,
        ] {
            assert!(decode_server_message(text).is_err(), "{text}");
        }
    }

    #[test]
    fn server_messages_decode() {
        assert_eq!(
            decode_server_message(
                r#"{"type": "response", "id": 2, "data": "bad thing", "success": false}"#
            )
            .unwrap(),
            ServerMessage::Response {
                id: json!(2),
                success: false,
                data: json!("bad thing")
            }
        );
        let state = decode_server_message(
            r#"{"type": "state", "diff": [{"op": "remove", "path": "/a/1"}]}"#,
        )
        .unwrap();
        assert!(matches!(state, ServerMessage::State { diff } if diff.len() == 1));
    }
}
