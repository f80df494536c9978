//! The outer object of a message: its `type` and the members a
//! generation reads (0.5's `payload`; 0.7's `id`, `name`, `data`, …), read
//! in one pass.
//!
//! Parsing the text into a `Value` first builds an object around the
//! members (a B-tree node, every key and the type name, each on the heap)
//! only to take them back out of it: for a 100-byte message, about as many
//! allocations as the message itself. This reads the wanted members
//! straight from the text and skips any other, with the parser's limits
//! (nesting, syntax) as they were. It collects what it finds and judges
//! nothing, so a message is refused for the same reason, and with the same
//! error, as when it was parsed whole (property tests compare them).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::error::{truncate_utf8, ProtocolError};

/// The visit methods of the scalar JSON values other than strings, each
/// giving `$value`: what a visitor makes of a value it does not look into.
macro_rules! scalars_give {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A message's outer members, as found in the text: for each wanted
/// member, the last of that name.
#[derive(Debug)]
pub(crate) struct Envelope<const N: usize> {
    /// The last `type` member: a known type's index, or why it is none.
    kind: Option<Result<usize, BadType>>,
    members: [Option<Value>; N],
}

/// A message's shape: its known type names and the members it reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape<const N: usize> {
    /// The `type` names, each known by its index.
    pub(crate) types: &'static [&'static str],
    /// The members besides `type` that are kept.
    pub(crate) members: [&'static str; N],
}

impl<const N: usize> Shape<N> {
    /// Reads `text`; only the JSON itself (syntax, nesting) can fail here.
    /// `Ok(None)` is valid JSON that is not an object.
    pub(crate) fn read(self, text: &str) -> Result<Option<Envelope<N>>, ProtocolError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let envelope = EnvelopeSeed(self)
            .deserialize(&mut deserializer)
            .and_then(|envelope| deserializer.end().map(|()| envelope))
            .map_err(|err| ProtocolError::InvalidJson(err.to_string()))?;
        Ok(envelope)
    }
}

/// Why a message's type is not one of the known ones.
#[derive(Debug, PartialEq)]
pub(crate) enum BadType {
    /// No `type` member, or not a string.
    Missing,
    /// A string that is no known type (cut to 64 bytes).
    Unknown(String),
}

impl<const N: usize> Envelope<N> {
    /// The index of the message's type among the shape's `types`.
    pub(crate) fn kind(&mut self) -> Result<usize, BadType> {
        self.kind.take().unwrap_or(Err(BadType::Missing))
    }

    /// Takes the member at `index` of the shape's `members`.
    pub(crate) fn take(&mut self, index: usize) -> Option<Value> {
        self.members[index].take()
    }
}

/// Reads the top-level value: an [`Envelope`] if it is an object.
struct EnvelopeSeed<const N: usize>(Shape<N>);

impl<'de, const N: usize> DeserializeSeed<'de> for EnvelopeSeed<N> {
    type Value = Option<Envelope<N>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for EnvelopeSeed<N> {
    type Value = Option<Envelope<N>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            kind: None,
            members: std::array::from_fn(|_| None),
        };
        while let Some(member) = map.next_key_seed(MemberSeed(&self.0.members))? {
            match member {
                Member::Type => envelope.kind = Some(map.next_value_seed(TypeSeed(self.0.types))?),
                Member::Kept(index) => envelope.members[index] = Some(map.next_value()?),
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

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    scalars_give!(None);
}

/// An object member's name, as far as the message's shape cares.
enum Member {
    Type,
    Kept(usize),
    Other,
}

struct MemberSeed<'a>(&'a [&'static str]);

impl<'de> DeserializeSeed<'de> for MemberSeed<'_> {
    type Value = Member;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Member, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for MemberSeed<'_> {
    type Value = Member;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Member, E> {
        Ok(if name == "type" {
            Member::Type
        } else {
            match self.0.iter().position(|kept| *kept == name) {
                Some(index) => Member::Kept(index),
                None => Member::Other,
            }
        })
    }
}

struct TypeSeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for TypeSeed {
    type Value = Result<usize, BadType>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TypeSeed {
    type Value = Result<usize, BadType>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(match self.0.iter().position(|known| *known == name) {
            Some(index) => Ok(index),
            None => Err(BadType::Unknown(truncate_utf8(name, 64))),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        drain_map(map).map(|()| Err(BadType::Missing))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| Err(BadType::Missing))
    }

    scalars_give!(Err(BadType::Missing));
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

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }

    scalars_give!(Skipped);
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
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::{Frame, FrameKind};
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
            Some(Value::String(name)) => ["DATA", "MESSAGE", "PING", "PONG"]
                .iter()
                .zip([
                    FrameKind::Data,
                    FrameKind::Message,
                    FrameKind::Ping,
                    FrameKind::Pong,
                ])
                .find_map(|(wire, kind)| (wire == name).then_some(kind))
                .ok_or_else(|| ProtocolError::UnknownType(truncate_utf8(name, 64)))?,
            _ => return Err(ProtocolError::MissingType),
        };
        let payload = object
            .remove("payload")
            .ok_or(ProtocolError::MissingPayload)?;
        Frame::from_parts(kind, payload)
    }

    fn arb_member_value(types: &[&'static str]) -> impl Strategy<Value = Value> {
        let mut names = types.to_vec();
        names.extend(["data", "x\"y"]);
        prop_oneof![
            3 => prop::sample::select(names).prop_map(Value::from),
            1 => Just(serde_json::json!([{"op": "replace", "path": "", "value": 1}])),
            1 => Just(serde_json::json!([{"op": "add", "path": "/a", "value": [1, {}]}])),
            2 => arb_json(),
        ]
    }

    /// The text of an object with these members, in this order, duplicates
    /// kept (a `Value` cannot hold them). Keys are written as they are, so
    /// that one may be spelled with an escape.
    fn object_text(members: &[(String, Value)]) -> String {
        let members: Vec<String> = members
            .iter()
            .map(|(key, value)| format!("\"{key}\":{value}"))
            .collect();
        format!("{{{}}}", members.join(", "))
    }

    /// Message texts near a shape's: objects of its members (`type` among
    /// them, with its type names), other members and other values, some
    /// cut short or with a stray character (syntax errors anywhere).
    pub(crate) fn arb_message_text(
        types: &[&'static str],
        members: &[&'static str],
    ) -> impl Strategy<Value = String> {
        let names: Vec<String> = members.iter().map(|name| (*name).to_owned()).collect();
        // Each of the shape's members, mostly there, so that each type's
        // own members are read as often as the errors are.
        let own = prop::collection::vec(
            prop::option::weighted(0.8, arb_member_value(types)),
            members.len(),
        )
        .prop_map(move |values| {
            names
                .iter()
                .cloned()
                .zip(values)
                .filter_map(|(name, value)| Some((name, value?)))
                .collect::<Vec<_>>()
        });
        // Then others, repeats and `type` again (`typ\u0065` is `type`,
        // escaped), in any order.
        let mut keys = members.to_vec();
        keys.extend(["type", "other", "typ\\u0065"]);
        let extra = (
            prop::sample::select(keys).prop_map(String::from),
            arb_member_value(types),
        );
        let kind = prop::option::weighted(0.9, prop::sample::select(types.to_vec()));
        let object = (kind, own, prop::collection::vec(extra, 0..3))
            .prop_flat_map(|(kind, mut members, extra)| {
                members.extend(extra);
                if let Some(kind) = kind {
                    members.push(("type".to_owned(), Value::from(kind)));
                }
                Just(members).prop_shuffle()
            })
            .prop_map(|members| object_text(&members));
        let text = prop_oneof![
            4 => object,
            1 => arb_json().prop_map(|value| value.to_string()),
        ];
        let stray = prop_oneof![
            8 => Just(None),
            1 => Just(Some("")),
            1 => Just(Some("}")),
            1 => Just(Some(",")),
            1 => Just(Some("\"")),
        ];
        (text, any::<prop::sample::Index>(), stray).prop_map(|(text, at, stray)| match stray {
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
        fn decodes_as_parsing_the_whole_text_did(
            text in arb_message_text(&["DATA", "MESSAGE", "PING", "PONG"], &["payload"]),
        ) {
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
