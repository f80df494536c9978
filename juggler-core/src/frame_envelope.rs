//! The outer `{"type": …, "payload": …}` of a 0.5 frame, read in one pass.
//!
//! Parsing the text into a `Value` first builds an object around the
//! payload (a B-tree node, both keys and the type name, each on the heap)
//! only to take the payload back out of it: for a 100-byte message, about
//! as many allocations as the message itself. This reads the two members
//! straight from the text and skips any other, with the parser's limits
//! (nesting, syntax) as they were. It collects what it finds and judges
//! nothing, so a frame is refused for the same reason, and with the same
//! error, as when it was parsed whole (a property test compares them).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{truncate_utf8, ProtocolError};
use crate::frame::FrameKind;

/// A frame's outer members, as found in the text.
#[derive(Debug, Default)]
pub(crate) struct Envelope {
    /// The last `type` member, if any.
    kind: Option<TypeMember>,
    /// The last `payload` member, if any.
    payload: Option<Value>,
}

/// What a `type` member held.
#[derive(Debug)]
enum TypeMember {
    Known(FrameKind),
    /// A string that names no frame type, cut to 64 bytes for the error.
    Unknown(String),
    /// Not a string.
    NotText,
}

impl Envelope {
    /// Reads `text`; only the JSON itself (syntax, nesting) can fail here.
    /// `Ok(None)` is valid JSON that is not an object.
    pub(crate) fn read(text: &str) -> Result<Option<Envelope>, ProtocolError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let envelope = EnvelopeSeed
            .deserialize(&mut deserializer)
            .and_then(|envelope| deserializer.end().map(|()| envelope))
            .map_err(|err| ProtocolError::InvalidJson(err.to_string()))?;
        Ok(envelope)
    }

    /// The frame's type and payload, or why it is not a frame.
    pub(crate) fn into_parts(self) -> Result<(FrameKind, Value), ProtocolError> {
        let kind = match self.kind {
            Some(TypeMember::Known(kind)) => kind,
            Some(TypeMember::Unknown(name)) => return Err(ProtocolError::UnknownType(name)),
            Some(TypeMember::NotText) | None => return Err(ProtocolError::MissingType),
        };
        let payload = self.payload.ok_or(ProtocolError::MissingPayload)?;
        Ok((kind, payload))
    }
}

/// Reads the top-level value: an [`Envelope`] if it is an object.
struct EnvelopeSeed;

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Option<Envelope>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Option<Envelope>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(key) = map.next_key::<Member>()? {
            match key {
                Member::Type => envelope.kind = Some(map.next_value::<TypeMember>()?),
                Member::Payload => envelope.payload = Some(map.next_value::<Value>()?),
                Member::Other => {
                    map.next_value::<Skipped>()?;
                }
            }
        }
        Ok(Some(envelope))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An object member's name, as far as a frame cares.
enum Member {
    Type,
    Payload,
    Other,
}

impl<'de> de::Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;

        impl Visitor<'_> for MemberVisitor {
            type Value = Member;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
                Ok(match name {
                    "type" => Member::Type,
                    "payload" => Member::Payload,
                    _ => Member::Other,
                })
            }
        }

        deserializer.deserialize_identifier(MemberVisitor)
    }
}

impl<'de> de::Deserialize<'de> for TypeMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TypeVisitor)
    }
}

struct TypeVisitor;

impl<'de> Visitor<'de> for TypeVisitor {
    type Value = TypeMember;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<TypeMember, E> {
        Ok(match FrameKind::from_wire(name) {
            Some(kind) => TypeMember::Known(kind),
            None => TypeMember::Unknown(truncate_utf8(name, 64)),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TypeMember, A::Error> {
        drain_map(map).map(|()| TypeMember::NotText)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TypeMember, A::Error> {
        drain_seq(seq).map(|()| TypeMember::NotText)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<TypeMember, E> {
        Ok(TypeMember::NotText)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<TypeMember, E> {
        Ok(TypeMember::NotText)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<TypeMember, E> {
        Ok(TypeMember::NotText)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<TypeMember, E> {
        Ok(TypeMember::NotText)
    }

    fn visit_unit<E: de::Error>(self) -> Result<TypeMember, E> {
        Ok(TypeMember::NotText)
    }
}

/// A value the frame does not need, read through and dropped. Unlike
/// serde's `IgnoredAny` (which serde_json skips without counting levels),
/// it descends as a kept value would, so the parser's nesting limit holds.
struct Skipped;

impl<'de> de::Deserialize<'de> for Skipped {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skipped;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Skipped, A::Error> {
        drain_map(map).map(|()| Skipped)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Skipped, A::Error> {
        drain_seq(seq).map(|()| Skipped)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }
}

/// Reads the rest of an object the frame does not need.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<Skipped, Skipped>()?.is_some() {}
    Ok(())
}

/// Reads the rest of an array the frame does not need.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<Skipped>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::Frame;
    use crate::tests::properties::arb_json;

    /// The decoder this one replaced: the whole text parsed into a `Value`
    /// first, the members taken out of the object.
    fn decode_parsed_whole(text: &str) -> Result<Frame, ProtocolError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| ProtocolError::InvalidJson(err.to_string()))?;
        let Value::Object(mut object) = value else {
            return Err(ProtocolError::NotAnObject);
        };
        let kind = match object.get("type") {
            Some(Value::String(name)) => FrameKind::from_wire(name)
                .ok_or_else(|| ProtocolError::UnknownType(truncate_utf8(name, 64)))?,
            _ => return Err(ProtocolError::MissingType),
        };
        let payload = object
            .remove("payload")
            .ok_or(ProtocolError::MissingPayload)?;
        Ok(match kind {
            FrameKind::Data => Frame::Data(
                crate::op_decode::ops_from_value(payload).map_err(ProtocolError::InvalidPatch)?,
            ),
            FrameKind::Message => Frame::Message(payload),
            FrameKind::Ping => Frame::Ping(payload),
            FrameKind::Pong => Frame::Pong(payload),
        })
    }

    fn arb_member_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(vec!["DATA", "MESSAGE", "PING", "PONG", "data", "x\"y"])
                .prop_map(Value::from),
            Just(serde_json::json!([{"op": "replace", "path": "", "value": 1}])),
            Just(serde_json::json!([{"op": "add", "path": "/a", "value": [1, {}]}])),
            arb_json(),
        ]
    }

    /// The text of an object with these members, in this order, duplicates
    /// kept (a `Value` cannot hold them).
    fn object_text(members: &[(String, Value)]) -> String {
        let members: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
            .collect();
        format!("{{{}}}", members.join(", "))
    }

    fn arb_text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec!["type", "payload", "other", "typ\\u0065"]);
        let object = prop::collection::vec((key.prop_map(String::from), arb_member_value()), 0..4)
            .prop_map(|members| object_text(&members));
        let text = prop_oneof![
            4 => object,
            1 => arb_json().prop_map(|value| value.to_string()),
        ];
        // Cut short or with a stray character: syntax errors anywhere.
        (
            text,
            any::<prop::sample::Index>(),
            prop_oneof![
                4 => Just(None),
                1 => Just(Some("")),
                1 => Just(Some("}")),
                1 => Just(Some(",")),
                1 => Just(Some("\"")),
            ],
        )
            .prop_map(|(text, at, stray)| match stray {
                None => text,
                Some(stray) => {
                    let mut at = at.index(text.len() + 1);
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    if stray.is_empty() {
                        text[..at].to_owned()
                    } else {
                        format!("{}{stray}{}", &text[..at], &text[at..])
                    }
                }
            })
    }

    proptest! {
        #[test]
        fn decodes_as_parsing_the_whole_text_did(text in arb_text()) {
            prop_assert_eq!(Frame::decode(&text), decode_parsed_whole(&text));
        }
    }

    #[test]
    fn members_the_frame_ignores_keep_the_nesting_limit() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            format!(r#"{{"other":{deep},"type":"PING","payload":1}}"#),
            format!(r#"{{"type":{deep},"payload":1}}"#),
            format!(r#"{{"type":"PING","payload":1,"other":{{"x":{deep}}}}}"#),
        ] {
            let decoded = Frame::decode(&text);
            assert!(
                matches!(decoded, Err(ProtocolError::InvalidJson(_))),
                "{decoded:?}"
            );
            assert_eq!(decoded, decode_parsed_whole(&text));
        }
    }

    #[test]
    fn the_last_of_duplicate_members_counts() {
        let text = r#"{"type":"DATA","type":"MESSAGE","payload":1,"payload":[2]}"#;
        assert_eq!(
            Frame::decode(text),
            Ok(Frame::Message(serde_json::json!([2])))
        );
        assert_eq!(Frame::decode(text), decode_parsed_whole(text));
    }
}
