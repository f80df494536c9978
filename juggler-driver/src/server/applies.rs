//! Which of a server's connection options its generations apply: an
//! option set for a generation the server does not speak is refused at
//! `listen`, never silently ignored.

use crate::v07::Options as V07Options;
use crate::{ConnectionOptions, Error, Generation};

use super::{Generations, ServerOptions};

/// Fails with [`Error::Config`] naming every option `options` set away
/// from its default that no generation the server speaks applies: a 0.5
/// option (`connection.*`) on a server of 0.6/0.7 only, a 0.6/0.7 option
/// (`v07.*`, `v07_handlers`) on a server of 0.5 only, and a client's
/// option in `v07` on any server. An option set through a setter for
/// every generation ([`ServerOptions::autoflush_delay`],
/// [`ServerOptions::keep_alive`], [`ServerOptions::max_message_size`],
/// [`ServerOptions::max_send_queue`]) applies wherever either half does.
pub(crate) fn check_options_apply(options: &ServerOptions) -> Result<(), Error> {
    let generations = options.generations.resolved(&options.v07_handlers);
    let (speaks_05, speaks_07) = match generations {
        Generations::Only(generation) => {
            let is_05 = generation == Generation::V0_5;
            (is_05, !is_05)
        }
        _ => (true, true),
    };
    let mut unapplied = client_only(&options.v07);
    // The server's shutdown timeout is every connection's close timeout.
    if options.v07.close_timeout != V07Options::default().close_timeout {
        unapplied.push("v07.close_timeout (see shutdown_timeout)");
    }
    if !speaks_07 {
        unapplied.extend(only_07(&options.v07, &options.connection));
        if options.v07_handlers.is_set() {
            unapplied.push("v07_handlers");
        }
    }
    if !speaks_05 {
        unapplied.extend(only_05(&options.connection, &options.v07));
    }
    if options.connection.close_timeout != ConnectionOptions::default().close_timeout {
        unapplied.push("connection.close_timeout (see shutdown_timeout)");
    }
    if unapplied.is_empty() {
        return Ok(());
    }
    let serves = match (options.generations, generations) {
        (Generations::Auto, Generations::Only(_)) => "0.5 only (no v07_handlers)".to_owned(),
        (_, Generations::Only(generation)) => format!("{generation} only"),
        _ => "every generation".to_owned(),
    };
    Err(Error::Config(format!(
        "this server speaks {serves}, which applies none of {}: set them for a generation it \
         speaks, or change `generations`",
        unapplied.join(", ")
    )))
}

/// An option each generation has its own field for: the two names,
/// whether each is set away from its default, and whether they agree.
struct Paired {
    v05: &'static str,
    v07: &'static str,
    v05_set: bool,
    v07_set: bool,
    agree: bool,
}

/// The options 0.5 and 0.6/0.7 both have, each in its own field.
fn paired(connection: &ConnectionOptions, v07: &V07Options) -> [Paired; 5] {
    let (default_05, default_07) = (ConnectionOptions::default(), V07Options::default());
    let pings_05 =
        |options: &ConnectionOptions| options.keep_alive.map(|k| (k.interval, k.timeout));
    let pings_07 = |options: &V07Options| {
        options
            .ping_delay
            .map(|delay| (delay, options.ping_timeout))
    };
    let pair = |v05, v07, v05_set, v07_set, agree| Paired {
        v05,
        v07,
        v05_set,
        v07_set,
        agree,
    };
    [
        pair(
            "connection.autoflush",
            "v07.autoflush",
            connection.autoflush != default_05.autoflush,
            v07.autoflush != default_07.autoflush,
            connection.autoflush == v07.autoflush,
        ),
        pair(
            "connection.keep_alive",
            "v07.ping_delay",
            pings_05(connection) != pings_05(&default_05),
            pings_07(v07) != pings_07(&default_07),
            pings_05(connection) == pings_07(v07),
        ),
        pair(
            "connection.max_message_size",
            "v07.max_frame_size",
            connection.max_message_size != default_05.max_message_size,
            v07.max_frame_size != default_07.max_frame_size,
            connection.max_message_size == v07.max_frame_size,
        ),
        pair(
            "connection.max_send_queue",
            "v07.send_queue_size",
            connection.max_send_queue != default_05.max_send_queue,
            v07.send_queue_size != default_07.send_queue_size,
            connection.max_send_queue == v07.send_queue_size,
        ),
        pair(
            "connection.read_buffer_size",
            "v07.read_buffer_size",
            connection.read_buffer_size != default_05.read_buffer_size,
            v07.read_buffer_size != default_07.read_buffer_size,
            connection.read_buffer_size == v07.read_buffer_size,
        ),
    ]
}

/// The 0.5 options `connection` sets that a 0.6/0.7 connection has no
/// use for: set away from the default and, for a paired one, from its
/// 0.6/0.7 half.
fn only_05(connection: &ConnectionOptions, v07: &V07Options) -> Vec<&'static str> {
    let default = ConnectionOptions::default();
    let paired = paired(connection, v07)
        .into_iter()
        .map(|option| (option.v05, option.v05_set && !option.agree));
    let own = [
        (
            "connection.max_patch_operations",
            connection.max_patch_operations != default.max_patch_operations,
        ),
        (
            "connection.max_remote_data_size",
            connection.max_remote_data_size != default.max_remote_data_size,
        ),
        (
            "connection.max_send_queue_bytes",
            connection.max_send_queue_bytes != default.max_send_queue_bytes,
        ),
        (
            "connection.max_queued_data_frames",
            connection.max_queued_data_frames != default.max_queued_data_frames,
        ),
        (
            "connection.max_receive_queue",
            connection.max_receive_queue != default.max_receive_queue,
        ),
        (
            "connection.max_receive_bytes",
            connection.max_receive_bytes != default.max_receive_bytes,
        ),
    ];
    set(paired.chain(own))
}

/// The 0.6/0.7 server options `v07` sets that a 0.5 connection has no use
/// for: set away from the default and, for a paired one, from its 0.5
/// half.
fn only_07(v07: &V07Options, connection: &ConnectionOptions) -> Vec<&'static str> {
    let default = V07Options::default();
    let paired = paired(connection, v07)
        .into_iter()
        .map(|option| (option.v07, option.v07_set && !option.agree));
    let own = [
        (
            "v07.max_segment_size",
            v07.max_segment_size != default.max_segment_size,
        ),
        (
            "v07.parallel_requests",
            v07.parallel_requests != default.parallel_requests,
        ),
        (
            "v07.max_pending_requests",
            v07.max_pending_requests != default.max_pending_requests,
        ),
        (
            "v07.max_pending_bytes",
            v07.max_pending_bytes != default.max_pending_bytes,
        ),
        (
            "v07.max_message_size",
            v07.max_message_size != default.max_message_size,
        ),
    ];
    set(paired.chain(own))
}

/// The client's options in `v07`, which no server applies.
fn client_only(v07: &V07Options) -> Vec<&'static str> {
    let default = V07Options::default();
    set([
        (
            "v07.notifications",
            v07.notifications != default.notifications,
        ),
        (
            "v07.receive_queue_size",
            v07.receive_queue_size != default.receive_queue_size,
        ),
        (
            "v07.max_receive_bytes",
            v07.max_receive_bytes != default.max_receive_bytes,
        ),
        (
            "v07.max_state_size",
            v07.max_state_size != default.max_state_size,
        ),
        (
            "v07.request_timeout",
            v07.request_timeout != default.request_timeout,
        ),
    ])
}

fn set(options: impl IntoIterator<Item = (&'static str, bool)>) -> Vec<&'static str> {
    options
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}
