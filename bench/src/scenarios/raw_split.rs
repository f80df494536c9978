//! `--baseline raw` for the 0.7 requests: `v07-requests-sequential` and
//! `v07-requests-64` as the best a plain WebSocket program does, in the
//! layout of the Python peer's runs: **the server and the client each on a
//! thread of its own**, each with a single-threaded executor (tokio's
//! `current_thread` runtime on tokio, `smol::block_on` on smol), so neither
//! end waits for a task switch of the other's.
//!
//! The wire is 0.7's: a `0` header and the request or response object,
//! parsed with serde_json on receipt and checked. Writes are batched: each
//! end feeds frames while more input is ready and flushes once it has
//! none, the most a program can save on syscalls.

use std::time::Instant;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::raw::RawWs;
use super::Ctx;
use crate::report::{Measure, Outcome};
use crate::rt::Rt;

/// `calls` requests with `outstanding` at a time (listed with the other
/// baselines in [`super::raw::SCENARIOS`]).
pub async fn requests(ctx: Ctx, outstanding: u64) -> Outcome {
    let calls: u64 = match outstanding {
        1 => ctx.pick(20_000, 500),
        _ => ctx.pick(200_000, 2_000),
    };
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| format!("bind failed: {err}"))?;
    let address = listener
        .local_addr()
        .map_err(|err| format!("no address: {err}"))?;
    let rt = ctx.rt;
    let server = on_own_thread(rt, move || async move {
        let (stream, _) = listener
            .accept()
            .map_err(|err| format!("accept failed: {err}"))?;
        match rt {
            Rt::Tokio => echo(tokio_end(stream, None).await?).await,
            Rt::Smol => echo(smol_end(stream, None).await?).await,
        }
    });
    let client = on_own_thread(rt, move || async move {
        let stream = std::net::TcpStream::connect(address)
            .map_err(|err| format!("connect failed: {err}"))?;
        let url = format!("ws://{address}/ws");
        match rt {
            Rt::Tokio => ask(tokio_end(stream, Some(url)).await?, outstanding, calls).await,
            Rt::Smol => ask(smol_end(stream, Some(url)).await?, outstanding, calls).await,
        }
    });
    let elapsed = client
        .await
        .map_err(|_| "the client thread died".to_owned())??;
    server
        .await
        .map_err(|_| "the server thread died".to_owned())??;
    Ok(vec![Measure::new(
        "requests",
        calls as f64 / elapsed,
        "requests/s",
        format!(
            "{calls} request/response pairs, {outstanding} outstanding, in {elapsed:.3} s; \
             server and client each on its own thread, batched writes"
        ),
    )])
}

/// Runs `task` on a new thread with a single-threaded executor of `rt`;
/// its result comes through the returned channel.
fn on_own_thread<T, F, Fut>(rt: Rt, task: F) -> tokio::sync::oneshot::Receiver<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = match rt {
            Rt::Tokio => match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(task()),
                Err(_) => return,
            },
            Rt::Smol => smol::block_on(task()),
        };
        let _ = sender.send(result);
    });
    receiver
}

type TokioWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
type SmolWs = async_tungstenite::WebSocketStream<smol::net::TcpStream>;

/// One end over tokio: the server's with no `url`, the client's with one.
async fn tokio_end(stream: std::net::TcpStream, url: Option<String>) -> Result<TokioWs, String> {
    stream
        .set_nonblocking(true)
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|err| format!("socket setup failed: {err}"))?;
    let stream = tokio::net::TcpStream::from_std(stream).map_err(|err| err.to_string())?;
    match url {
        None => tokio_tungstenite::accept_async(stream).await,
        Some(url) => tokio_tungstenite::client_async(url, stream)
            .await
            .map(|(ws, _)| ws),
    }
    .map_err(|err| format!("handshake failed: {err}"))
}

/// One end over smol's sockets, as [`tokio_end`].
async fn smol_end(stream: std::net::TcpStream, url: Option<String>) -> Result<SmolWs, String> {
    stream
        .set_nodelay(true)
        .map_err(|err| format!("socket setup failed: {err}"))?;
    let stream = smol::net::TcpStream::try_from(stream).map_err(|err| err.to_string())?;
    match url {
        None => async_tungstenite::accept_async(stream).await,
        Some(url) => async_tungstenite::client_async(url, stream)
            .await
            .map(|(ws, _)| ws),
    }
    .map_err(|err| format!("handshake failed: {err}"))
}

/// The next message: at once if one is ready; otherwise, after flushing
/// what was fed (`unflushed`), when one comes.
async fn next_batched<W: RawWs>(ws: &mut W, unflushed: &mut bool) -> Result<Value, String> {
    let next = match ws.next().now_or_never() {
        Some(next) => next,
        None => {
            if *unflushed {
                ws.flush()
                    .await
                    .map_err(|err| format!("flush failed: {err}"))?;
                *unflushed = false;
            }
            ws.next().await
        }
    };
    match next {
        Some(Ok(Message::Text(text))) => match text.as_str().strip_prefix('0') {
            Some(message) => {
                serde_json::from_str(message).map_err(|err| format!("bad JSON: {err}"))
            }
            None => Err(format!("not a whole 0.7 message: {text}")),
        },
        Some(Ok(other)) => Err(format!("unexpected frame {other:?}")),
        Some(Err(err)) => Err(format!("read failed: {err}")),
        None => Err("the stream ended".to_owned()),
    }
}

/// The server: answers each `add` request until the client goes.
async fn echo<W: RawWs>(mut ws: W) -> Result<(), String> {
    let mut unflushed = false;
    loop {
        let Ok(request) = next_batched(&mut ws, &mut unflushed).await else {
            return Ok(()); // the client closed
        };
        let (Some(a), Some(b)) = (request["data"][0].as_i64(), request["data"][1].as_i64()) else {
            return Err(format!("bad request {request}"));
        };
        if request["type"] != "request" || request["name"] != "add" {
            return Err(format!("bad request {request}"));
        }
        let response = json!({
            "type": "response", "id": request["id"], "success": true, "data": a + b,
        });
        ws.feed(Message::text(format!("0{response}")))
            .await
            .map_err(|err| format!("echo write failed: {err}"))?;
        unflushed = true;
    }
}

/// The client: `calls` requests, `outstanding` at a time; every answer
/// checked. Returns the seconds they took.
async fn ask<W: RawWs>(mut ws: W, outstanding: u64, calls: u64) -> Result<f64, String> {
    let request = |id: u64| {
        let frame = json!({"type": "request", "id": id, "name": "add", "data": [id, 1]});
        Message::text(format!("0{frame}"))
    };
    let start = Instant::now();
    let mut next_id = 1u64;
    while next_id <= calls.min(outstanding) {
        ws.feed(request(next_id))
            .await
            .map_err(|err| format!("write failed: {err}"))?;
        next_id += 1;
    }
    let mut unflushed = true;
    let mut answered = 0u64;
    while answered < calls {
        let response = next_batched(&mut ws, &mut unflushed).await?;
        answered += 1;
        // The echo answers in order.
        if response["id"].as_u64() != Some(answered)
            || response["data"].as_u64() != Some(answered + 1)
        {
            return Err(format!("response {answered} is {response}"));
        }
        if next_id <= calls {
            ws.feed(request(next_id))
                .await
                .map_err(|err| format!("write failed: {err}"))?;
            next_id += 1;
            unflushed = true;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = ws.close().await;
    Ok(elapsed)
}
