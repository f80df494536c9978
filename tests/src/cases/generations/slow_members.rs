//! A group's broadcast never waits on a member that stopped reading: the
//! member misses copies (counted) or is closed, by the group's policy,
//! while the others get every one.

use juggler_driver::v07::{Client, Connection, Handlers, Notifications, Options};
use juggler_driver::{Generation, Generations, Group, ServerOptions, SlowMembers};
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};

/// A 0.7 server whose connections join `group` and are handed out;
/// `send_queue_size` frames each.
async fn joining_server<B: Backend>(
    group: &Group,
    send_queue_size: usize,
) -> (B::Server, mpsc::UnboundedReceiver<Connection>) {
    let (joined, incoming) = mpsc::unbounded_channel();
    let group = group.clone();
    let handlers = Handlers::new().on_connection(move |connection| {
        group.join(&connection).unwrap();
        let _ = joined.send(connection);
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(Generation::V0_7))
        .v07(Options::default().send_queue_size(send_queue_size))
        .v07_handlers(handlers);
    (B::listen(options, drop).await.expect("listen"), incoming)
}

/// A client that keeps one notification and then stops reading its
/// socket: the server's writes to it stall, and its queue fills.
fn stalling() -> Options {
    Options::default()
        .notifications(Notifications::Queue)
        .receive_queue_size(1)
}

/// Notifies the group (64 KiB each) until `done`, each time waiting for
/// `reader`, a member that reads, to get it in order: every call returns
/// without waiting for the stalled member, or this hangs. Returns how
/// many were sent.
async fn notify_until<B: Backend>(group: &Group, reader: &Client, done: impl Fn() -> bool) -> u64 {
    let pad = "x".repeat(64 * 1024);
    within::<B, _>(HANG_GUARD, "broadcasts past a stalled member", async {
        let mut sent = 0;
        while !done() {
            group.notify("tick", &json!({"n": sent, "pad": pad})).await;
            let got = reader.receive().await.expect("the reader is open");
            assert_eq!(
                got.data["n"],
                json!(sent),
                "the reader gets every one, in order"
            );
            sent += 1;
        }
        sent
    })
    .await
}

/// A group with a stalled member (on a server with a send queue of 2)
/// and a reading one (on another): the stalled client, its server-side
/// connection, the reader, and both servers.
async fn stalled_and_reader<B: Backend>(
    group: &Group,
) -> (Client, Connection, Client, B::Server, B::Server) {
    let (slow_server, mut slow_side) = joining_server::<B>(group, 2).await;
    let (fast_server, mut fast_side) = joining_server::<B>(group, 1024).await;
    let stalled = B::connect_v07(&slow_server.url(), stalling())
        .await
        .unwrap();
    let reader_options = Options::default().notifications(Notifications::Queue);
    let reader = B::connect_v07(&fast_server.url(), reader_options)
        .await
        .unwrap();
    let member = within::<B, _>(HANG_GUARD, "the slow side", slow_side.recv())
        .await
        .unwrap();
    within::<B, _>(HANG_GUARD, "the fast side", fast_side.recv()).await;
    (stalled, member, reader, slow_server, fast_server)
}

/// The default policy drops the stalled member's copies and counts them;
/// the member that reads gets every notification, in order.
pub async fn a_stalled_member_misses_copies_not_the_others<B: Backend>() {
    let group = Group::new(json!({}));
    let (stalled, member, reader, slow_server, fast_server) = stalled_and_reader::<B>(&group).await;
    notify_until::<B>(&group, &reader, || group.dropped() > 0).await;
    assert!(member.is_open(), "dropping copies keeps the member");
    drop(stalled);
    reader.close();
    slow_server.close().await;
    fast_server.close().await;
}

/// With [`SlowMembers::Close`], the stalled member is closed instead, and
/// nothing is counted as dropped.
pub async fn a_stalled_member_is_closed_by_policy<B: Backend>() {
    let group = Group::new(json!({})).slow_members(SlowMembers::Close);
    let (stalled, member, reader, slow_server, fast_server) = stalled_and_reader::<B>(&group).await;
    notify_until::<B>(&group, &reader, || !member.is_open()).await;
    assert_eq!(group.dropped(), 0);
    within::<B, _>(HANG_GUARD, "the member's end", member.wait_closed()).await;
    // The client stopped reading its socket; once it reads its
    // notifications again, it reaches the close.
    within::<B, _>(HANG_GUARD, "the client sees the close", async {
        while stalled.receive().await.is_some() {}
    })
    .await;
    assert!(!stalled.is_open());
    reader.close();
    slow_server.close().await;
    fast_server.close().await;
}
