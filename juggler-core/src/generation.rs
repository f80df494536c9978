//! The protocol generations, and how the first frame of a client tells
//! them apart (SPEC-0.7.md §13).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::ProtocolError;

/// A generation of the Juggler protocol, as hat-juggler's version numbers
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Generation {
    /// hat-juggler 0.5: symmetric DATA (JSON Patch) and MESSAGE frames.
    V0_5,
    /// hat-juggler 0.6: `request`/`response`/`state`/`notify`, one bare
    /// JSON text frame each.
    V0_6,
    /// hat-juggler 0.7: the 0.6 messages over a transport of one-character
    /// headers, segments and pings.
    V0_7,
}

impl Generation {
    /// The version, as `"0.5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::V0_5 => "0.5",
            Generation::V0_6 => "0.6",
            Generation::V0_7 => "0.7",
        }
    }

    /// The generation a client speaks, from its first text frame: `{` with
    /// a 0.5 type (`DATA`, `MESSAGE`, `PING`, `PONG`) is 0.5, `{` with type
    /// `request` is 0.6, a 0.7 package header (`0` to `3`) is 0.7. Anything
    /// else is a violation of every generation. Only the frame's `type` is
    /// read; the frame itself is for the chosen generation's engine.
    ///
    /// ```
    /// use juggler_core::Generation;
    ///
    /// assert_eq!(Generation::detect(r#"{"type":"MESSAGE","payload":1}"#), Ok(Generation::V0_5));
    /// assert_eq!(Generation::detect(r#"{"type":"request","id":1,"name":"x","data":null}"#), Ok(Generation::V0_6));
    /// assert_eq!(Generation::detect("2"), Ok(Generation::V0_7));
    /// assert!(Generation::detect("hello").is_err());
    /// ```
    pub fn detect(first_frame: &str) -> Result<Generation, ProtocolError> {
        match first_frame.chars().next() {
            Some('0'..='3') => Ok(Generation::V0_7),
            Some('{') => {
                let typed: Typed<'_> = serde_json::from_str(first_frame)
                    .map_err(|err| ProtocolError::InvalidJson(err.to_string()))?;
                match typed.kind.as_deref() {
                    Some("DATA" | "MESSAGE" | "PING" | "PONG") => Ok(Generation::V0_5),
                    Some("request") => Ok(Generation::V0_6),
                    Some(other) => Err(ProtocolError::UnknownType(other.to_owned())),
                    None => Err(ProtocolError::MissingType),
                }
            }
            Some(other) => Err(ProtocolError::UnknownPackageHeader(other)),
            None => Err(ProtocolError::EmptyPackage),
        }
    }
}

/// The one member of a first frame that detection reads; the others are
/// skipped, not built.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_frames_of_each_generation() {
        let cases = [
            (r#"{"type":"DATA","payload":[]}"#, Generation::V0_5),
            (r#"{"type": "PING", "payload": null}"#, Generation::V0_5),
            (r#"{"type":"PONG","payload":1}"#, Generation::V0_5),
            (
                r#"{"type":"request","id":1,"name":"","data":{"é":1}}"#,
                Generation::V0_6,
            ),
            (
                r#"0{"type":"request","id":1,"name":"a","data":1}"#,
                Generation::V0_7,
            ),
            (r#"1{"type":"req"#, Generation::V0_7),
            ("2", Generation::V0_7),
            ("3payload", Generation::V0_7),
        ];
        for (frame, generation) in cases {
            assert_eq!(Generation::detect(frame), Ok(generation), "{frame}");
        }
    }

    #[test]
    fn frames_of_no_generation() {
        assert_eq!(Generation::detect(""), Err(ProtocolError::EmptyPackage));
        assert_eq!(
            Generation::detect("4x"),
            Err(ProtocolError::UnknownPackageHeader('4'))
        );
        assert_eq!(
            Generation::detect(" {\"type\":\"DATA\"}"),
            Err(ProtocolError::UnknownPackageHeader(' '))
        );
        assert_eq!(
            Generation::detect(r#"{"type":"notify"}"#),
            Err(ProtocolError::UnknownType("notify".into()))
        );
        assert_eq!(
            Generation::detect(r#"{"payload":1}"#),
            Err(ProtocolError::MissingType)
        );
        assert!(matches!(
            Generation::detect("{\"type\":"),
            Err(ProtocolError::InvalidJson(_))
        ));
        let deep = "[".repeat(100_000);
        let frame = format!("{{\"type\":\"DATA\",\"payload\":{deep}");
        assert!(matches!(
            Generation::detect(&frame),
            Err(ProtocolError::InvalidJson(_))
        ));
    }
}
