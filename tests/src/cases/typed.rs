//! Typed state, typed RPC and broadcast groups: the application's own
//! serde types instead of `Value`, a peer whose data does not fit them,
//! and groups whose members drop at random.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use juggler_driver::{Connection, Error, Group, TypedConnection};
use juggler_rpc::{Action, Actions, RpcConnection, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::support::backend::{listen, pair, within, HANG_GUARD, IMMEDIATE};
use crate::{Backend, TestServer};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Visitor {
    name: String,
    age: u8,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Board {
    clients: u32,
    names: Vec<String>,
}

/// Local data set as one type arrives as that type on the other side,
/// through `remote_data`, `changed` and the `Stream`.
pub async fn typed_state_round_trips<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let board_side = TypedConnection::<Board, Visitor>::new(server_side);
    let visitor_side = TypedConnection::<Visitor, Board>::new(client);

    let mut boards = visitor_side.remote_changes();
    let board = Board {
        clients: 2,
        names: vec!["alice".into(), "bob".into()],
    };
    board_side.set_local_data(&board).unwrap();
    let seen = within::<B, _>(HANG_GUARD, "the board", boards.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, board);
    assert_eq!(visitor_side.remote_data().unwrap(), board);

    let mut visitors = board_side.remote_changes();
    let alice = Visitor {
        name: "alice".into(),
        age: 30,
    };
    visitor_side.set_local_data(&alice).unwrap();
    let seen = within::<B, _>(HANG_GUARD, "the visitor", visitors.next())
        .await
        .expect("the stream goes on while the connection is open")
        .unwrap();
    assert_eq!(seen, alice);

    // A value that is not JSON: a map whose keys are not strings.
    let mut odd = BTreeMap::new();
    odd.insert(vec![1u8], 2u8);
    let untyped =
        TypedConnection::<BTreeMap<Vec<u8>, u8>, Value>::new(visitor_side.connection().clone());
    assert!(matches!(
        untyped.set_local_data(&odd),
        Err(Error::LocalDataType(_))
    ));
    assert_eq!(*visitor_side.connection().local_data(), json!(alice));

    visitor_side.connection().close();
    assert!(
        within::<B, _>(HANG_GUARD, "the end of the stream", visitors.next())
            .await
            .is_none()
    );
    server.close().await;
}

/// The peer's data does not fit the type: a typed error, the connection
/// stays open and a later fitting change decodes; with
/// `close_on_mismatch` the connection closes with a protocol error.
pub async fn data_that_does_not_fit_is_an_error_not_a_close<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let typed = TypedConnection::<Value, Board>::new(client.clone());
    let mut boards = typed.remote_changes();

    server_side
        .set_local_data(json!({"clients": "many"}))
        .unwrap();
    let misfit = within::<B, _>(HANG_GUARD, "the misfit", boards.changed())
        .await
        .unwrap();
    assert!(
        matches!(misfit, Err(Error::RemoteDataType(_))),
        "{misfit:?}"
    );
    assert!(matches!(typed.remote_data(), Err(Error::RemoteDataType(_))));
    assert!(client.is_open(), "a misfit does not close the connection");

    let board = Board {
        clients: 1,
        names: vec!["carol".into()],
    };
    server_side.set_local_data(json!(board)).unwrap();
    let fitting = within::<B, _>(HANG_GUARD, "the fitting board", boards.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fitting, board);

    let strict = TypedConnection::<Value, Board>::new(client.clone()).close_on_mismatch(true);
    let mut strict_boards = strict.remote_changes();
    // The current board fits: the first change seen is it.
    assert!(
        within::<B, _>(HANG_GUARD, "the current board", strict_boards.changed())
            .await
            .unwrap()
            .is_ok()
    );
    server_side.set_local_data(json!([1, 2, 3])).unwrap();
    let misfit = within::<B, _>(HANG_GUARD, "the strict misfit", strict_boards.changed())
        .await
        .unwrap();
    assert!(matches!(misfit, Err(Error::RemoteDataType(_))));
    let reason = within::<B, _>(HANG_GUARD, "the close", client.wait_closed()).await;
    assert!(
        matches!(&reason, juggler_driver::CloseReason::Protocol(err) if err.to_string().contains("does not fit")),
        "{reason:?}"
    );
    within::<B, _>(
        HANG_GUARD,
        "the server side's close",
        server_side.wait_closed(),
    )
    .await;
    let expected_code = juggler_driver::ProtocolError::InvalidMessage(String::new()).close_code();
    assert_eq!(
        server_side.peer_close_frame().map(|(code, _)| code),
        Some(expected_code),
        "the peer is told why"
    );
    server.close().await;
}

/// `increment(by) -> counter` declared once for both sides.
struct Increment;

impl Action for Increment {
    const NAME: &'static str = "increment";
    type Args = (i64,);
    type Output = i64;
}

/// An action declared as a type: registered with `handle`, called with
/// `invoke`, on the wire as the reference's plain call; a remote error
/// keeps the JSON the peer sent.
pub async fn typed_rpc_declared_once<B: Backend>() {
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let actions = Actions::new().handle(Increment, |(by,)| async move {
        if by < 0 {
            Err(format!("cannot count down by {by}"))
        } else {
            Ok(100 + by)
        }
    });
    let served = RpcConnection::new(server_side, actions);
    let caller = RpcConnection::new(client.clone(), Actions::new());

    let total = within::<B, _>(HANG_GUARD, "the call", caller.invoke(Increment, (5,)))
        .await
        .unwrap();
    assert_eq!(total, 105);
    // The same action by name, as a Python or browser peer calls it.
    let raw = within::<B, _>(
        HANG_GUARD,
        "the raw call",
        caller.call("increment", vec![json!(1)]),
    )
    .await
    .unwrap();
    assert_eq!(raw, json!(101));
    let refused = within::<B, _>(
        HANG_GUARD,
        "the failing call",
        caller.invoke(Increment, (-1,)),
    )
    .await;
    match refused {
        Err(RpcError::Remote(error)) => assert_eq!(error, json!("cannot count down by -1")),
        other => panic!("expected a remote error, got {other:?}"),
    }
    caller.close();
    drop(served);
    server.close().await;
}

/// A peer that answers with a structured error: `RpcError::Remote` keeps
/// the JSON, and `remote_error_as` reads it as a type.
pub async fn structured_remote_errors_keep_their_json<B: Backend>() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Refusal {
        code: u16,
        why: String,
    }
    let (server, server_side, client) = pair::<B>(IMMEDIATE).await;
    let caller = RpcConnection::new(client, Actions::new());
    let answering = async {
        let request = server_side.receive().await.unwrap();
        server_side
            .send(&json!({
                "type": "rpc", "id": request["id"], "direction": "response",
                "success": false, "result": {"code": 403, "why": "not yours"},
            }))
            .await
            .unwrap();
    };
    let (outcome, ()) = within::<B, _>(
        HANG_GUARD,
        "the structured error",
        futures_util::future::join(caller.call("anything", vec![]), answering),
    )
    .await;
    let error = outcome.unwrap_err();
    assert_eq!(error.remote_text(), None);
    assert_eq!(
        error.remote_error_as::<Refusal>().unwrap().unwrap(),
        Refusal {
            code: 403,
            why: "not yours".into()
        }
    );
    assert!(error.remote_error_as::<u8>().unwrap().is_err());
    caller.close();
    server.close().await;
}

/// Members join, drop at random (closed by the client, closed by the
/// server, or their last handle dropped), and the group's count follows;
/// every member still open shows the group's latest state.
pub async fn groups_whose_members_drop_at_random<B: Backend>() {
    const MEMBERS: usize = 24;
    let (server, mut incoming) =
        listen::<B>(juggler_driver::ServerOptions::default().autoflush_delay(IMMEDIATE)).await;
    let group = Group::new(json!({"round": 0}));
    let mut members: Vec<(Connection, Option<Connection>)> = Vec::new();
    for _ in 0..MEMBERS {
        let client = B::connect(
            &server.url(),
            juggler_driver::ClientOptions::default().autoflush_delay(IMMEDIATE),
        )
        .await
        .unwrap();
        let server_side = incoming.next().await;
        group.join(&server_side).unwrap();
        members.push((client, Some(server_side)));
    }
    assert_eq!(group.member_count(), MEMBERS);

    // A fixed shuffle, so that a failure can be replayed.
    let mut random = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    let mut round = 0;
    while members.len() > 4 {
        let index = (next() % members.len() as u64) as usize;
        let (client, server_side) = members.swap_remove(index);
        let server_side = server_side.unwrap();
        match next() % 3 {
            0 => {
                client.close();
                within::<B, _>(HANG_GUARD, "a member's close", server_side.wait_closed()).await;
            }
            1 => {
                server_side.close();
                within::<B, _>(HANG_GUARD, "a member's close", server_side.wait_closed()).await;
            }
            _ => {
                // The last server-side handle goes: the connection closes
                // by itself, and the group holds it only weakly.
                let watcher = server_side.downgrade();
                drop(server_side);
                assert!(
                    watcher.upgrade().is_none(),
                    "the group keeps no member alive"
                );
                within::<B, _>(HANG_GUARD, "a dropped member's close", client.wait_closed()).await;
            }
        }
        round += 1;
        group.set_state(json!({"round": round}));
        assert_eq!(group.member_count(), members.len());
    }
    let sent = within::<B, _>(HANG_GUARD, "the group message", group.send(&json!("bye"))).await;
    assert_eq!(sent, members.len());
    let expected = json!({"round": round});
    for (client, _) in &members {
        let mut changes = client.remote_changes();
        within::<B, _>(HANG_GUARD, "the latest state", async {
            while *client.remote_data() != expected {
                changes.changed().await.unwrap();
            }
        })
        .await;
        let message = within::<B, _>(HANG_GUARD, "the group message", client.receive()).await;
        assert_eq!(message.unwrap(), json!("bye"));
    }
    server.close().await;
    assert_eq!(group.member_count(), 0);
}

/// Instantiates the typed cases for a backend.
#[macro_export]
macro_rules! typed_tests {
    ($backend:ty) => {
        $crate::typed_tests!(@cases $backend;
            typed_state_round_trips,
            data_that_does_not_fit_is_an_error_not_a_close,
            typed_rpc_declared_once,
            structured_remote_errors_keep_their_json,
            groups_whose_members_drop_at_random,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::typed::$case::<$backend>());
            }
        )*
    };
}
