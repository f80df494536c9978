//! juggler-core hot paths: codec, diff, patch, and the engine's set,
//! update, flush and handle paths, for small and large states.
//!
//! `cargo bench -p juggler-core` (add `-- --quick` for a smoke run).

// The clock here is the origin of a virtual one, or a benchmark's stopwatch.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use juggler_core::{apply, diff, AutoflushPolicy, Config, Engine, Frame, PatchOperation};
use serde_json::{json, Map, Value};

fn state(keys: usize) -> Value {
    let map: Map<String, Value> = (0..keys)
        .map(|n| {
            (
                format!("key{n:06}"),
                json!({"value": n, "label": "an entry"}),
            )
        })
        .collect();
    Value::Object(map)
}

fn changed(state: &Value, key: usize) -> Value {
    let mut next = state.clone();
    next[format!("key{key:06}")]["value"] = json!(-1);
    next
}

fn one_op(key: usize) -> Vec<PatchOperation> {
    serde_json::from_value(
        json!([{"op": "replace", "path": format!("/key{key:06}/value"), "value": -1}]),
    )
    .unwrap()
}

fn codec(c: &mut Criterion) {
    let small = Frame::Message(json!({"text": "x".repeat(70), "n": 12345})).encode();
    assert!(small.len() >= 100);
    let large = Frame::Message(json!({"text": "x".repeat(10_000)})).encode();
    let data = Frame::Data(one_op(5)).encode();
    let mut group = c.benchmark_group("codec");
    group.bench_function("decode message 100 B", |b| {
        b.iter(|| Frame::decode(black_box(&small)).unwrap())
    });
    group.bench_function("decode message 10 KB", |b| {
        b.iter(|| Frame::decode(black_box(&large)).unwrap())
    });
    group.bench_function("decode DATA one op", |b| {
        b.iter(|| Frame::decode(black_box(&data)).unwrap())
    });
    let message = json!({"text": "x".repeat(70), "n": 12345});
    group.bench_function("encode message 100 B", |b| {
        b.iter(|| Frame::Message(black_box(message.clone())).encode())
    });
    group.finish();
}

fn diff_and_patch(c: &mut Criterion) {
    let mut group = c.benchmark_group("diff");
    for keys in [1_000, 100_000] {
        let before = state(keys);
        let after = changed(&before, keys / 2);
        group.bench_function(format!("one entry of {keys} keys"), |b| {
            b.iter(|| diff(black_box(&before), black_box(&after)))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("patch");
    let mut doc = state(100_000);
    let ops = one_op(50_000);
    let undo: Vec<PatchOperation> = serde_json::from_value(
        json!([{"op": "replace", "path": "/key050000/value", "value": 50_000}]),
    )
    .unwrap();
    group.bench_function("one op on 100000 keys", |b| {
        b.iter(|| {
            apply(&mut doc, black_box(&ops)).unwrap();
            apply(&mut doc, &undo).unwrap();
        })
    });
    group.finish();
}

fn engine(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("engine");
    for keys in [1_000, 100_000] {
        let base = state(keys);
        let next = changed(&base, keys / 2);
        group.bench_function(
            format!("set_local_data one entry of {keys} keys (diff path)"),
            |b| {
                b.iter_batched(
                    || {
                        let mut engine =
                            Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
                        engine.set_local_data(now, base.clone()).unwrap();
                        engine.poll_transmit();
                        (engine, next.clone())
                    },
                    |(mut engine, next)| {
                        engine.set_local_data(now, next).unwrap();
                        engine.poll_transmit().unwrap()
                    },
                    BatchSize::LargeInput,
                )
            },
        );
        let mut engine = Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
        engine.set_local_data(now, base.clone()).unwrap();
        engine.poll_transmit();
        let mut flip = 0i64;
        group.bench_function(format!("update_local_data one op on {keys} keys"), |b| {
            b.iter(|| {
                flip += 1;
                let op = serde_json::from_value(
                    json!([{"op": "replace", "path": "/key000001/value", "value": flip}]),
                )
                .unwrap();
                engine.update_local_data(now, op).unwrap();
                engine.poll_transmit().unwrap()
            })
        });
        // 100,000 entries take about 36 MB decoded: over the default
        // `max_remote_data_size`, raised here as for any large state.
        let mut config = Config::default();
        config.max_remote_data_size = 1 << 30;
        let mut receiver = Engine::new(config);
        receiver
            .handle_text(&Frame::Data(diff(&Value::Null, &base)).encode())
            .unwrap();
        let mut flip = 0i64;
        group.bench_function(format!("handle_text DATA one op on {keys} keys"), |b| {
            b.iter(|| {
                flip += 1;
                let text = format!(r#"{{"type":"DATA","payload":[{{"op":"replace","path":"/key000001/value","value":{flip}}}]}}"#);
                receiver.handle_text(black_box(&text)).unwrap();
                receiver.poll_event().unwrap()
            })
        });
    }
    let message = json!({"text": "x".repeat(70), "n": 12345});
    let mut sender = Engine::new(Config::default());
    group.bench_function("send_message 100 B", |b| {
        b.iter(|| {
            sender.send_message(black_box(&message)).unwrap();
            sender.poll_transmit().unwrap()
        })
    });
    group.finish();
}

/// What the local data paths cost where the engine once copied or diffed
/// per connection: the first `update_local_data` after a `set_local_data`
/// (a deep copy of the state before the engine kept no diff base), and one
/// change of a 1,000-key state shown by 1,000 engines at the default 0.2 s
/// autoflush, by `set_local_data` on each and by `SharedState`.
fn local_data(c: &mut Criterion) {
    let now = Instant::now();
    let delay = std::time::Duration::from_millis(200);
    let mut group = c.benchmark_group("local data");
    let big = state(100_000);
    group.bench_function(
        "first update_local_data after set_local_data on 100000 keys",
        |b| {
            b.iter_batched(
                || {
                    let mut engine =
                        Engine::new(Config::with_autoflush(AutoflushPolicy::Immediate));
                    engine.set_local_data(now, big.clone()).unwrap();
                    engine.poll_transmit();
                    engine
                },
                |mut engine| {
                    engine.update_local_data(now, one_op(7)).unwrap();
                    engine
                },
                BatchSize::LargeInput,
            )
        },
    );
    let base = std::sync::Arc::new(state(1_000));
    let engines = || -> Vec<Engine> {
        (0..1_000)
            .map(|_| {
                let mut engine =
                    Engine::new(Config::with_autoflush(AutoflushPolicy::Delayed(delay)));
                engine.set_local_data(now, base.clone()).unwrap();
                engine.handle_timeout(now + delay);
                while engine.poll_transmit().is_some() {}
                engine
            })
            .collect()
    };
    let next = std::sync::Arc::new(changed(&base, 7));
    let flush = |engines: &mut Vec<Engine>| {
        for engine in engines.iter_mut() {
            engine.handle_timeout(now + 2 * delay);
            black_box(engine.poll_transmit());
        }
    };
    group.bench_function(
        "one change to 1000 engines at 0.2 s autoflush, set_local_data each",
        |b| {
            b.iter_batched(
                engines,
                |mut engines| {
                    for engine in &mut engines {
                        engine.set_local_data(now, next.clone()).unwrap();
                    }
                    flush(&mut engines);
                    engines
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        "one change to 1000 engines at 0.2 s autoflush, SharedState",
        |b| {
            b.iter_batched(
                || (engines(), juggler_core::SharedState::new(base.clone())),
                |(mut engines, mut shared)| {
                    let change = shared.set(next.clone());
                    for engine in &mut engines {
                        engine.set_local_data_shared(now, &change).unwrap();
                    }
                    flush(&mut engines);
                    engines
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, codec, diff_and_patch, engine, local_data);
criterion_main!(benches);
