//! RPC metrics through the `metrics` facade, behind the `metrics` feature;
//! without it every call compiles to nothing. docs/operations.md lists
//! them.

use std::time::{Duration, Instant};

use juggler_driver::Connection;

use crate::RpcError;

/// The runtime's clock when metrics are on; `None` (and no clock read)
/// when they are off.
pub(crate) fn started(connection: &Connection) -> Option<Instant> {
    cfg!(feature = "metrics").then(|| connection.runtime().now())
}

/// The time since `started`.
pub(crate) fn took(connection: &Connection, started: Option<Instant>) -> Option<Duration> {
    started.map(|started| {
        connection
            .runtime()
            .now()
            .saturating_duration_since(started)
    })
}

/// The outcome label of a call.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
fn call_outcome(outcome: &Result<serde_json::Value, RpcError>) -> &'static str {
    match outcome {
        Ok(_) => "success",
        Err(RpcError::Remote(_)) => "remote_error",
        Err(RpcError::Timeout) => "timeout",
        Err(RpcError::Closed | RpcError::Connection(_)) => "closed",
        Err(_) => "invalid",
    }
}

/// A call of this side ended (not dropped by its caller).
#[cfg(feature = "metrics")]
pub(crate) fn call_finished(outcome: &Result<serde_json::Value, RpcError>, took: Option<Duration>) {
    describe_once();
    let outcome = call_outcome(outcome);
    metrics::counter!("juggler_rpc_calls_total", "outcome" => outcome).increment(1);
    if let Some(took) = took {
        metrics::histogram!("juggler_rpc_call_duration_seconds").record(took.as_secs_f64());
    }
}

/// A request of the peer was answered: `success`, `failure` (the action
/// failed, panicked or does not exist), `refused` (too many running) or
/// `cancelled` (the connection closed first).
#[cfg(feature = "metrics")]
pub(crate) fn request_finished(outcome: &'static str, took: Option<Duration>) {
    describe_once();
    metrics::counter!("juggler_rpc_requests_total", "outcome" => outcome).increment(1);
    if let Some(took) = took {
        metrics::histogram!("juggler_rpc_request_duration_seconds").record(took.as_secs_f64());
    }
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn call_finished(
    _outcome: &Result<serde_json::Value, RpcError>,
    _took: Option<Duration>,
) {
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn request_finished(_outcome: &'static str, _took: Option<Duration>) {}

/// Describes juggler-rpc's metrics (their HELP text and unit) to the
/// installed `metrics` recorder; the first RPC connection does it by
/// itself. Does nothing without the `metrics` feature.
pub fn describe_metrics() {
    #[cfg(feature = "metrics")]
    {
        use metrics::{describe_counter, describe_histogram, Unit};
        describe_counter!(
            "juggler_rpc_calls_total",
            Unit::Count,
            "This side's calls, by outcome: success, remote_error, timeout, closed or invalid."
        );
        describe_histogram!(
            "juggler_rpc_call_duration_seconds",
            Unit::Seconds,
            "Time from a call to its response."
        );
        describe_counter!(
            "juggler_rpc_requests_total",
            Unit::Count,
            "The peer's requests, by outcome: success, failure, refused or cancelled."
        );
        describe_histogram!(
            "juggler_rpc_request_duration_seconds",
            Unit::Seconds,
            "Time an action ran."
        );
    }
}

/// Describes once, before the first record.
#[cfg(feature = "metrics")]
fn describe_once() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(describe_metrics);
}
