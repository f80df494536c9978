//! Lines of JSON on stdout (NDJSON), written and flushed one at a time.

use std::io::{self, Write};

use serde_json::Value;

/// Writes one JSON value and a newline to stdout and flushes it, so that
/// a reader on a pipe sees each line as it comes. A closed pipe (`juggler
/// watch … | head -1`) is [`Closed`], not an error to report.
pub fn line(value: &Value) -> Result<(), Closed> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value).map_err(|_| Closed)?;
    out.write_all(b"\n").map_err(|_| Closed)?;
    out.flush().map_err(|_| Closed)
}

/// Stdout is closed: whoever read it has what they wanted.
#[derive(Debug, Clone, Copy)]
pub struct Closed;

/// Writes one line of text to stdout and flushes it.
pub fn text(line: &str) -> Result<(), Closed> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").map_err(|_| Closed)?;
    out.flush().map_err(|_| Closed)
}
