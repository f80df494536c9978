//! Metrics through the `metrics` facade, behind the `metrics` feature.
//! Without it every type here is empty and every call compiles to nothing.
//! docs/operations.md lists the metrics and what they mean.

use juggler_core::{CloseReason, FrameKind};

/// The role label of a connection.
pub(crate) fn role_label(server: bool) -> &'static str {
    if server {
        "server"
    } else {
        "client"
    }
}

#[cfg(feature = "metrics")]
mod enabled {
    use metrics::{counter, gauge, Counter, Gauge};

    use super::{CloseReason, FrameKind};

    /// The reason label of a close.
    fn reason_label(reason: &CloseReason) -> &'static str {
        match reason {
            CloseReason::Local => "local",
            CloseReason::Remote => "remote",
            CloseReason::Protocol(_) => "protocol",
            CloseReason::Transport(_) => "transport",
            _ => "other",
        }
    }

    /// One connection's handles: looked up once, so that counting a frame
    /// is an atomic add and no registry lookup.
    pub(crate) struct ConnectionMetrics {
        role: &'static str,
        /// The close is counted (by the driver, or at the drop).
        closed: std::sync::atomic::AtomicBool,
        frames_received: Counter,
        received_bytes: Counter,
        /// By [`kind_index`].
        frames_sent: [Counter; 4],
        sent_bytes: Counter,
        collapsed: Counter,
        open: Gauge,
        send_queue_bytes: Gauge,
    }

    fn kind_index(kind: FrameKind) -> usize {
        match kind {
            FrameKind::Data => 0,
            FrameKind::Message => 1,
            FrameKind::Ping => 2,
            FrameKind::Pong => 3,
        }
    }

    impl ConnectionMetrics {
        pub(crate) fn new(role: &'static str) -> Self {
            super::describe_once();
            let sent = |kind: &'static str| counter!("juggler_frames_sent_total", "role" => role, "kind" => kind);
            let metrics = ConnectionMetrics {
                role,
                closed: std::sync::atomic::AtomicBool::new(false),
                frames_received: counter!("juggler_frames_received_total", "role" => role),
                received_bytes: counter!("juggler_received_bytes_total", "role" => role),
                frames_sent: [sent("data"), sent("message"), sent("ping"), sent("pong")],
                sent_bytes: counter!("juggler_sent_bytes_total", "role" => role),
                collapsed: counter!("juggler_data_frames_collapsed_total", "role" => role),
                open: gauge!("juggler_connections_open", "role" => role),
                send_queue_bytes: gauge!("juggler_send_queue_bytes", "role" => role),
            };
            counter!("juggler_connections_opened_total", "role" => role).increment(1);
            metrics.open.increment(1.0);
            metrics
        }

        pub(crate) fn received(&self, frames: usize, bytes: usize) {
            self.frames_received.increment(frames as u64);
            self.received_bytes.increment(bytes as u64);
        }

        pub(crate) fn sent(&self, kind: FrameKind, bytes: usize) {
            self.frames_sent[kind_index(kind)].increment(1);
            self.sent_bytes.increment(bytes as u64);
        }

        pub(crate) fn collapsed(&self, frames: u64) {
            if frames > 0 {
                self.collapsed.increment(frames);
            }
        }

        pub(crate) fn send_queue_moved(&self, before: usize, after: usize) {
            if after > before {
                self.send_queue_bytes.increment((after - before) as f64);
            } else if before > after {
                self.send_queue_bytes.decrement((before - after) as f64);
            }
        }

        pub(crate) fn closed(&self, reason: &CloseReason) {
            if self.closed.swap(true, std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            counter!(
                "juggler_connections_closed_total",
                "role" => self.role,
                "reason" => reason_label(reason),
            )
            .increment(1);
            self.open.decrement(1.0);
        }
    }

    impl Drop for ConnectionMetrics {
        /// A connection whose driver never ran (dropped before it was
        /// spawned) still leaves the open gauge.
        fn drop(&mut self) {
            self.closed(&CloseReason::Local);
        }
    }

    /// The bytes of received messages buffered in every connection.
    pub(crate) fn receive_buffer_moved(charged: usize, released: usize) {
        let gauge = gauge!("juggler_receive_queue_bytes");
        if charged > 0 {
            gauge.increment(charged as f64);
        }
        if released > 0 {
            gauge.decrement(released as f64);
        }
    }

    /// An upgrade request refused before it became a connection.
    pub(crate) fn upgrade_refused(reason: &'static str) {
        counter!("juggler_upgrades_refused_total", "reason" => reason).increment(1);
    }

    /// A 0.6/0.7 request of the peer was answered (or could not be):
    /// `success`, `failure` (the handler failed, panicked or is missing)
    /// or `cancelled` (the connection closed first); `took` is how long
    /// the handler ran.
    pub(crate) fn v07_request_finished(outcome: &'static str, took: std::time::Duration) {
        counter!("juggler_v07_requests_total", "outcome" => outcome).increment(1);
        metrics::histogram!("juggler_v07_request_duration_seconds").record(took.as_secs_f64());
    }

    /// Describes every metric of the driver (HELP text and unit) to the
    /// installed recorder.
    pub fn describe_metrics() {
        use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
        describe_counter!(
            "juggler_v07_requests_total",
            Unit::Count,
            "The peer's 0.6/0.7 requests, by outcome: success, failure or cancelled."
        );
        describe_histogram!(
            "juggler_v07_request_duration_seconds",
            Unit::Seconds,
            "Time a 0.6/0.7 request handler ran."
        );
        let counters = [
            (
                "juggler_connections_opened_total",
                Unit::Count,
                "Connections accepted (role=server) or connected (role=client).",
            ),
            (
                "juggler_connections_closed_total",
                Unit::Count,
                "Connections ended, by reason: local, remote, protocol or transport.",
            ),
            (
                "juggler_upgrades_refused_total",
                Unit::Count,
                "WebSocket upgrades refused before a connection existed, by reason.",
            ),
            (
                "juggler_frames_received_total",
                Unit::Count,
                "Juggler text frames read.",
            ),
            (
                "juggler_received_bytes_total",
                Unit::Bytes,
                "Text bytes of the Juggler frames read.",
            ),
            (
                "juggler_frames_sent_total",
                Unit::Count,
                "Juggler frames written, by kind: data, message, ping or pong.",
            ),
            (
                "juggler_sent_bytes_total",
                Unit::Bytes,
                "Text bytes of the Juggler frames written.",
            ),
            (
                "juggler_data_frames_collapsed_total",
                Unit::Count,
                "DATA frames merged away because a peer lagged.",
            ),
        ];
        for (name, unit, help) in counters {
            describe_counter!(name, unit, help);
        }
        let gauges = [
            (
                "juggler_connections_open",
                Unit::Count,
                "Connections open or closing now.",
            ),
            (
                "juggler_send_queue_bytes",
                Unit::Bytes,
                "Frame bytes queued to write, summed over connections.",
            ),
            (
                "juggler_receive_queue_bytes",
                Unit::Bytes,
                "Decoded bytes of received messages waiting for the application.",
            ),
        ];
        for (name, unit, help) in gauges {
            describe_gauge!(name, unit, help);
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use super::{CloseReason, FrameKind};

    /// Nothing: the `metrics` feature is off.
    pub(crate) struct ConnectionMetrics;

    impl ConnectionMetrics {
        #[inline(always)]
        pub(crate) fn new(_role: &'static str) -> Self {
            ConnectionMetrics
        }
        #[inline(always)]
        pub(crate) fn received(&self, _frames: usize, _bytes: usize) {}
        #[inline(always)]
        pub(crate) fn sent(&self, _kind: FrameKind, _bytes: usize) {}
        #[inline(always)]
        pub(crate) fn collapsed(&self, _frames: u64) {}
        #[inline(always)]
        pub(crate) fn send_queue_moved(&self, _before: usize, _after: usize) {}
        #[inline(always)]
        pub(crate) fn closed(&self, _reason: &CloseReason) {}
    }

    #[inline(always)]
    pub(crate) fn receive_buffer_moved(_charged: usize, _released: usize) {}

    #[inline(always)]
    pub(crate) fn upgrade_refused(_reason: &'static str) {}

    /// Nothing: the `metrics` feature is off.
    #[inline(always)]
    pub fn describe_metrics() {}

    #[inline(always)]
    pub(crate) fn v07_request_finished(_outcome: &'static str, _took: std::time::Duration) {}
}

pub(crate) use enabled::{
    receive_buffer_moved, upgrade_refused, v07_request_finished, ConnectionMetrics,
};

/// Describes the driver's metrics (their HELP text and unit) to the
/// installed `metrics` recorder, so that Prometheus shows what each one
/// means. The first connection does it by itself; call this when the
/// recorder is installed later than that. Does nothing without the
/// `metrics` feature.
pub fn describe_metrics() {
    enabled::describe_metrics();
}

#[cfg(feature = "metrics")]
/// Describes once, at the first connection: after the application has
/// installed its recorder, as it does at start.
pub(crate) fn describe_once() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(describe_metrics);
}

/// Whether this build records metrics (the `metrics` feature).
pub const METRICS_ENABLED: bool = cfg!(feature = "metrics");
