//! Groups as rooms: a connection of any generation in several groups,
//! each owning a part of its state at a JSON pointer beside the
//! connection's own part, with our clients and the pinned Python ones.

use std::time::Duration;

use juggler_driver::v07::{Client, Handlers, Options};
use juggler_driver::{
    ClientOptions, Connection, Error, Generation, Generations, Group, RemoteChanges, ServerOptions,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::python::{kind_of, Py};
use super::v07_connected;
use crate::support::backend::{within, Backend, TestServer, HANG_GUARD};

/// One op of a JSON Patch.
fn op(op: Value) -> juggler_driver::PatchOperation {
    serde_json::from_value(op).expect("an op")
}

/// Waits until the 0.6/0.7 client's state is `state`.
async fn reaches<B: Backend>(client: &Client, state: &Value) {
    let mut seen = 0;
    within::<B, _>(HANG_GUARD, &format!("state {state}"), async {
        while *client.state() != *state {
            (seen, _) = client.state_changed(seen).await.expect("open");
        }
    })
    .await;
}

/// Waits until the 0.5 client's data is `state`.
async fn reaches_05<B: Backend>(changes: &mut RemoteChanges, state: Value) {
    within::<B, _>(HANG_GUARD, &format!("0.5 data {state}"), async {
        while *changes.changed().await.expect("open") != state {}
    })
    .await;
}

/// The rooms of one test: a chat every connection is in, and two plants
/// (0.5 connections show the first, 0.6/0.7 ones the second).
struct Rooms {
    chat: Group,
    plants: [Group; 2],
}

impl Rooms {
    fn new() -> Self {
        Rooms {
            chat: Group::new(json!({"lines": []})),
            plants: [
                Group::new(json!({"level": 0})),
                Group::new(json!({"level": 10})),
            ],
        }
    }

    /// A server for every generation whose connections join the chat at
    /// `/chat` and a plant at `/plant`, and set their own `/user`; the
    /// server-side connections are handed out.
    async fn server<B: Backend>(
        &self,
    ) -> (
        B::Server,
        mpsc::UnboundedReceiver<Connection>,
        mpsc::UnboundedReceiver<juggler_driver::v07::Connection>,
    ) {
        let (v05_tx, v05_rx) = mpsc::unbounded_channel();
        let (v07_tx, v07_rx) = mpsc::unbounded_channel();
        let (chat, plant) = (self.chat.clone(), self.plants[1].clone());
        let handlers = Handlers::new()
            .on_connection(move |connection| {
                chat.join_at(&connection, "/chat").unwrap();
                plant.join_at(&connection, "/plant").unwrap();
                connection
                    .set("/user", connection.generation().as_str())
                    .unwrap();
                let _ = v07_tx.send(connection);
            })
            .on_request(|_, _, data| async move { Ok(data) });
        let options = super::detecting_options(handlers);
        let (chat, plant) = (self.chat.clone(), self.plants[0].clone());
        let server = B::listen(options, move |connection| {
            chat.join_at(&connection, "/chat").unwrap();
            plant.join_at(&connection, "/plant").unwrap();
            connection
                .update_local_data(vec![op(
                    json!({"op": "add", "path": "/user", "value": "0.5"}),
                )])
                .unwrap();
            let _ = v05_tx.send(connection);
        })
        .await
        .unwrap();
        (server, v05_rx, v07_rx)
    }
}

/// Every generation's client sees the groups' parts and its own beside
/// them; a group change reaches the members of that group only; own
/// changes keep the parts; leaving gives the part back.
pub async fn rooms_show_groups_beside_each_connections_own_part<B: Backend>() {
    let rooms = Rooms::new();
    let (server, mut v05_side, mut v07_side) = rooms.server::<B>().await;
    let v05 = B::connect(&server.url(), ClientOptions::default())
        .await
        .unwrap();
    let mut v05_changes = v05.remote_changes();
    v05.send(&json!("hello")).await.unwrap();
    let v05_conn = within::<B, _>(HANG_GUARD, "0.5 side", v05_side.recv())
        .await
        .unwrap();
    let mut clients = Vec::new();
    for generation in [Generation::V0_6, Generation::V0_7] {
        let client = B::connect_v07(&server.url(), Options::default().generation(generation))
            .await
            .unwrap();
        // The first request reveals the generation.
        within::<B, _>(HANG_GUARD, "echo", client.send("echo", json!(1)))
            .await
            .unwrap();
        clients.push(client);
    }
    let v07_conn = within::<B, _>(HANG_GUARD, "0.6 side", v07_side.recv())
        .await
        .unwrap();

    let composite = |user: &str, lines: Value, level: i64| json!({"user": user, "chat": {"lines": lines}, "plant": {"level": level}});
    reaches_05::<B>(&mut v05_changes, composite("0.5", json!([]), 0)).await;
    reaches::<B>(&clients[0], &composite("0.6", json!([]), 10)).await;
    reaches::<B>(&clients[1], &composite("0.7", json!([]), 10)).await;
    assert_eq!(rooms.chat.member_count(), 3);

    // The chat reaches every member; a plant only its own.
    rooms.chat.set("/lines/-", "hi").unwrap();
    rooms.plants[0].set("/level", 1).unwrap();
    rooms.plants[1]
        .update_state(vec![op(
            json!({"op": "replace", "path": "/level", "value": 11}),
        )])
        .unwrap();
    reaches_05::<B>(&mut v05_changes, composite("0.5", json!(["hi"]), 1)).await;
    reaches::<B>(&clients[0], &composite("0.6", json!(["hi"]), 11)).await;
    reaches::<B>(&clients[1], &composite("0.7", json!(["hi"]), 11)).await;

    // A connection's own whole state keeps the parts as the groups have
    // them; own ops on a part are refused.
    v05_conn
        .set_local_data(json!({"user": "renamed", "chat": "mine"}))
        .unwrap();
    v07_conn.set_state(json!({"user": "renamed too"}));
    reaches_05::<B>(&mut v05_changes, composite("renamed", json!(["hi"]), 1)).await;
    reaches::<B>(&clients[0], &composite("renamed too", json!(["hi"]), 11)).await;
    let refused = v05_conn.update_local_data(vec![op(json!({"op": "remove", "path": "/chat"}))]);
    assert!(matches!(refused, Err(Error::Patch(_))), "{refused:?}");
    assert!(matches!(
        v07_conn.set("/plant/level", 0),
        Err(Error::Patch(_))
    ));
    // Another group can't take a part that overlaps one.
    let other = Group::new(json!(null));
    assert!(matches!(
        other.join_at(&v05_conn, "/chat/lines"),
        Err(Error::Mount(_))
    ));
    // Nor can a group move its part onto another's: it stays where it was.
    assert!(matches!(
        rooms.plants[0].join_at(&v05_conn, "/chat/lines"),
        Err(Error::Mount(_))
    ));
    rooms.plants[0].set("/level", 2).unwrap();

    // Left: the part stays as it was, the connection's own again.
    assert!(rooms.chat.leave(&v05_conn));
    rooms.chat.set("/lines/-", "after").unwrap();
    reaches::<B>(
        &clients[0],
        &composite("renamed too", json!(["hi", "after"]), 11),
    )
    .await;
    v05_conn
        .update_local_data(vec![op(
            json!({"op": "add", "path": "/chat/mine", "value": true}),
        )])
        .unwrap();
    reaches_05::<B>(
        &mut v05_changes,
        json!({
            "user": "renamed", "chat": {"lines": ["hi"], "mine": true}, "plant": {"level": 2}
        }),
    )
    .await;
    server.close().await;
}

/// A group that ends gives its parts back to its members.
pub async fn a_groups_end_gives_its_parts_back<B: Backend>() {
    let (server, client, ours) = v07_connected::<B>(Handlers::new()).await;
    let room = Group::new(json!({"n": 1}));
    room.join_at(&ours, "/room").unwrap();
    assert!(matches!(ours.set("/room/n", 2), Err(Error::Patch(_))));
    drop(room);
    ours.set("/room/n", 2).unwrap();
    reaches::<B>(&client, &json!({"room": {"n": 2}})).await;
    server.close().await;
}

/// A change to make on a thread of its own.
type Step = Box<dyn FnOnce() + Send>;

/// `work` on a thread of its own, failing the test if it has not
/// returned within the hang guard (a deadlock).
fn returns(what: &str, work: Step) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        work();
        let _ = done.send(());
    });
    finished
        .recv_timeout(HANG_GUARD)
        .unwrap_or_else(|_| panic!("{what} did not return: deadlocked"));
}

/// A 0.6/0.7 member's change callback may use the group that changed its
/// state: it runs once the group's lock is released, for a join, a join
/// at a pointer and a change alike.
pub async fn change_callbacks_may_use_the_group<B: Backend>() {
    let (server, _client, ours) = v07_connected::<B>(Handlers::new()).await;
    let (whole, room) = (Group::new(json!({"n": 0})), Group::new(json!({"m": 0})));
    let (seen, saw) = std::sync::mpsc::channel();
    let _handle = ours.register_change_cb({
        let (whole, room) = (whole.clone(), room.clone());
        move || {
            let _ = seen.send((whole.state()["n"].clone(), room.get("/m").unwrap()));
        }
    });
    let steps: [(&str, Step); 4] = [
        (
            "join",
            Box::new({
                let (whole, ours) = (whole.clone(), ours.clone());
                move || whole.join(&ours).unwrap()
            }),
        ),
        (
            "join_at",
            Box::new({
                let (room, ours) = (room.clone(), ours.clone());
                move || room.join_at(&ours, "/room").unwrap()
            }),
        ),
        (
            "set",
            Box::new({
                let whole = whole.clone();
                move || whole.set("/n", 1).unwrap()
            }),
        ),
        (
            "set at a part",
            Box::new({
                let room = room.clone();
                move || room.set("/m", 2).unwrap()
            }),
        ),
    ];
    for (what, step) in steps {
        returns(what, step);
        saw.recv_timeout(HANG_GUARD).expect("the callback ran");
    }
    assert_eq!(*ours.state(), json!({"n": 1, "room": {"m": 2}}));
    server.close().await;
}

/// The pinned Python client of each generation sees a composite state:
/// its own part, and groups' changes under their pointers, a `move` in a
/// group included (0.6/0.7 send only `add`, `remove` and `replace`).
pub async fn the_python_client_sees_rooms<B: Backend>(generation: Generation) {
    let Some(mut py) = Py::start(kind_of(generation)) else {
        return;
    };
    let chat = Group::new(json!({"lines": ["é"]}));
    let plant = Group::new(json!({"a": 1}));
    let (chat_for, plant_for) = (chat.clone(), plant.clone());
    let handlers = Handlers::new().on_connection(move |connection| {
        chat_for.join_at(&connection, "/rooms/chat").unwrap();
        plant_for.join_at(&connection, "/plant").unwrap();
        connection.set("/user", "py").unwrap();
    });
    let options = ServerOptions::default()
        .generations(Generations::Only(generation))
        .v07(Options::default().autoflush_delay(Some(Duration::ZERO)))
        .v07_handlers(handlers);
    let server = B::listen(options, drop).await.expect("listen");
    py.command(json!({"cmd": "connect", "url": server.url()}));
    py.event::<B>("connected").await;
    py.state_reaches::<B>(&json!({
        "rooms": {"chat": {"lines": ["é"]}}, "plant": {"a": 1}, "user": "py"
    }))
    .await;
    chat.set("/lines/-", "ü").unwrap();
    plant
        .update_state(vec![op(json!({"op": "move", "from": "/a", "path": "/b"}))])
        .unwrap();
    py.state_reaches::<B>(&json!({
        "rooms": {"chat": {"lines": ["é", "ü"]}}, "plant": {"b": 1}, "user": "py"
    }))
    .await;
    server.close().await;
}
