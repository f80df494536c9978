//! Messages with the Python peer: order and JSON types, big messages,
//! PING/PONG and the close, both ways.

use super::*;

/// A string of `bytes` bytes whose every position matters.
fn big_string(bytes: usize) -> Value {
    let pattern = "0123456789abcdefghijklmnopqrstuv";
    let mut text = pattern.repeat(bytes / pattern.len() + 1);
    text.truncate(bytes);
    Value::String(text)
}

/// Asserts that a big value arrived whole, without printing megabytes.
fn assert_same_big(received: &Value, sent: &Value, what: &str) {
    assert!(
        received == sent,
        "{what}: received a different value ({} bytes of JSON, sent {})",
        received.to_string().len(),
        sent.to_string().len()
    );
}

/// Every message sequence of the conformance suite arrives in order, with
/// its JSON types, both ways.
pub async fn messages_in_order_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        for sequence in message_sequences() {
            for message in &sequence {
                link.rust.send(message).await.unwrap();
            }
            for message in &sequence {
                py.expect(json!({"event": "message", "conn": link.conn, "value": message}))
                    .await;
            }
            for message in &sequence {
                py.command(json!({"cmd": "send", "conn": link.conn, "value": message}));
            }
            for message in &sequence {
                let received = within::<B, _>(HANG_GUARD, "message", link.rust.receive())
                    .await
                    .unwrap();
                assert_eq!(received, *message, "{topology:?}");
                assert_eq!(received.is_f64(), message.is_f64());
            }
        }
        py.unlink(link, true).await;
    }
}

/// 8 MiB messages go both ways, between small ones, in order. The one
/// exception is the reference's own: hat-juggler's server takes messages of
/// at most 4 MiB (aiohttp's default), so towards it we send just under
/// that, and check that 8 MiB makes it close the connection rather than
/// anything breaking on our side. Our side takes 4 MiB by default too, so
/// it raises `max_message_size` here, as an application with large states
/// would.
pub async fn big_messages_both_ways<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    let big = big_string(8 << 20);
    let raised = ConnectionOptions::default()
        .autoflush_delay(IMMEDIATE)
        .max_message_size(16 << 20);
    for topology in TOPOLOGIES {
        let link = py
            .link_options(topology, raised.clone(), PY_IMMEDIATE, false, Value::Null)
            .await;
        // Python to us.
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "before"}));
        py.command(json!({"cmd": "send", "conn": link.conn, "value": big}));
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "after"}));
        assert_eq!(link.rust.receive().await.unwrap(), json!("before"));
        let received = within::<B, _>(HANG_GUARD, "8 MiB message", link.rust.receive())
            .await
            .unwrap();
        assert_same_big(&received, &big, "8 MiB from Python");
        assert_eq!(link.rust.receive().await.unwrap(), json!("after"));

        // Us to Python.
        let towards_python = match topology {
            Topology::RustServer => big.clone(),
            Topology::PythonServer => big_string((4 << 20) - 64),
        };
        link.rust.send(&json!("before")).await.unwrap();
        link.rust.send(&towards_python).await.unwrap();
        link.rust.send(&json!("after")).await.unwrap();
        py.expect(json!({"event": "message", "conn": link.conn, "value": "before"}))
            .await;
        let event = py.expect_kind("message").await;
        assert_same_big(&event["value"], &towards_python, "big message to Python");
        py.expect(json!({"event": "message", "conn": link.conn, "value": "after"}))
            .await;

        if topology == Topology::PythonServer {
            link.rust.send(&big).await.unwrap();
            py.expect(json!({"event": "closed", "conn": link.conn}))
                .await;
            let reason =
                within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
            assert_ne!(reason, CloseReason::Local);
            py.unlink(link, false).await;
        } else {
            py.unlink(link, true).await;
        }
    }
}

/// Our juggler PING gets hat-juggler's PONG (seen on the wire), and the
/// connection goes on working.
pub async fn ping_is_answered_with_pong<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, true).await;
        link.rust.send_ping().unwrap();
        py.expect(json!({
            "event": "frame_out",
            "conn": link.conn,
            "frame": {"type": "PONG", "payload": {}},
        }))
        .await;
        link.rust.send(&json!("after ping")).await.unwrap();
        py.expect(json!({"event": "message", "conn": link.conn, "value": "after ping"}))
            .await;
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "reply"}));
        py.expect_kind("frame_out").await;
        assert_eq!(
            within::<B, _>(HANG_GUARD, "reply", link.rust.receive())
                .await
                .unwrap(),
            json!("reply")
        );
        assert!(link.rust.is_open(), "{topology:?}");
        assert!(py.python_open(&link).await, "{topology:?}");
        py.unlink(link, true).await;
    }
}

/// Closing the connection or the server on either side is seen by the
/// other; what was sent before the close arrives first; afterwards
/// operations fail on both sides.
pub async fn closing_is_seen_by_the_other_side<B: Backend>() {
    let Some(mut py) = Py::<B>::start() else {
        return;
    };
    for topology in TOPOLOGIES {
        // We close. Our data waits for a deadline that never comes: the
        // close flushes it, ahead of the close.
        let link = py.link(topology, NEVER, PY_IMMEDIATE, false).await;
        link.rust.send(&json!("last words")).await.unwrap();
        link.rust.set_local_data(json!({"bye": true})).unwrap();
        link.rust.close();
        py.expect_unordered(vec![
            json!({"event": "message", "conn": link.conn, "value": "last words"}),
            json!({"event": "change", "conn": link.conn, "remote_data": {"bye": true}}),
        ])
        .await;
        py.expect(json!({"event": "closed", "conn": link.conn}))
            .await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
        assert_eq!(reason, CloseReason::Local, "{topology:?}");
        py.command(json!({"cmd": "send", "conn": link.conn, "value": 1}));
        py.expect_kind("error").await;
        assert!(!py.python_open(&link).await);
        py.unlink(link, false).await;

        // Python closes.
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        py.command(json!({"cmd": "set_local_data", "conn": link.conn, "value": "kept"}));
        py.command(json!({"cmd": "flush", "conn": link.conn}));
        py.expect_kind("flushed").await;
        py.command(json!({"cmd": "send", "conn": link.conn, "value": "last words"}));
        py.command(json!({"cmd": "close", "conn": link.conn}));
        py.expect(json!({"event": "closed", "conn": link.conn}))
            .await;
        let reason = within::<B, _>(HANG_GUARD, "our side closing", link.rust.wait_closed()).await;
        assert_eq!(reason, CloseReason::Remote, "{topology:?}");
        assert_eq!(link.rust.receive().await.unwrap(), json!("last words"));
        assert!(matches!(link.rust.receive().await, Err(Error::Closed)));
        assert!(matches!(
            link.rust.send(&json!(1)).await,
            Err(Error::Closed)
        ));
        assert!(matches!(
            link.rust.set_local_data(json!(1)),
            Err(Error::Closed)
        ));
        assert_eq!(*link.rust.remote_data(), json!("kept"));
        py.unlink(link, false).await;

        // The server closes, with the connection open.
        let link = py.link(topology, IMMEDIATE, PY_IMMEDIATE, false).await;
        let rust = link.rust.clone();
        py.unlink(link, true).await;
        assert!(!rust.is_open());
        let reason = rust.wait_closed().await;
        match topology {
            Topology::RustServer => assert_eq!(reason, CloseReason::Local),
            Topology::PythonServer => assert_eq!(reason, CloseReason::Remote),
        }
    }
}
