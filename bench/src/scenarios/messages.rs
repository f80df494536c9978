//! `messages-100b`, `messages-10kb`: one-way messages, client to server.
//!
//! The client `send`s as fast as the bounded send queue lets it; a task on
//! the server side `receive`s and checks every message's sequence number
//! and size. The rate is messages over the time from the first `send` to
//! the last message received; the run then checks that nothing more
//! arrives before the close.

use std::time::Instant;

use juggler_tokio::Error;

use super::{pair, Ctx};
use crate::data;
use crate::report::{Measure, Outcome};
use crate::sys::cpu_time;

/// Runs the scenario with messages of about `size` bytes.
pub async fn run(ctx: Ctx, size: usize) -> Outcome {
    let count: u64 = match size {
        100 => ctx.pick(500_000, 5_000),
        _ => ctx.pick(50_000, 500),
    };
    let (server, client, server_side) = pair(ctx.rt).await?;
    let padding = data::padding(size);
    let padding_len = padding.len();

    let receiver = ctx.rt.spawn(async move {
        for expected in 0..count {
            let message = server_side
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
        let done = Instant::now();
        Ok::<_, String>((done, server_side))
    });

    let cpu_start = cpu_time()?;
    let start = Instant::now();
    for seq in 0..count {
        client
            .send(&data::message(seq, &padding))
            .await
            .map_err(|err| format!("send of message {seq} failed: {err}"))?;
    }
    let (done, server_side) = ctx
        .rt
        .timeout(ctx.limit(), "receiving the messages", receiver)
        .await???;
    let cpu = cpu_time()? - cpu_start;
    let elapsed = done - start;

    // Exactly `count` arrived: after the client's close, the server side
    // has nothing more to receive.
    client.shutdown().await;
    match server_side.receive().await {
        Err(Error::Closed) => {}
        Ok(extra) => return Err(format!("an extra message arrived: {extra}")),
        Err(err) => return Err(format!("unexpected error after the last message: {err}")),
    }
    server.close().await;

    let rate = count as f64 / elapsed.as_secs_f64();
    Ok(vec![Measure::new(
        "throughput",
        rate,
        "msgs/s",
        format!(
            "{count} msgs of {size} B in {:.3} s; CPU {:.2} µs/msg (both sides)",
            elapsed.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / count as f64
        ),
    )])
}
