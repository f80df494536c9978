//! The protocol generations.

use std::fmt;

/// A generation of the Juggler protocol, as hat-juggler's version numbers
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Generation {
    /// hat-juggler 0.5: symmetric DATA (JSON Patch) and MESSAGE frames.
    V0_5,
}

impl Generation {
    /// The version, as `"0.5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Generation::V0_5 => "0.5",
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
