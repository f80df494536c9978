//! The four Juggler frame types and their JSON text form (SPEC §1).

use std::fmt;
use std::sync::Arc;

use json_patch::PatchOperation;
use serde::Serialize;
use serde_json::Value;

use crate::envelope::{BadType, Shape};
use crate::error::ProtocolError;

/// The `type` of a Juggler frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A JSON Patch to apply to the receiver's remote data.
    Data,
    /// An application message.
    Message,
    /// A keep-alive request; the receiver answers with [`FrameKind::Pong`].
    Ping,
    /// The answer to a [`FrameKind::Ping`].
    Pong,
}

impl FrameKind {
    /// The wire name of this type (`"DATA"`, `"MESSAGE"`, `"PING"`, `"PONG"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            FrameKind::Data => "DATA",
            FrameKind::Message => "MESSAGE",
            FrameKind::Ping => "PING",
            FrameKind::Pong => "PONG",
        }
    }

    /// Every frame type, in the order of [`Self::WIRE_NAMES`].
    const ALL: [FrameKind; 4] = [
        FrameKind::Data,
        FrameKind::Message,
        FrameKind::Ping,
        FrameKind::Pong,
    ];

    /// The wire names of [`Self::ALL`].
    const WIRE_NAMES: [&'static str; 4] = [
        Self::ALL[0].as_str(),
        Self::ALL[1].as_str(),
        Self::ALL[2].as_str(),
        Self::ALL[3].as_str(),
    ];
}

impl fmt::Display for FrameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decoded Juggler frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `{"type": "DATA", "payload": [ ...RFC 6902 operations ]}`
    Data(Vec<PatchOperation>),
    /// `{"type": "MESSAGE", "payload": ANY}`
    Message(Value),
    /// `{"type": "PING", "payload": ANY}`
    Ping(Value),
    /// `{"type": "PONG", "payload": ANY}`
    Pong(Value),
}

impl Frame {
    /// The frame's type.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Data(_) => FrameKind::Data,
            Frame::Message(_) => FrameKind::Message,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
        }
    }

    /// Decodes the text of one WebSocket text frame.
    ///
    /// Any text that is not a Juggler frame gives a typed [`ProtocolError`];
    /// no input panics. Members other than `type` and `payload` are ignored,
    /// as the reference peers ignore them.
    pub fn decode(text: &str) -> Result<Frame, ProtocolError> {
        const SHAPE: Shape<1> = Shape {
            types: &FrameKind::WIRE_NAMES,
            members: ["payload"],
        };
        let mut envelope = SHAPE.read(text)?.ok_or(ProtocolError::NotAnObject)?;
        let kind = match envelope.kind() {
            Ok(index) => FrameKind::ALL[index],
            Err(BadType::Missing) => return Err(ProtocolError::MissingType),
            Err(BadType::Unknown(name)) => return Err(ProtocolError::UnknownType(name)),
        };
        let payload = envelope.take(0).ok_or(ProtocolError::MissingPayload)?;
        Self::from_parts(kind, payload)
    }

    /// The frame of type `kind` carrying `payload` (a DATA payload must be
    /// patch ops).
    pub(crate) fn from_parts(kind: FrameKind, payload: Value) -> Result<Self, ProtocolError> {
        Ok(match kind {
            FrameKind::Data => Frame::Data(
                crate::op_decode::ops_from_value(payload).map_err(ProtocolError::InvalidPatch)?,
            ),
            FrameKind::Message => Frame::Message(payload),
            FrameKind::Ping => Frame::Ping(payload),
            FrameKind::Pong => Frame::Pong(payload),
        })
    }

    /// Encodes the frame as the text of one WebSocket text frame.
    pub fn encode(&self) -> String {
        match self {
            Frame::Data(ops) => encode(FrameKind::Data, ops),
            Frame::Message(payload) => encode(FrameKind::Message, payload),
            Frame::Ping(payload) => encode(FrameKind::Ping, payload),
            Frame::Pong(payload) => encode(FrameKind::Pong, payload),
        }
    }
}

/// Encodes `{"type": kind, "payload": payload}` without building a [`Frame`].
pub fn encode<P: Serialize + ?Sized>(kind: FrameKind, payload: &P) -> String {
    #[derive(Serialize)]
    struct Wire<'a, P: ?Sized> {
        #[serde(rename = "type")]
        kind: &'static str,
        payload: &'a P,
    }
    // Serializing JSON values and patch operations into a String cannot fail:
    // object keys are strings and there is no I/O.
    serde_json::to_string(&Wire {
        kind: kind.as_str(),
        payload,
    })
    .expect("JSON values always serialize")
}

/// Encodes the DATA frame whose one op replaces the whole document with
/// `value`, `{"type": "DATA", "payload": [{"op": "replace", "path": "", "value": …}]}`,
/// straight from the borrowed value: the same text as encoding that op,
/// without the deep copy building it would take (a full sync of a large
/// state).
pub(crate) fn encode_replace_root(value: &Value) -> String {
    #[derive(Serialize)]
    struct ReplaceRoot<'a> {
        op: &'static str,
        path: &'static str,
        value: &'a Value,
    }
    encode(
        FrameKind::Data,
        &[ReplaceRoot {
            op: "replace",
            path: "",
            value,
        }],
    )
}

/// A MESSAGE frame encoded ahead of time: outside a lock, or once for many
/// connections ([`EncodedMessage::shared`]). Queue it with
/// [`Engine::send_encoded`](crate::Engine::send_encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage(FrameText);

impl EncodedMessage {
    /// Encodes `message` as a MESSAGE frame.
    pub fn new(message: &Value) -> Self {
        EncodedMessage(encode(FrameKind::Message, message).into())
    }

    /// Encodes `message` once into text that clones share without a copy,
    /// for sending the same message to many connections.
    pub fn shared(message: &Value) -> Self {
        EncodedMessage(Arc::<str>::from(encode(FrameKind::Message, message)).into())
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a frame is never empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_text(self) -> FrameText {
        self.0
    }
}

/// The text of one outgoing frame, owned or shared between connections.
///
/// Shared text lets one encoded frame go to many connections without a copy.
#[derive(Clone, PartialEq, Eq)]
pub struct FrameText(TextRepr);

#[derive(Clone, PartialEq, Eq)]
enum TextRepr {
    Owned(String),
    Shared(Arc<str>),
}

impl FrameText {
    /// The frame text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TextRepr::Owned(text) => text,
            TextRepr::Shared(text) => text,
        }
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Whether the text is empty (never true for an encoded frame).
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// The text as an owned `String` when it is not shared, else the shared
    /// text, so that a driver can hand either to its socket without a copy.
    pub fn into_owned_or_shared(self) -> Result<String, Arc<str>> {
        match self.0 {
            TextRepr::Owned(text) => Ok(text),
            TextRepr::Shared(text) => Err(text),
        }
    }
}

impl From<String> for FrameText {
    fn from(text: String) -> Self {
        FrameText(TextRepr::Owned(text))
    }
}

impl From<Arc<str>> for FrameText {
    fn from(text: Arc<str>) -> Self {
        FrameText(TextRepr::Shared(text))
    }
}

impl From<FrameText> for String {
    fn from(text: FrameText) -> Self {
        match text.0 {
            TextRepr::Owned(text) => text,
            TextRepr::Shared(text) => text.as_ref().to_owned(),
        }
    }
}

impl AsRef<str> for FrameText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for FrameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for FrameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(value: Value) -> Result<Frame, ProtocolError> {
        Frame::decode(&value.to_string())
    }

    #[test]
    fn replace_root_encodes_as_the_op_does() {
        for value in [
            json!(null),
            json!({"a": [1, {"b": "\u{e9}\"x"}]}),
            json!([1.5, -2]),
        ] {
            let op = PatchOperation::Replace(json_patch::ReplaceOperation {
                path: Default::default(),
                value: value.clone(),
            });
            assert_eq!(encode_replace_root(&value), encode(FrameKind::Data, &[op]));
        }
    }

    #[test]
    fn decodes_each_frame_type() {
        assert_eq!(
            decode(json!({"type": "MESSAGE", "payload": null})),
            Ok(Frame::Message(Value::Null))
        );
        assert_eq!(
            decode(json!({"type": "PING", "payload": {}})),
            Ok(Frame::Ping(json!({})))
        );
        assert_eq!(
            decode(json!({"type": "PONG", "payload": 1})),
            Ok(Frame::Pong(json!(1)))
        );
        let Ok(Frame::Data(ops)) = decode(json!({"type": "DATA", "payload": [
            {"op": "move", "from": "/2", "path": "/0"},
            {"op": "test", "path": "", "value": null},
        ]})) else {
            panic!("DATA frame did not decode");
        };
        assert_eq!(ops.len(), 2);
    }

    #[test]
    fn python_spacing_decodes() {
        // hat-juggler writes json.dumps output, with spaces after separators.
        let frame = Frame::decode(r#"{"type": "MESSAGE", "payload": [1, 2.5, "x"]}"#);
        assert_eq!(frame, Ok(Frame::Message(json!([1, 2.5, "x"]))));
    }

    #[test]
    fn encodes_type_then_payload() {
        assert_eq!(
            Frame::Message(json!({"a": [1, "b"]})).encode(),
            r#"{"type":"MESSAGE","payload":{"a":[1,"b"]}}"#
        );
        assert_eq!(
            Frame::Pong(json!({})).encode(),
            r#"{"type":"PONG","payload":{}}"#
        );
        let ops: Vec<PatchOperation> =
            serde_json::from_value(json!([{"op": "replace", "path": "", "value": 1}])).unwrap();
        assert_eq!(
            Frame::Data(ops).encode(),
            r#"{"type":"DATA","payload":[{"op":"replace","path":"","value":1}]}"#
        );
    }

    #[test]
    fn round_trips() {
        for frame in [
            Frame::Message(json!("ünïcode \"quoted\" \n")),
            Frame::Message(json!(u64::MAX)),
            Frame::Message(json!(i64::MIN)),
            Frame::Message(json!(0.1)),
            Frame::Ping(json!(null)),
        ] {
            assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
        }
    }

    #[test]
    fn rejects_everything_else_with_a_typed_error() {
        use ProtocolError::*;
        type Check = fn(&ProtocolError) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            ("", |e| matches!(e, InvalidJson(_))),
            ("{", |e| matches!(e, InvalidJson(_))),
            ("NaN", |e| matches!(e, InvalidJson(_))),
            (r#"{"type":"MESSAGE","payload":NaN}"#, |e| {
                matches!(e, InvalidJson(_))
            }),
            (r#"{"type":"MESSAGE","payload":Infinity}"#, |e| {
                matches!(e, InvalidJson(_))
            }),
            ("[]", |e| *e == NotAnObject),
            ("1", |e| *e == NotAnObject),
            (r#"{"payload":1}"#, |e| *e == MissingType),
            (r#"{"type":1,"payload":1}"#, |e| *e == MissingType),
            (
                r#"{"type":"data","payload":1}"#,
                |e| matches!(e, UnknownType(t) if t == "data"),
            ),
            (r#"{"type":"MESSAGE"}"#, |e| *e == MissingPayload),
            (r#"{"type":"DATA","payload":{}}"#, |e| {
                matches!(e, InvalidPatch(_))
            }),
            (
                r#"{"type":"DATA","payload":[{"op":"jump","path":""}]}"#,
                |e| matches!(e, InvalidPatch(_)),
            ),
            (
                r#"{"type":"DATA","payload":[{"op":"add","path":"a","value":1}]}"#,
                |e| matches!(e, InvalidPatch(_)),
            ),
        ];
        for (text, expected) in cases {
            let err = Frame::decode(text).expect_err(text);
            assert!(expected(&err), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = format!(
            r#"{{"type":"MESSAGE","payload":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(matches!(
            Frame::decode(&text),
            Err(ProtocolError::InvalidJson(_))
        ));
    }

    #[test]
    fn shared_and_owned_text_read_the_same() {
        let owned = FrameText::from(String::from("abc"));
        let shared = FrameText::from(Arc::<str>::from("abc"));
        assert_eq!(owned.as_str(), shared.as_str());
        assert_eq!(String::from(shared.clone()), "abc");
        assert!(shared.into_owned_or_shared().is_err());
        assert_eq!(owned.into_owned_or_shared(), Ok(String::from("abc")));
    }
}
