//! `--baseline raw`: the same traffic over a plain WebSocket library, no
//! Juggler library, as the yardstick for what the socket, the WebSocket
//! framing and serde_json cost by themselves: tokio-tungstenite on tokio
//! (the yardstick the targets are set against), async-tungstenite over
//! smol's sockets on smol (what the stack under juggler-smol can do on
//! smol's executor).
//!
//! - `messages-100b`, `messages-10kb`: the same MESSAGE frames (built from
//!   a `Value` and serialized per message, as `send` does), parsed with
//!   serde_json on receipt and checked like the library's; once writing
//!   (flushing) each frame alone, once batched (`feed` all, one `flush`).
//! - `rpc-sequential`, `rpc-64`: a serde_json request/response echo with
//!   juggler-rpc's wire objects: the server parses each request, adds, and
//!   answers; the client keeps one or 64 requests outstanding and checks
//!   every response.
//!
//! Both ends run on one runtime with the same thread count as the
//! library's runs. On tokio, `rpc-sequential` also runs its client from
//! outside the workers, on a thread blocking on the runtime's handle, as
//! `#[tokio::main]`'s main task does (`calls main task`). The `split`
//! metrics, and `v07-requests-sequential` and `v07-requests-64`, run each
//! end on a thread of its own instead, as the Python peer's runs do, with
//! batched writes ([`super::raw_split`]): the fair ceiling.

use std::future::Future;
use std::time::Instant;

use futures_util::future::try_join;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::raw_split::{self, Wire};
use super::{
    as_main_task, call_count, from_thread, median_of_runs, message_count, Ctx, Run, Scenario,
};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::rt::Rt;

/// The baselines, named after the scenarios they stand beside.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "messages-100b",
        about: "raw WebSocket one-way 100-byte frames, per-frame and batched",
        run: |ctx| boxed(median_of_runs(ctx, move || messages(ctx, 100))),
    },
    Scenario {
        name: "messages-10kb",
        about: "raw WebSocket one-way 10 KiB frames, per-frame and batched",
        run: |ctx| boxed(median_of_runs(ctx, move || messages(ctx, 10_240))),
    },
    Scenario {
        name: "rpc-sequential",
        about: "raw serde_json request/response echo, one outstanding",
        run: |ctx| boxed(median_of_runs(ctx, move || rpc(ctx, 1))),
    },
    Scenario {
        name: "rpc-64",
        about: "raw serde_json request/response echo, 64 outstanding",
        run: |ctx| boxed(median_of_runs(ctx, move || rpc(ctx, 64))),
    },
    Scenario {
        name: "v07-requests-sequential",
        about: "raw 0.7 request/response echo, one outstanding, each end on its own thread",
        run: |ctx| {
            boxed(median_of_runs(ctx, move || {
                raw_split::requests(ctx, Wire::V07, 1, "requests")
            }))
        },
    },
    Scenario {
        name: "v07-requests-64",
        about: "raw 0.7 request/response echo, 64 outstanding, each end on its own thread",
        run: |ctx| {
            boxed(median_of_runs(ctx, move || {
                raw_split::requests(ctx, Wire::V07, 64, "requests")
            }))
        },
    },
];

fn boxed(future: impl Future<Output = Outcome> + Send + 'static) -> Run {
    Box::pin(future)
}

/// Both layouts: one runtime for both ends (per-frame and batched), and
/// each end on its own thread (`throughput split`).
async fn messages(ctx: Ctx, size: usize) -> Outcome {
    let mut measures = match ctx.rt {
        Rt::Tokio => messages_over::<TokioWs>(ctx, size).await,
        Rt::Smol => messages_over::<SmolWs>(ctx, size).await,
    }?;
    measures.extend(raw_split::messages(ctx, message_count(ctx, size), size).await?);
    Ok(measures)
}

/// Both layouts: one runtime for both ends (`calls`), and each end on its
/// own thread (`calls split`).
async fn rpc(ctx: Ctx, outstanding: usize) -> Outcome {
    let mut measures = match ctx.rt {
        Rt::Tokio => rpc_over::<TokioWs>(ctx, outstanding, Caller::Task).await,
        Rt::Smol => rpc_over::<SmolWs>(ctx, outstanding, Caller::Task).await,
    }?;
    if (ctx.rt, outstanding) == (Rt::Tokio, 1) {
        measures.extend(rpc_over::<TokioWs>(ctx, outstanding, Caller::MainTask).await?);
    }
    measures.extend(raw_split::requests(ctx, Wire::V05, outstanding as u64, "calls split").await?);
    Ok(measures)
}

/// One end of a raw WebSocket connection on one runtime.
pub(crate) trait RawWs:
    Sink<Message, Error = WsError>
    + Stream<Item = Result<Message, WsError>>
    + Unpin
    + Send
    + Sized
    + 'static
{
    /// A connected client and server over loopback (TCP_NODELAY on both,
    /// as the library sets).
    fn pair() -> impl Future<Output = Result<(Self, Self), String>> + Send;
}

/// Implements [`RawWs`] for one runtime: its TCP types and its WebSocket
/// crate have the same functions by the same names (`bind`, `accept`,
/// `connect`, `set_nodelay`; `accept_async`, `client_async`), so the pair
/// is set up by the same code on both.
macro_rules! raw_ws {
    ($ws:ty, $listener:ty, $stream:ty, $tungstenite:ident) => {
        impl RawWs for $ws {
            async fn pair() -> Result<(Self, Self), String> {
                let listener = <$listener>::bind("127.0.0.1:0")
                    .await
                    .map_err(|err| format!("bind failed: {err}"))?;
                let address = listener
                    .local_addr()
                    .map_err(|err| format!("no address: {err}"))?;
                let ((server, _), client) =
                    try_join(listener.accept(), <$stream>::connect(address))
                        .await
                        .map_err(|err| format!("connect failed: {err}"))?;
                for stream in [&server, &client] {
                    stream
                        .set_nodelay(true)
                        .map_err(|err| format!("nodelay failed: {err}"))?;
                }
                let (server, (client, _)) = try_join(
                    $tungstenite::accept_async(server),
                    $tungstenite::client_async(format!("ws://{address}/ws"), client),
                )
                .await
                .map_err(|err| format!("handshake failed: {err}"))?;
                Ok((client, server))
            }
        }
    };
}

type TokioWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
type SmolWs = async_tungstenite::WebSocketStream<smol::net::TcpStream>;

raw_ws!(
    TokioWs,
    tokio::net::TcpListener,
    tokio::net::TcpStream,
    tokio_tungstenite
);
raw_ws!(
    SmolWs,
    smol::net::TcpListener,
    smol::net::TcpStream,
    async_tungstenite
);

/// The next text frame parsed as JSON.
async fn next_json(ws: &mut impl RawWs) -> Result<Value, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map_err(|err| format!("bad JSON: {err}"))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(other)) => return Err(format!("unexpected frame {other:?}")),
            Some(Err(err)) => return Err(format!("read failed: {err}")),
            None => return Err("the stream ended".to_owned()),
        }
    }
}

async fn messages_over<W: RawWs>(ctx: Ctx, size: usize) -> Outcome {
    let count = message_count(ctx, size);
    let padding = data::padding(size);
    let mut measures = Vec::new();
    for batched in [false, true] {
        let (mut client, mut server) = W::pair().await?;
        let padding_len = padding.len();
        let receiver = ctx.rt.spawn(async move {
            for expected in 0..count {
                let frame = next_json(&mut server).await?;
                if frame["type"] != "MESSAGE" {
                    return Err(format!("frame {expected} is not a MESSAGE"));
                }
                let seq = frame["payload"]["seq"].as_u64();
                if seq != Some(expected) {
                    return Err(format!("message {expected} arrived as {seq:?}"));
                }
                if frame["payload"]["data"].as_str().map(str::len) != Some(padding_len) {
                    return Err(format!("message {expected} arrived with wrong padding"));
                }
            }
            Ok::<_, String>((Instant::now(), server))
        });
        let start = Instant::now();
        for seq in 0..count {
            let frame = data::message_frame(&data::message(seq, &padding));
            let sent = if batched {
                client.feed(Message::text(frame)).await
            } else {
                client.send(Message::text(frame)).await
            };
            sent.map_err(|err| format!("write failed: {err}"))?;
        }
        client
            .flush()
            .await
            .map_err(|err| format!("flush failed: {err}"))?;
        let (done, mut server) = ctx
            .rt
            .timeout(ctx.limit(), "receiving the frames", receiver)
            .await???;
        let elapsed = done - start;
        client
            .close()
            .await
            .map_err(|err| format!("close failed: {err}"))?;
        // Nothing after the last message but the close.
        match server.next().await {
            Some(Ok(Message::Close(_))) | None => {}
            other => return Err(format!("unexpected frame after the last: {other:?}")),
        }
        measures.push(Measure::new(
            if batched {
                "throughput batched"
            } else {
                "throughput per-frame"
            },
            count as f64 / elapsed.as_secs_f64(),
            "msgs/s",
            format!(
                "{count} frames of {size} B in {:.3} s, {}",
                elapsed.as_secs_f64(),
                if batched {
                    "feed each, one flush"
                } else {
                    "send (flush) each"
                }
            ),
        ));
    }
    Ok(measures)
}

/// Where the client of [`rpc_over`] makes its calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// In the scenario's task (spawned on the runtime).
    Task,
    /// On a thread blocking on the tokio runtime's handle, as
    /// `#[tokio::main]`'s main task.
    MainTask,
}

async fn rpc_over<W: RawWs>(ctx: Ctx, outstanding: usize, caller: Caller) -> Outcome {
    let calls = call_count(ctx, outstanding) as u64;
    let (mut client, mut server) = W::pair().await?;
    let echo = ctx.rt.spawn(async move {
        loop {
            let frame = match next_json(&mut server).await {
                Ok(frame) => frame,
                Err(_) => return Ok::<(), String>(()), // the client closed
            };
            let request = &frame["payload"];
            let (Some(id), Some(a), Some(b)) = (
                request["id"].as_u64(),
                request["args"][0].as_i64(),
                request["args"][1].as_i64(),
            ) else {
                return Err(format!("bad request {frame}"));
            };
            if request["type"] != "rpc" || request["direction"] != "request" {
                return Err(format!("bad request {frame}"));
            }
            let response = json!({"type": "MESSAGE", "payload": {
                "type": "rpc", "id": id, "direction": "response",
                "success": true, "result": a + b,
            }});
            server
                .send(Message::text(response.to_string()))
                .await
                .map_err(|err| format!("echo write failed: {err}"))?;
        }
    });

    let (elapsed, mut client) = match caller {
        Caller::Task => (ask(&mut client, calls, outstanding).await?, client),
        Caller::MainTask => {
            let asked = as_main_task(async move {
                ask(&mut client, calls, outstanding)
                    .await
                    .map(|elapsed| (elapsed, client))
            });
            from_thread(ctx, "the calls from the main task", asked).await??
        }
    };
    client
        .close()
        .await
        .map_err(|err| format!("close failed: {err}"))?;
    ctx.rt
        .timeout(ctx.limit(), "the echo task", echo)
        .await???;

    let (metric, layout) = match caller {
        Caller::Task => ("calls", ""),
        Caller::MainTask => (
            "calls main task",
            "; awaited on a thread blocking on the runtime's handle, as #[tokio::main]'s main task",
        ),
    };
    Ok(vec![Measure::new(
        metric,
        calls as f64 / elapsed.as_secs_f64(),
        "calls/s",
        format!(
            "{calls} request/response pairs, {outstanding} outstanding, in {:.3} s{layout}",
            elapsed.as_secs_f64()
        ),
    )])
}

/// `calls` requests through `client`, `outstanding` at a time, every
/// answer checked; how long they took.
async fn ask<W: RawWs>(
    client: &mut W,
    calls: u64,
    outstanding: usize,
) -> Result<std::time::Duration, String> {
    let request = |id: u64| {
        let x = id as i64;
        let frame = json!({"type": "MESSAGE", "payload": {
            "type": "rpc", "id": id, "direction": "request",
            "action": "add", "args": [x, 1],
        }});
        Message::text(frame.to_string())
    };
    let start = Instant::now();
    let mut next_id = 1u64;
    let mut answered = 0u64;
    while next_id <= calls.min(outstanding as u64) {
        client
            .send(request(next_id))
            .await
            .map_err(|err| format!("write failed: {err}"))?;
        next_id += 1;
    }
    while answered < calls {
        let frame = next_json(client).await?;
        answered += 1;
        let response = &frame["payload"];
        let id = response["id"].as_u64().ok_or("response without id")?;
        // The echo answers in order.
        if id != answered || response["result"].as_i64() != Some(id as i64 + 1) {
            return Err(format!("response {answered} is {frame}"));
        }
        if next_id <= calls {
            client
                .send(request(next_id))
                .await
                .map_err(|err| format!("write failed: {err}"))?;
            next_id += 1;
        }
    }
    Ok(start.elapsed())
}
