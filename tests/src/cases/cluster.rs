//! juggler-redis against a real `redis-server`: nodes (each a
//! [`Cluster`] in this process) converge on one document through faults
//! (Redis killed and restarted empty, connections cut by a relay, a node
//! cut off past the stream's trimming), with nothing lost from writes that
//! reported success; cluster groups and presence across nodes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use juggler_driver::{Backoff, PatchOperation, Runtime};
use juggler_redis::{Cluster, ClusterOptions, Document, Error};
use serde_json::{json, Value};

use crate::support::backend::{pair, within, HANG_GUARD, IMMEDIATE};
use crate::support::redis::RedisServer;
use crate::support::relay::CuttingRelay;
use crate::Backend;

/// A runtime the suite runs on, as the driver's [`Runtime`].
pub trait ClusterBackend: Backend {
    /// The runtime of the calling task.
    fn runtime() -> Arc<dyn Runtime>;
}

impl ClusterBackend for crate::support::runtimes::Tokio {
    fn runtime() -> Arc<dyn Runtime> {
        juggler_tokio::runtime()
    }
}

impl ClusterBackend for crate::support::runtimes::Smol {
    fn runtime() -> Arc<dyn Runtime> {
        juggler_smol::runtime()
    }
}

/// Quick reconnects and short waits: the tests wait for events, not for
/// timers.
fn options() -> ClusterOptions {
    ClusterOptions::default()
        .backoff(
            Backoff::default()
                .initial_delay(Duration::from_millis(5))
                .max_delay(Duration::from_millis(100)),
        )
        .block(Duration::from_millis(200))
        .reseed_settle(Duration::from_millis(500))
}

async fn node<B: ClusterBackend>(url: &str, options: ClusterOptions) -> Cluster {
    Cluster::connect(url, B::runtime(), options)
        .await
        .expect("connect to redis-server")
}

/// Waits until `test` holds for the document's copy.
async fn until<B: Backend>(document: &Document, what: &str, test: impl Fn(&Document) -> bool) {
    within::<B, _>(HANG_GUARD, what, async {
        let mut changes = document.changes();
        while !test(document) {
            changes.next().await.expect("the document is open");
        }
    })
    .await;
}

/// Waits until every document has the same epoch, version and state.
async fn converged<B: Backend>(documents: &[&Document]) {
    within::<B, _>(HANG_GUARD, "the nodes converge", async {
        let mut changes: Vec<_> = documents
            .iter()
            .map(|document| document.changes())
            .collect();
        loop {
            let views: Vec<_> = documents.iter().map(|document| document.view()).collect();
            let synced = documents.iter().all(|document| document.is_synced());
            if synced
                && views.windows(2).all(|pair| {
                    pair[0].epoch == pair[1].epoch
                        && pair[0].version == pair[1].version
                        && pair[0].state == pair[1].state
                })
            {
                return;
            }
            let next: Vec<_> = changes
                .iter_mut()
                .map(|changes| Box::pin(changes.next()))
                .collect();
            futures_util::future::select_all(next).await;
        }
    })
    .await;
}

fn patch(value: Value) -> Vec<PatchOperation> {
    serde_json::from_value(value).expect("a patch")
}

/// Writes `/w/<prefix>-<i>` for i = 0, 1, ... until `stop`; records each
/// write that reported success. Writes refused while Redis is away wait
/// for the node to be back.
async fn writer(
    document: Document,
    prefix: String,
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut i = 0u64;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let key = format!("{prefix}-{i}");
        i += 1;
        match document
            .update(patch(
                json!([{"op": "add", "path": format!("/w/{key}"), "value": i}]),
            ))
            .await
        {
            Ok(_) => {
                acked.lock().unwrap().insert(key);
            }
            Err(Error::Unavailable) => document.synced().await,
            Err(_) => {}
        }
    }
}

fn acked_count(acked: &Mutex<BTreeSet<String>>) -> usize {
    acked.lock().unwrap().len()
}

/// Every acknowledged key is in the document.
fn assert_kept(document: &Document, acked: &Mutex<BTreeSet<String>>) {
    let state = document.state();
    for key in acked.lock().unwrap().iter() {
        assert!(
            state["w"].get(key).is_some(),
            "acknowledged write {key} was lost"
        );
    }
}

/// Waits until `acked` has grown by `more`.
async fn acked_grows<B: Backend>(acked: &Mutex<BTreeSet<String>>, more: usize, watch: &Document) {
    let target = acked_count(acked) + more;
    within::<B, _>(HANG_GUARD, "acknowledged writes", async {
        let mut changes = watch.changes();
        while acked_count(acked) < target {
            changes.next().await.expect("open");
        }
    })
    .await;
}

/// Two nodes incrementing one counter with read-modify-write: every
/// increment counts once, and both end with the same document.
pub async fn two_nodes_converge_on_one_counter<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("two_nodes_converge_on_one_counter") else {
        return;
    };
    let (a, b) = (
        node::<B>(&redis.url(), options()).await,
        node::<B>(&redis.url(), options()).await,
    );
    let (da, db) = (
        a.document("c", json!({"counter": 0})),
        b.document("c", json!({"counter": 0})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    let increment = |document: Document| async move {
        for _ in 0..15 {
            document
                .modify(|doc| {
                    let counter = doc["counter"].as_i64().unwrap_or(0);
                    patch(json!([{"op": "replace", "path": "/counter", "value": counter + 1}]))
                })
                .await
                .expect("an increment");
        }
    };
    within::<B, _>(
        HANG_GUARD,
        "increments",
        futures_util::future::join(increment(da.clone()), increment(db.clone())),
    )
    .await;
    converged::<B>(&[&da, &db]).await;
    assert_eq!(da.state()["counter"], 30);
    assert_eq!(db.state()["counter"], 30);
    a.close().await;
    b.close().await;
}

/// A conflict is a typed error, and nothing is written.
pub async fn a_version_conflict_is_typed<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("a_version_conflict_is_typed") else {
        return;
    };
    let a = node::<B>(&redis.url(), options()).await;
    let document = a.document("v", json!({"x": 0}));
    within::<B, _>(HANG_GUARD, "sync", document.synced()).await;
    let start = document.version();
    let first = document
        .update_at(
            start,
            patch(json!([{"op": "replace", "path": "/x", "value": 1}])),
        )
        .await
        .expect("the first write");
    assert_eq!(first, start + 1);
    let second = document
        .update_at(
            start,
            patch(json!([{"op": "replace", "path": "/x", "value": 2}])),
        )
        .await;
    assert!(
        matches!(second, Err(Error::Conflict { expected, actual }) if expected == start && actual == start + 1),
        "{second:?}"
    );
    assert_eq!(document.state()["x"], 1);
    assert_eq!(document.version(), start + 1);
    a.close().await;
}

/// A member of a node's group sees the document and a change written on
/// another node.
pub async fn members_see_changes_written_on_another_node<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("members_see_changes_written_on_another_node") else {
        return;
    };
    let (a, b) = (
        node::<B>(&redis.url(), options()).await,
        node::<B>(&redis.url(), options()).await,
    );
    let (da, db) = (
        a.document("m", json!({"n": 0})),
        b.document("m", json!({"n": 0})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    let (_server, server_side, client) = pair::<B>(IMMEDIATE).await;
    db.group().join(&server_side).expect("join");
    da.update(patch(json!([{"op": "replace", "path": "/n", "value": 7}])))
        .await
        .expect("the write");
    let mut changes = client.remote_changes();
    within::<B, _>(HANG_GUARD, "the client sees the change", async {
        while client.remote_data()["n"] != 7 {
            changes.changed().await.expect("open");
        }
    })
    .await;
    assert_eq!(*client.remote_data(), *da.state());
    a.close().await;
    b.close().await;
}

/// Two documents shown as rooms, each a part of a member's state beside
/// its own part, get the changes written on another node.
pub async fn documents_shown_as_rooms_get_changes_from_another_node<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("documents_shown_as_rooms") else {
        return;
    };
    let (a, b) = (
        node::<B>(&redis.url(), options()).await,
        node::<B>(&redis.url(), options()).await,
    );
    let (chat_a, plant_a) = (
        a.document("chat", json!([])),
        a.document("plant", json!({})),
    );
    let (chat_b, plant_b) = (
        b.document("chat", json!([])),
        b.document("plant", json!({})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        for document in [&chat_a, &plant_a, &chat_b, &plant_b] {
            document.synced().await;
        }
    })
    .await;
    let (_server, server_side, client) = pair::<B>(IMMEDIATE).await;
    server_side
        .set_local_data(json!({"user": "ana"}))
        .expect("own part");
    chat_b.group().join_at(&server_side, "/chat").expect("join");
    plant_b
        .group()
        .join_at(&server_side, "/plant")
        .expect("join");
    chat_a
        .update(patch(json!([{"op": "add", "path": "/-", "value": "hi"}])))
        .await
        .expect("the chat's write");
    plant_a
        .update(patch(json!([{"op": "add", "path": "/level", "value": 3}])))
        .await
        .expect("the plant's write");
    let want = json!({"user": "ana", "chat": ["hi"], "plant": {"level": 3}});
    let mut changes = client.remote_changes();
    within::<B, _>(HANG_GUARD, "the client sees both rooms", async {
        while *client.remote_data() != want {
            changes.changed().await.expect("open");
        }
    })
    .await;
    a.close().await;
    b.close().await;
}

/// A node cut off while the other writes far past the stream's length
/// keeps serving its copy and refuses writes at once; back, it reloads
/// the snapshot and converges. A node that joins late converges too. The
/// stream stays bounded.
pub async fn a_node_cut_off_past_trimming_reloads_the_snapshot<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("a_node_cut_off_past_trimming_reloads_the_snapshot")
    else {
        return;
    };
    let small = options().max_stream_len(10).snapshot_every(5);
    let relay = CuttingRelay::start(redis.addr(), 7, 1, 2);
    relay.stop_cutting();
    let a = node::<B>(&redis.url(), small.clone()).await;
    let b = node::<B>(&format!("redis://{}", relay.addr()), small.clone()).await;
    let (da, db) = (
        a.document("t", json!({"w": {}})),
        b.document("t", json!({"w": {}})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    da.update(patch(
        json!([{"op": "add", "path": "/w/first", "value": 0}]),
    ))
    .await
    .expect("a write");
    converged::<B>(&[&da, &db]).await;
    let before = db.state();

    relay.start_cutting();
    until::<B>(&db, "b notices the cut", |document| !document.is_synced()).await;
    for i in 0..300 {
        da.update(patch(
            json!([{"op": "add", "path": format!("/w/k{i}"), "value": i}]),
        ))
        .await
        .expect("a write on a");
    }
    // Reads keep serving the last copy; writes fail at once.
    assert_eq!(db.state(), before);
    let refused = db
        .update(patch(json!([{"op": "add", "path": "/w/b", "value": 1}])))
        .await;
    assert!(matches!(refused, Err(Error::Unavailable)), "{refused:?}");

    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let first: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("juggler:doc:{t}:log")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut connection)
        .await
        .unwrap();
    let first: u64 = first[0].0.split('-').next().unwrap().parse().unwrap();
    assert!(
        first > db.version() + 1,
        "the entries b needs are still there ({first}); the test would not test trimming"
    );
    let length: u64 = redis::cmd("XLEN")
        .arg("juggler:doc:{t}:log")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(length < 300, "the stream is not trimmed: {length} entries");

    relay.stop_cutting();
    converged::<B>(&[&da, &db]).await;
    assert_eq!(db.state()["w"]["k299"], 299);
    let c = node::<B>(&redis.url(), small).await;
    let dc = c.document("t", json!({"late": true}));
    converged::<B>(&[&da, &dc]).await;
    assert!(dc.state().get("late").is_none());
    for node in [a, b, c] {
        node.close().await;
    }
}

/// Redis killed (SIGKILL) twice while both nodes write, and restarted
/// empty: reads keep serving, the document is re-seeded, and the nodes
/// converge with every write that reported success.
pub async fn redis_killed_and_restarted_empty_loses_no_acknowledged_write<B: ClusterBackend>() {
    let Some(mut redis) = RedisServer::start("redis_killed_and_restarted_empty") else {
        return;
    };
    let (a, b) = (
        node::<B>(&redis.url(), options()).await,
        node::<B>(&redis.url(), options()).await,
    );
    let (da, db) = (
        a.document("k", json!({"w": {}})),
        b.document("k", json!({"w": {}})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    B::spawn(writer(da.clone(), "a".into(), acked.clone(), stop.clone()));
    B::spawn(writer(db.clone(), "b".into(), acked.clone(), stop.clone()));
    for _round in 0..2 {
        acked_grows::<B>(&acked, 20, &da).await;
        let epoch = da.view().epoch;
        redis.kill();
        until::<B>(&da, "a notices", |document| !document.is_synced()).await;
        until::<B>(&db, "b notices", |document| !document.is_synced()).await;
        assert!(
            !da.state()["w"].as_object().unwrap().is_empty(),
            "reads keep serving"
        );
        redis.restart();
        until::<B>(&da, "a re-seeds", |document| {
            document.is_synced() && document.view().epoch != epoch
        })
        .await;
    }
    acked_grows::<B>(&acked, 20, &da).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    converged::<B>(&[&da, &db]).await;
    assert_kept(&da, &acked);
    assert_kept(&db, &acked);
    a.close().await;
    b.close().await;
}

/// Two nodes and what they went through: Redis restarted empty while `a`
/// (with the more advanced copy, `acked`) was cut off, and `b` re-seeded
/// it from its older copy. `a`'s relay is still cutting.
struct OlderSeed {
    _redis: RedisServer,
    ra: CuttingRelay,
    _rb: CuttingRelay,
    a: Cluster,
    b: Cluster,
    da: Document,
    db: Document,
    acked: Mutex<BTreeSet<String>>,
}

async fn older_seed<B: ClusterBackend>(name: &str, b_options: ClusterOptions) -> Option<OlderSeed> {
    let mut redis = RedisServer::start(name)?;
    let (ra, rb) = (
        CuttingRelay::start(redis.addr(), 5, 1, 2),
        CuttingRelay::start(redis.addr(), 9, 1, 2),
    );
    ra.stop_cutting();
    rb.stop_cutting();
    let a = node::<B>(&format!("redis://{}", ra.addr()), options()).await;
    let b = node::<B>(&format!("redis://{}", rb.addr()), b_options).await;
    let (da, db) = (
        a.document("s", json!({"w": {}})),
        b.document("s", json!({"w": {}})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    // b falls behind a.
    rb.start_cutting();
    until::<B>(&db, "b notices the cut", |document| !document.is_synced()).await;
    let acked = Mutex::new(BTreeSet::new());
    for i in 0..5 {
        let key = format!("a-{i}");
        da.update(patch(
            json!([{"op": "add", "path": format!("/w/{key}"), "value": i}]),
        ))
        .await
        .expect("a write on a");
        acked.lock().unwrap().insert(key);
    }
    let old_epoch = da.view().epoch;
    // Redis restarts empty while a is cut off; b seeds it from its older copy.
    ra.start_cutting();
    redis.kill();
    until::<B>(&da, "a notices", |document| !document.is_synced()).await;
    redis.restart();
    rb.stop_cutting();
    until::<B>(&db, "b re-seeds", |document| {
        document.is_synced() && document.view().epoch != old_epoch
    })
    .await;
    assert!(db.state()["w"].get("a-0").is_none(), "b's copy was behind");
    Some(OlderSeed {
        _redis: redis,
        ra,
        _rb: rb,
        a,
        b,
        da,
        db,
        acked,
    })
}

/// The node whose copy is more advanced comes back after another node
/// re-seeded an emptied Redis from an older copy: its copy replaces the
/// seed (nobody wrote on it yet), so its acknowledged writes survive.
pub async fn a_more_advanced_copy_replaces_an_older_seed<B: ClusterBackend>() {
    // Nobody writes on b's seed, so the settle window does not matter.
    let Some(seed) =
        older_seed::<B>("a_more_advanced_copy_replaces_an_older_seed", options()).await
    else {
        return;
    };
    // a comes back with the more advanced copy.
    seed.ra.stop_cutting();
    converged::<B>(&[&seed.da, &seed.db]).await;
    assert_kept(&seed.da, &seed.acked);
    assert_kept(&seed.db, &seed.acked);
    seed.a.close().await;
    seed.b.close().await;
}

/// A write on a fresh seed waits out the settle window: the more advanced
/// copy that comes back within it still replaces the seed, and the write
/// then applies on top of it, so neither is lost. (With no window, the
/// write would make the seed final and the advanced copy's writes would be
/// lost.)
pub async fn a_write_in_the_settle_window_waits_for_a_better_copy<B: ClusterBackend>() {
    // A window far longer than a's way back; writes may wait past it.
    let b_options = options()
        .reseed_settle(Duration::from_secs(5))
        .write_timeout(HANG_GUARD);
    let Some(seed) = older_seed::<B>(
        "a_write_in_the_settle_window_waits_for_a_better_copy",
        b_options,
    )
    .await
    else {
        return;
    };
    let seed_epoch = seed.db.view().epoch;
    let write = seed
        .db
        .update(patch(json!([{"op": "add", "path": "/w/b-0", "value": 0}])));
    let comeback = async {
        seed.ra.stop_cutting();
        until::<B>(&seed.db, "a's copy replaces the seed", |document| {
            document.view().epoch != seed_epoch
        })
        .await;
    };
    let (written, ()) = within::<B, _>(HANG_GUARD, "the write", async {
        futures_util::join!(write, comeback)
    })
    .await;
    written.expect("the write waits out the window, then applies");
    converged::<B>(&[&seed.da, &seed.db]).await;
    seed.acked.lock().unwrap().insert("b-0".into());
    assert_kept(&seed.da, &seed.acked);
    assert_kept(&seed.db, &seed.acked);
    seed.a.close().await;
    seed.b.close().await;
}

/// One node's connections cut mid-stream again and again by a relay while
/// both write: they converge with every write that reported success.
pub async fn a_relay_cutting_mid_stream_loses_no_acknowledged_write<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("a_relay_cutting_mid_stream") else {
        return;
    };
    let relay = CuttingRelay::start(redis.addr(), 11, 300, 6000);
    relay.stop_cutting();
    let a = node::<B>(&redis.url(), options()).await;
    let b = node::<B>(&format!("redis://{}", relay.addr()), options()).await;
    let (da, db) = (
        a.document("r", json!({"w": {}})),
        b.document("r", json!({"w": {}})),
    );
    within::<B, _>(HANG_GUARD, "sync", async {
        da.synced().await;
        db.synced().await
    })
    .await;
    relay.start_cutting();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    B::spawn(writer(da.clone(), "a".into(), acked.clone(), stop.clone()));
    B::spawn(writer(db.clone(), "b".into(), acked.clone(), stop.clone()));
    acked_grows::<B>(&acked, 200, &da).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(relay.cuts() > 0, "the relay cut nothing");
    relay.stop_cutting();
    converged::<B>(&[&da, &db]).await;
    assert_kept(&da, &acked);
    assert_kept(&db, &acked);
    a.close().await;
    b.close().await;
}

/// A message sent to a cluster group on one node reaches a member on the
/// other.
pub async fn group_messages_reach_members_on_every_node<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("group_messages_reach_members_on_every_node") else {
        return;
    };
    let (a, b) = (
        node::<B>(&redis.url(), options()).await,
        node::<B>(&redis.url(), options()).await,
    );
    let (ga, gb) = (a.group("chat"), b.group("chat"));
    within::<B, _>(HANG_GUARD, "subscribed", async {
        a.subscribed().await;
        b.subscribed().await
    })
    .await;
    let (_server, server_side, client) = pair::<B>(IMMEDIATE).await;
    gb.group().join(&server_side).expect("join");
    let nodes = ga
        .send(&json!({"hello": "from a"}))
        .await
        .expect("published");
    assert_eq!(nodes, 2);
    let received = within::<B, _>(HANG_GUARD, "the message", client.receive())
        .await
        .unwrap();
    assert_eq!(received, json!({"hello": "from a"}));
    a.close().await;
    b.close().await;
}

/// A node that stops heartbeating (cut off, not closed) drops out of
/// presence once its TTL passes; a live one stays.
pub async fn a_dead_node_drops_out_of_presence<B: ClusterBackend>() {
    let Some(redis) = RedisServer::start("a_dead_node_drops_out_of_presence") else {
        return;
    };
    let short = options().presence_ttl(Duration::from_millis(600));
    let relay = CuttingRelay::start(redis.addr(), 3, 1, 2);
    relay.stop_cutting();
    let a = node::<B>(&redis.url(), short.clone()).await;
    let b = node::<B>(&format!("redis://{}", relay.addr()), short).await;
    let (pa, pb) = (a.presence("here"), b.presence("here"));
    pa.set(&json!({"names": ["ann"]}));
    pb.set(&json!({"names": ["bob"]}));
    let (na, nb) = (a.node_id().to_owned(), b.node_id().to_owned());
    within::<B, _>(HANG_GUARD, "both parts seen", async {
        let mut changes = pa.changes();
        while !(pa.parts().contains_key(&na) && pa.parts().contains_key(&nb)) {
            changes.next().await.expect("open");
        }
    })
    .await;
    assert_eq!(pa.parts()[&nb], json!({"names": ["bob"]}));
    relay.start_cutting();
    within::<B, _>(HANG_GUARD, "b drops out", async {
        let mut changes = pa.changes();
        while pa.parts().contains_key(&nb) {
            changes.next().await.expect("open");
        }
    })
    .await;
    assert!(pa.parts().contains_key(&na), "the live node stays");
    a.close().await;
}

/// Instantiates the cluster tests for a backend.
#[macro_export]
macro_rules! cluster_tests {
    ($backend:ty) => {
        $crate::cluster_tests!(@cases $backend;
            two_nodes_converge_on_one_counter,
            a_version_conflict_is_typed,
            members_see_changes_written_on_another_node,
            documents_shown_as_rooms_get_changes_from_another_node,
            a_node_cut_off_past_trimming_reloads_the_snapshot,
            redis_killed_and_restarted_empty_loses_no_acknowledged_write,
            a_more_advanced_copy_replaces_an_older_seed,
            a_write_in_the_settle_window_waits_for_a_better_copy,
            a_relay_cutting_mid_stream_loses_no_acknowledged_write,
            group_messages_reach_members_on_every_node,
            a_dead_node_drops_out_of_presence,
        );
    };
    (@cases $backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                <$backend as $crate::Backend>::block_on($crate::cases::cluster::$case::<$backend>());
            }
        )*
    };
}
