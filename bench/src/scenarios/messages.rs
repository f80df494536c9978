//! `messages-100b`, `messages-10kb`: one-way messages, client to server.
//!
//! The client `send`s as fast as the bounded send queue lets it; a task on
//! the server side `receive`s and checks every message's sequence number
//! and size. The rate is messages over the time from the first `send` to
//! the last message received; the run then checks that nothing more
//! arrives before the close.
//!
//! On tokio the same messages run a second time in the layout of the raw
//! split baseline ([`super::raw_split`]): the server and the client each
//! on a thread of its own with a `current_thread` runtime
//! (`throughput own threads`), so that baseline is compared like for like.
//! juggler-smol spawns its tasks on smol's global executor, which has no
//! such layout.

use std::time::Instant;

use juggler_tokio::Error;

use super::raw_split::on_own_thread;
use super::{client_options, from_thread, message_count, next_accepted, pair, serve, Ctx};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::rt::Rt;
use crate::sys::cpu_time;

/// Runs the scenario with messages of about `size` bytes.
pub async fn run(ctx: Ctx, size: usize) -> Outcome {
    let count = message_count(ctx, size);
    let (server, client, server_side) = pair(ctx.rt).await?;
    let padding = data::padding(size);
    let padding_len = padding.len();

    let receiver = ctx.rt.spawn(async move {
        receive_all(&server_side, count, padding_len).await?;
        Ok::<_, String>((Instant::now(), server_side))
    });

    let cpu_start = cpu_time()?;
    let start = Instant::now();
    send_all(&client, count, &padding).await?;
    let (done, server_side) = ctx
        .rt
        .timeout(ctx.limit(), "receiving the messages", receiver)
        .await???;
    let cpu = cpu_time()? - cpu_start;
    let elapsed = done - start;

    // Exactly `count` arrived: after the client's close, the server side
    // has nothing more to receive.
    client.shutdown().await;
    nothing_more(&server_side).await?;
    server.close().await;

    let rate = count as f64 / elapsed.as_secs_f64();
    let mut measures = vec![Measure::new(
        "throughput",
        rate,
        "msgs/s",
        format!(
            "{count} msgs of {size} B in {:.3} s; CPU {:.2} µs/msg (both sides)",
            elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / count as f64
        ),
    )];
    if ctx.rt == Rt::Tokio {
        measures.push(on_own_threads(ctx, count, size).await?);
    }
    Ok(measures)
}

/// Sends `count` messages with `padding`, numbered from 0.
async fn send_all(
    connection: &juggler_tokio::Connection,
    count: u64,
    padding: &str,
) -> Result<(), String> {
    for seq in 0..count {
        connection
            .send(&data::message(seq, padding))
            .await
            .map_err(|err| format!("send of message {seq} failed: {err}"))?;
    }
    Ok(())
}

/// Checks that the next thing `connection` receives is the peer's close.
async fn nothing_more(connection: &juggler_tokio::Connection) -> Result<(), String> {
    match connection.receive().await {
        Err(Error::Closed) => Ok(()),
        Ok(extra) => Err(format!("an extra message arrived: {extra}")),
        Err(err) => Err(format!("unexpected error after the last message: {err}")),
    }
}

/// Receives `count` messages on `connection`, checking each one's sequence
/// number and padding.
async fn receive_all(
    connection: &juggler_tokio::Connection,
    count: u64,
    padding_len: usize,
) -> Result<(), String> {
    for expected in 0..count {
        let message = connection
            .receive()
            .await
            .map_err(|err| format!("receive of message {expected} failed: {err}"))?;
        let seq = message["seq"].as_u64();
        if seq != Some(expected) {
            return Err(format!("message {expected} arrived as {seq:?}"));
        }
        if message["data"].as_str().map(str::len) != Some(padding_len) {
            return Err(format!("message {expected} arrived with wrong padding"));
        }
    }
    Ok(())
}

/// The same `count` messages with the server and the client each on a
/// thread of its own, each with a `current_thread` tokio runtime: the
/// layout of the raw split baseline.
async fn on_own_threads(ctx: Ctx, count: u64, size: usize) -> Result<Measure, String> {
    let padding = data::padding(size);
    let padding_len = padding.len();
    let (url_sender, url) = tokio::sync::oneshot::channel();
    let server = on_own_thread(Rt::Tokio, move || async move {
        let (server, mut incoming) = serve(Rt::Tokio).await?;
        let _ = url_sender.send(server.url().to_owned());
        let server_side = next_accepted(Rt::Tokio, &mut incoming).await?;
        receive_all(&server_side, count, padding_len).await?;
        let done = Instant::now();
        // Exactly `count` arrived: the client's close comes next.
        nothing_more(&server_side).await?;
        server.close().await;
        Ok::<_, String>(done)
    });
    let url = from_thread(ctx, "the server thread's address", url).await?;
    let client = on_own_thread(Rt::Tokio, move || async move {
        let client = Rt::Tokio
            .connect(&url, client_options())
            .await
            .map_err(|err| format!("connect failed: {err}"))?;
        let start = Instant::now();
        send_all(&client, count, &padding).await?;
        // Shutting down writes what is still queued first.
        client.shutdown().await;
        Ok::<_, String>(start)
    });
    let start = from_thread(ctx, "the sending thread", client).await??;
    let done = from_thread(ctx, "the receiving thread", server).await??;
    let elapsed = (done - start).as_secs_f64();
    Ok(Measure::new(
        "throughput own threads",
        count as f64 / elapsed,
        "msgs/s",
        format!(
            "{count} msgs of {size} B in {elapsed:.3} s; server and client each on its own \
             thread with a current_thread runtime"
        ),
    ))
}
