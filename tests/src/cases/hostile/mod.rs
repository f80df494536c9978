//! The hostile-input matrix: a peer (or a plain TCP client) that breaks
//! the protocol, over real sockets on 127.0.0.1, written once for every
//! runtime.
//!
//! Every case runs against a [`Bench`](crate::support::bench::Bench): one server with one well-behaved
//! juggler client connected. The offending connection must get a typed
//! error (a [`ProtocolError`](juggler_driver::ProtocolError) on the server side and the matching close
//! code on the wire, or an HTTP error status) and be closed; afterwards the
//! well-behaved client still exchanges messages and data correctly, the
//! server's `connection_count()` is back to the well-behaved connections
//! only, and no server or driver task has panicked.
//!
//! The cases by topic: [`frames`] (malformed frames, binary, bad UTF-8),
//! [`patches`], [`limits`] (size, floods, clients that never read),
//! [`budgets`] (byte budgets under floods),
//! [`transport`] (TCP dropped mid-frame, stalled TLS) and [`http`]; the
//! bench they share is `support::bench`.

pub mod budgets;
pub mod frames;
pub mod http;
pub mod limits;
pub mod patches;
pub mod transport;

pub use budgets::*;
pub use frames::*;
pub use http::*;
pub use limits::*;
pub use patches::*;
pub use transport::*;

/// Declares one `#[test]` per hostile-input case for a [`Backend`](crate::Backend).
#[macro_export]
macro_rules! hostile_tests {
    ($backend:ty) => {
        $crate::hostile_tests!(@cases $backend;
            binary_frame,
            invalid_utf8,
            frame_violations,
            partially_applicable_patch_changes_nothing,
            deep_nesting_built_by_patch_ops,
            frame_over_the_size_limit,
            remote_data_over_its_size_limit,
            flood_of_tiny_frames,
            ping_flood_from_a_non_reading_client,
            non_reading_client_is_closed_by_keep_alive,
            non_reading_client_queue_stays_bounded,
            floods_against_an_application_that_never_receives,
            floods_against_a_slow_handler,
            tcp_dropped_mid_frame,
            http_path_traversal,
            non_websocket_requests_to_ws_path,
            stalled_tls_handshake,
        );
    };
    (@cases $backend:ty; $($(#[$attribute:meta])* $case:ident),* $(,)?) => {
        $(
            $(#[$attribute])*
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::hostile::$case::<$backend>());
            }
        )*
    };
}
