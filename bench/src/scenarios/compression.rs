//! permessage-deflate, each figure beside the same without it, in one run.
//!
//! - `compression-wire`: the bytes the server sends for the first sync of
//!   the 100,000-key state and for 1,000 one-key changes of it, counted by
//!   a relay between client and server (plain threads), with the client's
//!   compression off and on (the server's is on, its default).
//! - `compression-cpu`: process CPU (both sides) per message of about 500 B
//!   of JSON, server to client, off and on.
//! - `compression-fanout-1000`: one change of a shared 1,000-key state to
//!   1,000 clients with `SharedState`, clients' compression off and on:
//!   process CPU per change and the ratio (target: at most 1.3×).
//! - `compression-fanout-1000-large`: the same with 100 entries changed a
//!   round, a patch that goes compressed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use juggler_tokio::{ClientOptions, Compression, Connection, Value};
use serde_json::json;
use tokio::sync::mpsc;

use super::fanout::{fan_out, wait_all, Clients, KEYS};
use super::{client_options, next_accepted, serve, serve_with, server_options, Ctx};
use crate::data::{self, FANOUT_INDEX};
use crate::report::{Measure, Outcome};
use crate::rt::Server;
use crate::sys::cpu_time;

/// Client options with compression on or off.
fn options(compressed: bool) -> ClientOptions {
    client_options().compression(if compressed {
        Compression::default()
    } else {
        Compression::disabled()
    })
}

fn mode(compressed: bool) -> &'static str {
    if compressed {
        "deflate"
    } else {
        "plain"
    }
}

/// A TCP relay that counts the bytes the server sends.
struct CountingRelay {
    addr: SocketAddr,
    from_server: Arc<AtomicU64>,
}

impl CountingRelay {
    fn start(target: SocketAddr) -> Result<CountingRelay, String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| err.to_string())?;
        let addr = listener.local_addr().map_err(|err| err.to_string())?;
        let from_server = Arc::new(AtomicU64::new(0));
        let counter = from_server.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (Ok(client), Ok(server)) = (stream, TcpStream::connect(target)) else {
                    continue;
                };
                for (from, to, count) in [
                    (client.try_clone(), server.try_clone(), None),
                    (
                        server.try_clone(),
                        client.try_clone(),
                        Some(counter.clone()),
                    ),
                ] {
                    let (Ok(mut from), Ok(mut to)) = (from, to) else {
                        continue;
                    };
                    std::thread::spawn(move || {
                        let mut buffer = vec![0u8; 64 << 10];
                        while let Ok(read) = from.read(&mut buffer) {
                            if read == 0 {
                                break;
                            }
                            if let Some(count) = &count {
                                count.fetch_add(read as u64, Ordering::SeqCst);
                            }
                            if to.write_all(&buffer[..read]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Ok(CountingRelay { addr, from_server })
    }

    fn url(&self, server: &Server) -> String {
        let path = server.url().splitn(4, '/').nth(3).unwrap_or("ws");
        format!("ws://{}/{path}", self.addr)
    }

    fn server_bytes(&self) -> u64 {
        self.from_server.load(Ordering::SeqCst)
    }
}

/// The server's address, from its `ws://host:port/path` URL.
fn address_of(server: &Server) -> Result<SocketAddr, String> {
    let authority = server
        .url()
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap_or_default();
    authority
        .parse()
        .map_err(|err| format!("the server's address {authority}: {err}"))
}

/// Waits for `client` to see `version` of entry `index`.
async fn seen(ctx: Ctx, client: &Connection, index: usize, version: u64) -> Result<(), String> {
    let mut changes = client.remote_changes();
    ctx.rt
        .timeout(ctx.limit(), "a change to arrive", async {
            loop {
                if data::version_of(&client.remote_data(), index) == Some(version) {
                    return Ok(());
                }
                changes
                    .changed()
                    .await
                    .map_err(|err| format!("the client closed: {err}"))?;
            }
        })
        .await?
}

/// The server's bytes for the first sync and for `patches` one-key
/// changes, through the relay.
async fn wire_bytes(ctx: Ctx, keys: usize, patches: u64, wire: Wire) -> Result<(u64, u64), String> {
    let (server_compression, client_compression) = wire.options();
    let (server, mut incoming) =
        serve_with(ctx.rt, server_options().compression(server_compression)).await?;
    let relay = CountingRelay::start(address_of(&server)?)?;
    let client = ctx
        .rt
        .connect(
            &relay.url(&server),
            client_options().compression(client_compression),
        )
        .await
        .map_err(|err| format!("connect failed: {err}"))?;
    let server_side = next_accepted(ctx.rt, &mut incoming).await?;
    let before = relay.server_bytes();
    let mut state = data::state(keys);
    server_side
        .set_local_data(Arc::new(state.clone()))
        .map_err(|err| err.to_string())?;
    seen(ctx, &client, FANOUT_INDEX % keys, 0).await?;
    if *client.remote_data() != state {
        return Err("the synced state differs".into());
    }
    let sync = relay.server_bytes() - before;
    let before = relay.server_bytes();
    // Each change as one op (`update_local_data`), so that no round
    // copies or diffs the whole state.
    for round in 1..=patches {
        let index = data::changed_index(round, keys);
        state[data::key(index)]["v"] = json!(round);
        server_side
            .update_local_data(vec![data::version_op(index, round)?])
            .map_err(|err| format!("update_local_data failed: {err}"))?;
        seen(ctx, &client, index, round).await?;
    }
    if *client.remote_data() != state {
        return Err("the patched state differs".into());
    }
    let changes = relay.server_bytes() - before;
    client.close();
    client.wait_closed().await;
    server.close().await;
    Ok((sync, changes))
}

/// What `compression-wire` compares.
#[derive(Clone, Copy)]
enum Wire {
    /// No compression.
    Plain,
    /// The defaults: no context takeover either way.
    Deflate,
    /// The server keeps its context (`Compression::context_takeover`) and
    /// the client lets it (`peer_context_takeover`).
    Context,
}

impl Wire {
    /// (the server's options, the client's).
    fn options(self) -> (Compression, Compression) {
        match self {
            Wire::Plain => (Compression::default(), Compression::disabled()),
            Wire::Deflate => (Compression::default(), Compression::default()),
            Wire::Context => (
                Compression {
                    context_takeover: true,
                    ..Compression::default()
                },
                Compression {
                    peer_context_takeover: true,
                    ..Compression::default()
                },
            ),
        }
    }

    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Wire::Plain => ("sync bytes plain", "change bytes plain", "plain"),
            Wire::Deflate => (
                "sync bytes deflate",
                "change bytes deflate",
                "deflate, no context takeover (the default)",
            ),
            Wire::Context => (
                "sync bytes deflate+context",
                "change bytes deflate+context",
                "deflate, the server's context takeover",
            ),
        }
    }
}

/// `compression-wire`.
pub async fn wire(ctx: Ctx) -> Outcome {
    let keys = ctx.pick(100_000, 1_000);
    let patches = ctx.pick(1_000, 20);
    let mut measures = Vec::new();
    let mut figures = Vec::new();
    for wire in [Wire::Plain, Wire::Deflate, Wire::Context] {
        let (sync, changes) = wire_bytes(ctx, keys, patches, wire).await?;
        figures.push((sync, changes));
        let (sync_name, change_name, mode) = wire.names();
        measures.push(Measure::new(
            sync_name,
            sync as f64,
            "B",
            format!("server to client, first sync of {keys} keys, {mode} (TCP payload)"),
        ));
        measures.push(Measure::new(
            change_name,
            changes as f64 / patches as f64,
            "B",
            format!("server to client per one-key change, {patches} changes of the {keys}-key state, {mode}"),
        ));
    }
    for (index, sync_ratio, change_ratio) in [
        (1, "sync ratio", "change ratio"),
        (2, "sync ratio context", "change ratio context"),
    ] {
        measures.push(Measure::new(
            sync_ratio,
            figures[0].0 as f64 / figures[index].0.max(1) as f64,
            "×",
            format!(
                "plain bytes over {} bytes, first sync",
                Wire::names([Wire::Plain, Wire::Deflate, Wire::Context][index]).2
            ),
        ));
        measures.push(Measure::new(
            change_ratio,
            figures[0].1 as f64 / figures[index].1.max(1) as f64,
            "×",
            format!(
                "plain bytes over {} bytes, one-key changes",
                Wire::names([Wire::Plain, Wire::Deflate, Wire::Context][index]).2
            ),
        ));
    }
    Ok(measures)
}

/// A message of about 500 B of JSON that compresses as real ones do.
fn kilobyte(seq: u64) -> Value {
    json!({"seq": seq, "rows": (0..12).map(|i| json!({"key": data::key(i), "name": format!("item {i}"), "v": seq})).collect::<Vec<_>>()})
}

/// `compression-cpu`.
pub async fn cpu(ctx: Ctx) -> Outcome {
    let count = ctx.pick(20_000u64, 500);
    let size = kilobyte(0).to_string().len();
    let mut measures = Vec::new();
    let mut per_message = Vec::new();
    for compressed in [false, true] {
        let (server, mut incoming) = serve(ctx.rt).await?;
        let client = ctx
            .rt
            .connect(server.url(), options(compressed))
            .await
            .map_err(|err| format!("connect failed: {err}"))?;
        let server_side = next_accepted(ctx.rt, &mut incoming).await?;
        let cpu_start = cpu_time()?;
        let sender = {
            let server_side = server_side.clone();
            ctx.rt.spawn(async move {
                for seq in 0..count {
                    server_side
                        .send(&kilobyte(seq))
                        .await
                        .map_err(|err| format!("send failed: {err}"))?;
                }
                Ok::<(), String>(())
            })
        };
        for seq in 0..count {
            let message = ctx
                .rt
                .timeout(ctx.limit(), "a message", client.receive())
                .await?
                .map_err(|err| format!("receive failed: {err}"))?;
            if message["seq"] != json!(seq) {
                return Err(format!("message {seq} out of order"));
            }
        }
        sender
            .await
            .map_err(|err| format!("the sender failed: {err}"))??;
        let cpu = cpu_time()? - cpu_start;
        let value = cpu.as_secs_f64() * 1e6 / count as f64;
        per_message.push(value);
        measures.push(Measure::new(
            if compressed {
                "cpu per message deflate"
            } else {
                "cpu per message plain"
            },
            value,
            "µs",
            format!(
                "process CPU (both sides) per message of {size} B of JSON, {}",
                mode(compressed)
            ),
        ));
        client.close();
        client.wait_closed().await;
        server.close().await;
    }
    measures.push(Measure::new(
        "cpu ratio",
        per_message[1] / per_message[0].max(1e-9),
        "×",
        "CPU per message with deflate over without".into(),
    ));
    Ok(measures)
}

/// Clients in this process, each reporting (its number, the version it
/// sees) on every change.
struct Reporting {
    ctx: Ctx,
    reported: mpsc::UnboundedReceiver<(usize, Option<u64>)>,
    seen: Vec<Option<u64>>,
}

impl Clients for Reporting {
    async fn all_saw(&mut self, version: u64) -> Result<(), String> {
        self.ctx
            .rt
            .timeout(
                self.ctx.limit(),
                "a change to reach every client",
                wait_all(&mut self.reported, &mut self.seen, version),
            )
            .await?
    }
}

/// `compression-fanout-1000`.
pub async fn fanout(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(10, 2);
    crate::sys::raise_nofile_limit();
    let mut measures = Vec::new();
    let mut cpu = Vec::new();
    for compressed in [false, true] {
        let (server, mut incoming) = serve(ctx.rt).await?;
        let mut client_connections = Vec::with_capacity(n);
        let mut server_connections = Vec::with_capacity(n);
        for _ in 0..n {
            client_connections.push(
                ctx.rt
                    .connect(server.url(), options(compressed))
                    .await
                    .map_err(|err| format!("connect failed: {err}"))?,
            );
            server_connections.push(next_accepted(ctx.rt, &mut incoming).await?);
        }
        let (reports, reported) = mpsc::unbounded_channel::<(usize, Option<u64>)>();
        for (number, client) in client_connections.iter().enumerate() {
            let mut changes = client.remote_changes();
            let reports = reports.clone();
            drop(ctx.rt.spawn(async move {
                while let Ok(data) = changes.changed().await {
                    let version = data::version_of(&data, FANOUT_INDEX);
                    drop(data);
                    if reports.send((number, version)).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(reports);
        let fanned = fan_out(
            &server_connections,
            rounds,
            Reporting {
                ctx,
                reported,
                seen: vec![None; n],
            },
        )
        .await?;
        for (number, client) in client_connections.iter().enumerate() {
            if *client.remote_data() != fanned.state {
                return Err(format!("client {number}'s remote data differs"));
            }
        }
        for client in &client_connections {
            client.close();
        }
        for client in &client_connections {
            client.wait_closed().await;
        }
        server.close().await;
        let per_change = fanned.shared.cpu.as_secs_f64() * 1e3 / rounds as f64;
        cpu.push(per_change);
        measures.push(Measure::new(
            if compressed {
                "cpu deflate"
            } else {
                "cpu plain"
            },
            per_change,
            "ms",
            format!(
                "process CPU per change, SharedState, {n} clients, {KEYS}-key state, {}",
                mode(compressed)
            ),
        ));
    }
    measures.push(Measure::new(
        "cpu deflate ÷ plain",
        cpu[1] / cpu[0].max(1e-9),
        "×",
        "fan-out CPU per change with deflate over without (target ≤ 1.3)".into(),
    ));
    Ok(measures)
}

/// How many entries each round of `compression-fanout-1000-large` changes.
const LARGE_CHANGE: usize = 100;

/// `compression-fanout-1000-large`: as `compression-fanout-1000`, but each
/// round changes 100 entries (a patch of about 11 KB, which does shrink, so
/// it goes compressed): the case where the compressed bytes of one change
/// are shared by every connection.
pub async fn fanout_large(ctx: Ctx, clients: usize, quick_clients: usize) -> Outcome {
    let n = ctx.pick(clients, quick_clients);
    let rounds: u64 = ctx.pick(10, 2);
    crate::sys::raise_nofile_limit();
    let mut measures = Vec::new();
    let mut cpu = Vec::new();
    for compressed in [false, true] {
        let (server, mut incoming) = serve(ctx.rt).await?;
        let mut client_connections = Vec::with_capacity(n);
        let mut server_connections = Vec::with_capacity(n);
        for _ in 0..n {
            client_connections.push(
                ctx.rt
                    .connect(server.url(), options(compressed))
                    .await
                    .map_err(|err| format!("connect failed: {err}"))?,
            );
            server_connections.push(next_accepted(ctx.rt, &mut incoming).await?);
        }
        let (reports, reported) = mpsc::unbounded_channel::<(usize, Option<u64>)>();
        for (number, client) in client_connections.iter().enumerate() {
            let mut changes = client.remote_changes();
            let reports = reports.clone();
            drop(ctx.rt.spawn(async move {
                while let Ok(data) = changes.changed().await {
                    let version = data::version_of(&data, FANOUT_INDEX);
                    drop(data);
                    if reports.send((number, version)).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(reports);
        let mut clients = Reporting {
            ctx,
            reported,
            seen: vec![None; n],
        };
        let mut state = data::state(KEYS);
        let first = Arc::new(state.clone());
        for connection in &server_connections {
            connection
                .set_local_data(first.clone())
                .map_err(|err| format!("set_local_data failed: {err}"))?;
        }
        clients.all_saw(0).await?;
        let mut shared = juggler_tokio::SharedState::new(first);
        let mut total = std::time::Duration::ZERO;
        let mut patch_size = 0;
        for round in 1..=rounds {
            for offset in 0..LARGE_CHANGE {
                let index = (FANOUT_INDEX + offset * 7) % KEYS;
                state[data::key(index)]["v"] = json!(round);
                state[data::key(index)]["name"] = json!(format!("item {index} round {round}"));
            }
            let next = Arc::new(state.clone());
            // The patch's JSON text, outside the measured window.
            patch_size = serde_json::to_string(&juggler_core::diff(shared.data(), &next))
                .map_err(|err| err.to_string())?
                .len();
            let cpu_start = cpu_time()?;
            let change = shared.set(next);
            for connection in &server_connections {
                connection
                    .set_local_data_shared(&change)
                    .map_err(|err| format!("set_local_data_shared failed: {err}"))?;
            }
            clients.all_saw(round).await?;
            total += cpu_time()? - cpu_start;
        }
        for (number, client) in client_connections.iter().enumerate() {
            if *client.remote_data() != state {
                return Err(format!("client {number}'s remote data differs"));
            }
        }
        for client in &client_connections {
            client.close();
        }
        for client in &client_connections {
            client.wait_closed().await;
        }
        server.close().await;
        let per_change = total.as_secs_f64() * 1e3 / rounds as f64;
        cpu.push(per_change);
        measures.push(Measure::new(
            if compressed { "cpu deflate" } else { "cpu plain" },
            per_change,
            "ms",
            format!(
                "process CPU per change of {LARGE_CHANGE} entries ({patch_size} B of patch), SharedState, {n} clients, {}",
                mode(compressed)
            ),
        ));
    }
    measures.push(Measure::new(
        "cpu deflate ÷ plain",
        cpu[1] / cpu[0].max(1e-9),
        "×",
        "fan-out CPU per change with deflate over without (target ≤ 1.3)".into(),
    ));
    Ok(measures)
}
