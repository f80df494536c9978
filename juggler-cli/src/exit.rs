//! How a command ends: its exit code and what it says on stderr.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// Why a command failed; each cause has its own exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The peer answered the call with an error (exit 1). Its data goes
    /// to stderr.
    #[error("{}", remote_text(.0))]
    Remote(Value),
    /// Connecting failed or the connection broke (exit 2).
    #[error("{0}")]
    Connection(String),
    /// The command did not finish within `--timeout` (exit 3).
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// An argument, a file or a value does not parse (exit 64,
    /// `EX_USAGE`); the text names it.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// A connection failure, from the library's error.
    pub fn connection(err: impl std::fmt::Display) -> Self {
        CliError::Connection(err.to_string())
    }

    /// The process's exit code for it.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Remote(_) => 1,
            CliError::Connection(_) => 2,
            CliError::Timeout(_) => 3,
            CliError::Usage(_) => 64,
        })
    }
}

/// The error data as it goes to stderr: a string as its text, anything
/// else as JSON.
fn remote_text(data: &Value) -> String {
    match data {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Exit code of bad input ([`CliError::Usage`]).
pub const USAGE: u8 = 64;
