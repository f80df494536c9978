//! `--baseline raw` in the layout of the Python peer's runs: **the server
//! and the client each on a thread of its own**, each with a
//! single-threaded executor (tokio's `current_thread` runtime on tokio,
//! `smol::block_on` on smol), so neither end waits for a task switch of the
//! other's: the fair ceiling of a plain WebSocket program.
//!
//! - `v07-requests-sequential`, `v07-requests-64`: the 0.7 wire (a `0`
//!   header, request and response objects).
//! - The `split` metrics of `rpc-sequential` and `rpc-64`: the same echo
//!   with juggler-rpc's 0.5 wire objects.
//! - The `throughput split` metric of `messages-100b` and `messages-10kb`:
//!   the same MESSAGE frames one way, fed and flushed once at the end.
//!
//! Every message is parsed with serde_json on receipt and checked. Writes
//! are batched: each end feeds frames while more input is ready and
//! flushes once it has none, the most a program can save on syscalls.

use std::time::Instant;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::raw::RawWs;
use super::Ctx;
use crate::report::{Measure, Outcome};
use crate::rt::Rt;

/// The request/response objects of a generation.
#[derive(Clone, Copy)]
pub enum Wire {
    /// `0{"type": "request", "id", "name": "add", "data": [a, b]}`.
    V07,
    /// juggler-rpc's `{"type": "MESSAGE", "payload": {"type": "rpc", ...}}`.
    V05,
}

impl Wire {
    fn request(self, id: u64) -> Message {
        Message::text(match self {
            Wire::V07 => {
                format!(
                    "0{}",
                    json!({"type": "request", "id": id, "name": "add", "data": [id, 1]})
                )
            }
            Wire::V05 => json!({"type": "MESSAGE", "payload": {
                "type": "rpc", "id": id, "direction": "request",
                "action": "add", "args": [id, 1],
            }})
            .to_string(),
        })
    }

    /// `(id, a, b)` of a request.
    fn parse_request(self, request: &Value) -> Option<(&Value, i64, i64)> {
        let (id, args) = match self {
            Wire::V07 if request["type"] == "request" && request["name"] == "add" => {
                (&request["id"], &request["data"])
            }
            Wire::V05
                if request["type"] == "MESSAGE"
                    && request["payload"]["direction"] == "request"
                    && request["payload"]["action"] == "add" =>
            {
                (&request["payload"]["id"], &request["payload"]["args"])
            }
            _ => return None,
        };
        Some((id, args[0].as_i64()?, args[1].as_i64()?))
    }

    fn response(self, id: &Value, sum: i64) -> Message {
        Message::text(match self {
            Wire::V07 => format!(
                "0{}",
                json!({"type": "response", "id": id, "success": true, "data": sum})
            ),
            Wire::V05 => json!({"type": "MESSAGE", "payload": {
                "type": "rpc", "id": id, "direction": "response",
                "success": true, "result": sum,
            }})
            .to_string(),
        })
    }

    /// `(id, result)` of a response.
    fn parse_response(self, response: &Value) -> Option<(u64, u64)> {
        match self {
            Wire::V07 => Some((response["id"].as_u64()?, response["data"].as_u64()?)),
            Wire::V05 => Some((
                response["payload"]["id"].as_u64()?,
                response["payload"]["result"].as_u64()?,
            )),
        }
    }

    /// The JSON text of a frame.
    fn text(self, frame: &str) -> Option<&str> {
        match self {
            Wire::V07 => frame.strip_prefix('0'),
            Wire::V05 => Some(frame),
        }
    }
}

/// `calls` requests with `outstanding` at a time, over `wire` (listed with
/// the other baselines in [`super::raw::SCENARIOS`]).
pub async fn requests(ctx: Ctx, wire: Wire, outstanding: u64, metric: &'static str) -> Outcome {
    let calls = super::call_count(ctx, outstanding as usize) as u64;
    let ((), elapsed) = split(
        ctx.rt,
        Echo { wire },
        Ask {
            wire,
            outstanding,
            calls,
        },
    )
    .await?;
    let unit = match wire {
        Wire::V07 => "requests/s",
        Wire::V05 => "calls/s",
    };
    Ok(vec![Measure::new(
        metric,
        calls as f64 / elapsed,
        unit,
        format!(
            "{calls} request/response pairs, {outstanding} outstanding, in {elapsed:.3} s; \
             server and client each on its own thread, batched writes"
        ),
    )])
}

/// One end of a split run: what it does with its connected WebSocket.
trait End: Send + 'static {
    /// What it reports.
    type Output: Send + 'static;
    fn run<W: RawWs>(
        self,
        ws: W,
    ) -> impl std::future::Future<Output = Result<Self::Output, String>>;
}

/// Connects `server` and `client` over loopback, each on a thread of its
/// own with a single-threaded executor of `rt`, and returns what each
/// reports.
async fn split<S: End, C: End>(
    rt: Rt,
    server: S,
    client: C,
) -> Result<(S::Output, C::Output), String> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| format!("bind failed: {err}"))?;
    let address = listener
        .local_addr()
        .map_err(|err| format!("no address: {err}"))?;
    let server = on_own_thread(rt, move || async move {
        let (stream, _) = listener
            .accept()
            .map_err(|err| format!("accept failed: {err}"))?;
        match rt {
            Rt::Tokio => server.run(tokio_end(stream, None).await?).await,
            Rt::Smol => server.run(smol_end(stream, None).await?).await,
        }
    });
    let client = on_own_thread(rt, move || async move {
        let stream = std::net::TcpStream::connect(address)
            .map_err(|err| format!("connect failed: {err}"))?;
        let url = format!("ws://{address}/ws");
        match rt {
            Rt::Tokio => client.run(tokio_end(stream, Some(url)).await?).await,
            Rt::Smol => client.run(smol_end(stream, Some(url)).await?).await,
        }
    });
    let client = client
        .await
        .map_err(|_| "the client thread died".to_owned())??;
    let server = server
        .await
        .map_err(|_| "the server thread died".to_owned())??;
    Ok((server, client))
}

/// Runs `task` on a new thread with a single-threaded executor of `rt`;
/// its result comes through the returned channel.
pub(super) fn on_own_thread<T, F, Fut>(rt: Rt, task: F) -> tokio::sync::oneshot::Receiver<T>
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
async fn next_batched<W: RawWs>(
    ws: &mut W,
    wire: Wire,
    unflushed: &mut bool,
) -> Result<Value, String> {
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
        Some(Ok(Message::Text(text))) => match wire.text(text.as_str()) {
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
struct Echo {
    wire: Wire,
}

impl End for Echo {
    type Output = ();

    async fn run<W: RawWs>(self, mut ws: W) -> Result<(), String> {
        let wire = self.wire;
        let mut unflushed = false;
        loop {
            let Ok(request) = next_batched(&mut ws, wire, &mut unflushed).await else {
                return Ok(()); // the client closed
            };
            let Some((id, a, b)) = wire.parse_request(&request) else {
                return Err(format!("bad request {request}"));
            };
            ws.feed(wire.response(id, a + b))
                .await
                .map_err(|err| format!("echo write failed: {err}"))?;
            unflushed = true;
        }
    }
}

/// The client: `calls` requests, `outstanding` at a time; every answer
/// checked. Reports the seconds they took.
struct Ask {
    wire: Wire,
    outstanding: u64,
    calls: u64,
}

impl End for Ask {
    type Output = f64;

    async fn run<W: RawWs>(self, mut ws: W) -> Result<f64, String> {
        let Ask {
            wire,
            outstanding,
            calls,
        } = self;
        let start = Instant::now();
        let mut next_id = 1u64;
        while next_id <= calls.min(outstanding) {
            ws.feed(wire.request(next_id))
                .await
                .map_err(|err| format!("write failed: {err}"))?;
            next_id += 1;
        }
        let mut unflushed = true;
        let mut answered = 0u64;
        while answered < calls {
            let response = next_batched(&mut ws, wire, &mut unflushed).await?;
            answered += 1;
            // The echo answers in order.
            if wire.parse_response(&response) != Some((answered, answered + 1)) {
                return Err(format!("response {answered} is {response}"));
            }
            if next_id <= calls {
                ws.feed(wire.request(next_id))
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
}

/// `count` MESSAGE frames of about `size` bytes one way, sender and
/// receiver each on its own thread: the sender feeds them all and flushes
/// once; the receiver parses and checks each. The rate is until the last
/// one is checked.
pub async fn messages(ctx: Ctx, count: u64, size: usize) -> Outcome {
    let padding = crate::data::padding(size);
    let receiver = Receiver {
        count,
        padding_len: padding.len(),
    };
    let (done, start) = split(ctx.rt, receiver, Sender { count, padding }).await?;
    let elapsed = (done - start).as_secs_f64();
    Ok(vec![Measure::new(
        "throughput split",
        count as f64 / elapsed,
        "msgs/s",
        format!(
            "{count} frames of {size} B in {elapsed:.3} s; sender and receiver each on its own \
             thread, fed and flushed once"
        ),
    )])
}

/// The sender: feeds `count` messages, flushes once, and waits for the
/// receiver's close. Reports when it started.
struct Sender {
    count: u64,
    padding: String,
}

impl End for Sender {
    type Output = Instant;

    async fn run<W: RawWs>(self, mut ws: W) -> Result<Instant, String> {
        let start = Instant::now();
        for seq in 0..self.count {
            let frame = crate::data::message_frame(&crate::data::message(seq, &self.padding));
            ws.feed(Message::text(frame))
                .await
                .map_err(|err| format!("write failed: {err}"))?;
        }
        ws.flush()
            .await
            .map_err(|err| format!("flush failed: {err}"))?;
        // Waits for the receiver's close, so nothing is cut off.
        while let Some(Ok(_)) = ws.next().await {}
        Ok(start)
    }
}

/// The receiver: parses and checks each message. Reports when the last
/// one was checked.
struct Receiver {
    count: u64,
    padding_len: usize,
}

impl End for Receiver {
    type Output = Instant;

    async fn run<W: RawWs>(self, mut ws: W) -> Result<Instant, String> {
        let mut unflushed = false;
        for expected in 0..self.count {
            let frame = next_batched(&mut ws, Wire::V05, &mut unflushed).await?;
            if frame["type"] != "MESSAGE"
                || frame["payload"]["seq"].as_u64() != Some(expected)
                || frame["payload"]["data"].as_str().map(str::len) != Some(self.padding_len)
            {
                return Err(format!("message {expected} arrived wrong"));
            }
        }
        let done = Instant::now();
        let _ = ws.close().await;
        Ok(done)
    }
}
