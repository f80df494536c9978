//! The 0.6 and 0.7 generations beside 0.5: our client and server
//! together, one server for every generation (detection), the pinned
//! Python peers of both generations in both directions, and hostile
//! input through real sockets.

mod detect;
mod hostile;
mod notifications;
mod options;
mod python;
mod rooms;
mod slow_members;
mod typed;

pub use detect::*;
pub use hostile::*;
pub use notifications::*;
pub use options::*;
pub use python::*;
pub use rooms::*;
pub use slow_members::*;
pub use typed::*;

use std::time::Duration;

use futures_util::StreamExt;
use juggler_driver::v07::{Handlers, Options, RequestError};
use juggler_driver::{Error, Generation, Generations, ServerOptions};
use serde_json::json;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};

/// Every generation on one path, told apart by the first frame with no
/// time limit in practice (a silent client is 0.5), each change sent at
/// once on every generation, with `handlers` for 0.6/0.7.
pub(crate) fn detecting_options(handlers: Handlers) -> ServerOptions {
    ServerOptions::default()
        .generations(Generations::Detect {
            default: Generation::V0_5,
            timeout: Duration::from_secs(3600),
        })
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers)
        .autoflush_delay(Some(Duration::ZERO))
}

/// A 0.7-only server with `handlers`, sending each change at once; our
/// 0.7 client of it; and the server's side of that client.
pub(crate) async fn v07_connected<B: Backend>(
    handlers: Handlers,
) -> (
    B::Server,
    juggler_driver::v07::Client,
    juggler_driver::v07::Connection,
) {
    let (accepted, mut incoming) = tokio::sync::mpsc::unbounded_channel();
    let handlers = handlers.on_connection(move |connection| {
        let _ = accepted.send(connection);
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.expect("listen");
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .expect("connect");
    let ours = within::<B, _>(HANG_GUARD, "accepted", incoming.recv())
        .await
        .expect("accepted");
    (server, client, ours)
}

/// A server of `generations` with [`echo_handlers`].
pub(crate) async fn echo_server<B: Backend>(
    generations: Generations,
    options: Options,
) -> B::Server {
    let options = ServerOptions::default()
        .generations(generations)
        .v07(options)
        .v07_handlers(echo_handlers());
    B::listen(options, drop).await.expect("listen")
}

/// Handlers that echo (`echo`), fail (`fail`) and set the connection's
/// state (`set_state`).
pub(crate) fn echo_handlers() -> Handlers {
    Handlers::new().on_request(|connection, name, data| async move {
        match name.as_str() {
            "echo" => Ok(data),
            "fail" => Err(RequestError(data)),
            "set_state" => {
                connection.set_state(data);
                Ok(json!(null))
            }
            other => Err(RequestError::new(format!("no request {other}"))),
        }
    })
}

/// Our 0.6/0.7 client and server: requests, failures, the state and a
/// client timeout, segmented on 0.7.
pub async fn our_client_and_server_speak<B: Backend>(generation: Generation) {
    let options = Options::default()
        .generation(generation)
        .max_segment_size(7)
        .autoflush_delay(Some(Duration::ZERO));
    let server = echo_server::<B>(Generations::Only(generation), options.clone()).await;
    let client = within::<B, _>(
        HANG_GUARD,
        "connect",
        B::connect_v07(&server.url(), options),
    )
    .await
    .unwrap();
    assert_eq!(client.generation(), generation);
    let text = python::multibyte_text();
    let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!([text]))).await;
    assert_eq!(echoed.unwrap(), json!([text]));
    let failed = within::<B, _>(HANG_GUARD, "fail", client.send("fail", json!({"why": 1}))).await;
    assert!(
        matches!(&failed, Err(Error::Remote(data)) if *data == json!({"why": 1})),
        "{failed:?}"
    );
    let unknown = within::<B, _>(HANG_GUARD, "unknown", client.send("nope", json!(1))).await;
    assert!(
        matches!(&unknown, Err(Error::Remote(data)) if *data == json!("no request nope")),
        "{unknown:?}"
    );
    let set = within::<B, _>(
        HANG_GUARD,
        "set_state",
        client.send("set_state", json!({"é": [1, 2]})),
    )
    .await;
    assert_eq!(set.unwrap(), json!(null));
    let (_, state) = within::<B, _>(HANG_GUARD, "state", client.state_changed(0))
        .await
        .unwrap();
    assert_eq!(*state, json!({"é": [1, 2]}));

    // The same as streams: the current state, each change, then the end
    // at the close.
    let mut states = client.state_changes();
    let current = within::<B, _>(HANG_GUARD, "the current state", states.next()).await;
    assert_eq!(current.as_deref(), Some(&json!({"é": [1, 2]})));
    let set = within::<B, _>(
        HANG_GUARD,
        "set_state",
        client.send("set_state", json!([3])),
    )
    .await;
    assert_eq!(set.unwrap(), json!(null));
    let next = within::<B, _>(HANG_GUARD, "state stream", states.next()).await;
    assert_eq!(next.as_deref(), Some(&json!([3])));
    client.close();
    assert_eq!(
        within::<B, _>(HANG_GUARD, "stream end", states.next()).await,
        None
    );
    within::<B, _>(HANG_GUARD, "client closed", client.wait_closed()).await;
    let summary = within::<B, _>(HANG_GUARD, "server closed", server.close()).await;
    assert_eq!(summary.timed_out, 0);
}

/// Closing the server closes its 0.6/0.7 connections: the client sees
/// the close, and a request still being handled fails with `Closed`.
pub async fn closing_the_server_fails_pending_requests<B: Backend>() {
    let (started, mut handling) = tokio::sync::mpsc::unbounded_channel();
    let never = std::sync::Arc::new(tokio::sync::Notify::new());
    let handlers = Handlers::new().on_request(move |_, _, _| {
        let _ = started.send(());
        let never = never.clone();
        async move {
            never.notified().await;
            Ok(json!(null))
        }
    });
    let server_options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07_handlers(handlers);
    let server = B::listen(server_options, drop).await.unwrap();
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let (outcome, summary) = within::<B, _>(HANG_GUARD, "close", async {
        futures_util::future::join(client.send("wait", json!(1)), async {
            handling.recv().await.expect("the request arrives");
            server.close().await
        })
        .await
    })
    .await;
    assert!(matches!(outcome, Err(Error::Closed)), "{outcome:?}");
    assert_eq!(summary.closed, 1);
    within::<B, _>(HANG_GUARD, "client closed", client.wait_closed()).await;
    assert!(!client.is_open());
}

/// By default (`parallel_requests(false)`) a connection's requests run one
/// after another, in order, as the reference's: the second starts only
/// once the first (held until released) is answered.
pub async fn requests_run_one_at_a_time_by_default<B: Backend>() {
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (started, mut holding) = tokio::sync::mpsc::unbounded_channel();
    let (handler_log, handler_release) = (log.clone(), release.clone());
    let handlers = Handlers::new().on_request(move |_, name, _| {
        let (log, release, started) = (
            handler_log.clone(),
            handler_release.clone(),
            started.clone(),
        );
        async move {
            log.lock().unwrap().push(format!("start {name}"));
            if name == "hold" {
                let _ = started.send(());
                release.notified().await;
            }
            log.lock().unwrap().push(format!("end {name}"));
            Ok(json!(name))
        }
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.unwrap();
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let (held, later, ()) = within::<B, _>(HANG_GUARD, "requests", async {
        futures_util::join!(
            client.send("hold", json!(1)),
            client.send("later", json!(2)),
            async {
                holding.recv().await.unwrap();
                release.notify_one();
            }
        )
    })
    .await;
    assert_eq!(
        (held.unwrap(), later.unwrap()),
        (json!("hold"), json!("later"))
    );
    assert_eq!(
        *log.lock().unwrap(),
        ["start hold", "end hold", "start later", "end later"]
    );
    server.close().await;
}

/// A handler that panics answers `success: false` with "request handler
/// panicked" and the connection goes on: the requests behind it (one at a
/// time, by default) are answered. A server without a handler answers
/// every request with "no request handler".
pub async fn a_panicking_handler_answers_failure<B: Backend>() {
    let handlers = Handlers::new().on_request(|_, name, data| async move {
        if name == "panic" {
            panic!("a handler bug");
        }
        Ok(data)
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.unwrap();
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let (panicked, after) = within::<B, _>(HANG_GUARD, "requests", async {
        futures_util::join!(
            client.send("panic", json!(1)),
            client.send("echo", json!(2))
        )
    })
    .await;
    assert!(
        matches!(&panicked, Err(Error::Remote(data)) if *data == json!("request handler panicked")),
        "{panicked:?}"
    );
    assert_eq!(after.unwrap(), json!(2));
    assert!(client.is_open());
    server.close().await;

    let options = ServerOptions::default().generations(Generations::Only(Generation::V0_7));
    let server = B::listen(options, drop).await.unwrap();
    let client = B::connect_v07(&server.url(), Options::default())
        .await
        .unwrap();
    let unhandled = within::<B, _>(HANG_GUARD, "request", client.send("echo", json!(3))).await;
    assert!(
        matches!(&unhandled, Err(Error::Remote(data)) if *data == json!("no request handler")),
        "{unhandled:?}"
    );
    server.close().await;
}

/// A request the server never answers fails with `Error::Timeout` after
/// the client's `request_timeout`; the connection stays usable, and the
/// late answer (when the handler is released) is ignored.
pub async fn a_request_without_an_answer_times_out<B: Backend>() {
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let held = release.clone();
    let handlers = Handlers::new().on_request(move |_, name, data| {
        let held = held.clone();
        async move {
            if name == "hold" {
                held.notified().await;
            }
            Ok(data)
        }
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.unwrap();
    let client_options = Options::default().request_timeout(Some(Duration::from_millis(200)));
    let client = B::connect_v07(&server.url(), client_options).await.unwrap();
    let timed_out = within::<B, _>(HANG_GUARD, "timeout", client.send("hold", json!(1))).await;
    assert!(matches!(timed_out, Err(Error::Timeout)), "{timed_out:?}");
    release.notify_one();
    let echoed = within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(2))).await;
    assert_eq!(echoed.unwrap(), json!(2));
    assert!(client.is_open());
    server.close().await;
}

/// The generation cases, as `#[test]`s on `$backend`: the cases that
/// take a generation become a module with a test per generation.
#[macro_export]
macro_rules! generations_tests {
    ($backend:ty) => {
        $crate::generations_tests!(@each $backend;
            our_client_and_server_speak,
            python_server_serves_our_client,
            our_server_serves_the_python_client,
            hostile_frames_close_only_their_connection,
            typed_requests_on_a_served_state,
            the_path_api_edits_a_connections_state,
            the_python_client_sees_rooms,
        );
        $crate::generations_tests!(@plain $backend;
            closing_the_server_fails_pending_requests,
            requests_run_one_at_a_time_by_default,
            a_panicking_handler_answers_failure,
            a_request_without_an_answer_times_out,
            a_large_request_to_the_python_server_stays_under_its_frame_limit,
            one_path_serves_every_generation,
            a_silent_client_gets_the_default_generation,
            default_options_serve_every_generation,
            a_size_limit_set_once_bounds_every_generation,
            a_generations_own_limit_holds_under_detection,
            options_no_generation_applies_are_refused,
            a_group_shows_one_state_to_every_generation,
            a_first_frame_of_no_generation_is_refused,
            a_ping_between_segments_is_answered_at_once,
            segment_floods_and_ping_floods_are_bounded,
            a_message_that_never_ends_is_cut_off,
            requests_being_handled_are_bounded_in_bytes,
            unread_notifications_are_bounded_in_bytes,
            a_client_that_does_not_ask_keeps_no_notifications,
            bounded_policies_keep_the_newest,
            a_queue_keeps_every_notification,
            modify_state_is_a_safe_read_modify_write,
            a_stalled_member_misses_copies_not_the_others,
            a_stalled_member_is_closed_by_policy,
            rooms_show_groups_beside_each_connections_own_part,
            a_groups_end_gives_its_parts_back,
            change_callbacks_may_use_the_group,
        );
    };
    (@each $backend:ty; $($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn v0_6() {
                    <$backend as $crate::Backend>::block_on(
                        $crate::cases::generations::$case::<$backend>(juggler_driver::Generation::V0_6),
                    );
                }
                #[test]
                fn v0_7() {
                    <$backend as $crate::Backend>::block_on(
                        $crate::cases::generations::$case::<$backend>(juggler_driver::Generation::V0_7),
                    );
                }
            }
        )*
    };
    (@plain $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::generations::$case::<$backend>());
            }
        )*
    };
}
