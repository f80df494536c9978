//! The task that keeps a node's copy of a document equal to Redis's: it
//! catches up (from the stream, or from the snapshot when it must),
//! seeds a document Redis does not have, then follows the stream.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use futures_util::future::{select, Either};
use juggler_driver::{Group, PatchOperation, Value};
use redis::aio::MultiplexedConnection;
use redis::Value as Reply;

use crate::document::DocShared;
use crate::link::{connect, random_u64, random_unit, sleep};
use crate::scripts::{LOAD, SEED};
use crate::{Error, View};

/// Most entries read per blocking read.
const READ_COUNT: usize = 512;
/// Most entries a catch-up reads from the stream before it takes the
/// snapshot instead.
const CATCH_UP_MAX: u64 = 10_000;

/// One stream entry.
#[derive(Debug)]
struct Entry {
    version: u64,
    epoch: String,
    patch: Vec<u8>,
}

/// Follows the document until the cluster closes.
pub(crate) async fn run(doc: Arc<DocShared>) {
    let cluster = doc.cluster.clone();
    let mut closed = cluster.closed.subscribe();
    let failed = AtomicU32::new(0);
    loop {
        if *closed.borrow_and_update() {
            break;
        }
        let session = async {
            let response = cluster.options.block + cluster.options.response_timeout;
            let connection = connect(&cluster.client, &cluster.options, Some(response))
                .await
                .map_err(Error::Redis)?;
            follow(&doc, connection, &failed).await
        };
        let stop = closed.wait_for(|closed| *closed);
        let outcome = match select(Box::pin(session), Box::pin(stop)).await {
            Either::Left((result, _)) => result,
            Either::Right(_) => Ok(()),
        };
        match outcome {
            Err(err) => {
                if doc.synced.swap(false, Ordering::SeqCst) {
                    tracing::warn!(document = doc.name, %err, "juggler-redis: lost Redis; serving the last copy");
                    doc.view.send_modify(|_| {});
                }
                let rounds = failed.fetch_add(1, Ordering::SeqCst).saturating_add(1);
                sleep(
                    &*cluster.runtime,
                    cluster.options.backoff.delay(rounds, random_unit()),
                )
                .await;
            }
            Ok(()) => break,
        }
    }
    doc.synced.store(false, Ordering::SeqCst);
}

/// Catches up, then follows the stream; returns only on an error.
async fn follow(
    doc: &DocShared,
    mut connection: MultiplexedConnection,
    failed: &AtomicU32,
) -> Result<(), Error> {
    catch_up(doc, &mut connection).await?;
    if failed.swap(0, Ordering::SeqCst) > 0 {
        // This connection is new after a loss: the command link's may have
        // died in the same outage without anyone noticing yet.
        doc.cluster.link.check().await;
    }
    if !doc.synced.swap(true, Ordering::SeqCst) {
        tracing::info!(document = doc.name, "juggler-redis: synced");
        doc.view.send_modify(|_| {});
    }
    let block = doc.cluster.options.block.as_millis() as u64;
    loop {
        let from = format!("{}-0", doc.view.borrow().version);
        let reply: Reply = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS")
            .arg(&doc.log)
            .arg(from)
            .query_async(&mut connection)
            .await?;
        let entries = stream_entries(&reply)?;
        if entries.is_empty() {
            // Quiet: check that the epoch is still ours.
            if !still_current(doc, &mut connection).await? {
                catch_up(doc, &mut connection).await?;
            }
            continue;
        }
        if !apply_all(doc, &entries) {
            catch_up(doc, &mut connection).await?;
        }
    }
}

/// Whether Redis still has this node's epoch at or past its version.
async fn still_current(
    doc: &DocShared,
    connection: &mut MultiplexedConnection,
) -> Result<bool, Error> {
    let (epoch, head): (Option<String>, Option<u64>) = redis::cmd("HMGET")
        .arg(&doc.snap)
        .arg("epoch")
        .arg("head")
        .query_async(connection)
        .await?;
    let view = doc.view.borrow();
    Ok(epoch.as_deref() == view.epoch.as_deref() && head.is_some_and(|head| head >= view.version))
}

/// Brings the copy up to Redis's: from the stream if it still has every
/// entry after the copy's version of the same epoch, else from the
/// snapshot (one diff to the group's members); seeds the document if
/// Redis does not have it.
async fn catch_up(doc: &DocShared, connection: &mut MultiplexedConnection) -> Result<(), Error> {
    for _ in 0..8 {
        if still_current(doc, connection).await? && from_stream(doc, connection).await? {
            return Ok(());
        }
        if reload(doc, connection).await? {
            return Ok(());
        }
    }
    Err(Error::Corrupt(
        "the stream keeps missing entries after the snapshot".into(),
    ))
}

/// Applies the stream's entries after the copy's version; false if some
/// are missing (trimmed) or too many.
async fn from_stream(
    doc: &DocShared,
    connection: &mut MultiplexedConnection,
) -> Result<bool, Error> {
    let version = doc.view.borrow().version;
    let reply: Reply = redis::cmd("XRANGE")
        .arg(&doc.log)
        .arg(format!("({version}-0"))
        .arg("+")
        .arg("COUNT")
        .arg(CATCH_UP_MAX)
        .query_async(connection)
        .await?;
    let entries = entries(&reply)?;
    if entries.len() as u64 == CATCH_UP_MAX {
        return Ok(false);
    }
    Ok(apply_all(doc, &entries))
}

/// Loads the snapshot and the entries after it; seeds first if Redis has
/// no document. False if the entries have a gap (load again).
async fn reload(doc: &DocShared, connection: &mut MultiplexedConnection) -> Result<bool, Error> {
    let mut reply: Reply = LOAD
        .key(&doc.snap)
        .key(&doc.log)
        .invoke_async(connection)
        .await?;
    // Redis lost the document, or it was re-seeded from some copy: offer
    // this copy (the seed script keeps the first seed unless this copy is
    // more advanced and nobody wrote on the seed yet).
    let offer = match &reply {
        Reply::Nil => true,
        Reply::Array(parts) => {
            let ours = doc.view.borrow().epoch.clone();
            let theirs = parts.first().map(text).transpose()?;
            ours.is_some_and(|ours| theirs.as_deref() != Some(&*ours))
        }
        _ => false,
    };
    if offer {
        seed(doc, connection).await?;
        reply = LOAD
            .key(&doc.snap)
            .key(&doc.log)
            .invoke_async(connection)
            .await?;
    }
    let Reply::Array(parts) = reply else {
        return Err(Error::Corrupt("no snapshot after seeding".into()));
    };
    let [epoch, version, data, origin_epoch, origin_version, entries_reply] = &parts[..] else {
        return Err(Error::Corrupt("snapshot of the wrong shape".into()));
    };
    let version = number(version)?;
    let data: Value = serde_json::from_slice(&bytes(data)?)
        .map_err(|err| Error::Corrupt(format!("snapshot data: {err}")))?;
    let entries = entries(entries_reply)?;
    if entries
        .first()
        .is_some_and(|entry| Some(entry.version) != version.checked_add(1))
    {
        return Ok(false);
    }
    doc.saved.fetch_max(version, Ordering::SeqCst);
    doc.group.set_state(data);
    let old = doc.view.borrow().clone();
    let view = View {
        epoch: Some(Arc::from(text(epoch)?)),
        version,
        origin: (Arc::from(text(origin_epoch)?), number(origin_version)?),
        state: doc.group.state(),
    };
    if old.epoch != view.epoch || old.version != view.version {
        tracing::info!(document = doc.name, epoch = ?view.epoch, version, "juggler-redis: loaded the snapshot");
    }
    doc.set_view(view);
    Ok(apply_all(doc, &entries))
}

/// Offers this node's copy as the document's seed.
async fn seed(doc: &DocShared, connection: &mut MultiplexedConnection) -> Result<(), Error> {
    let view = doc.view.borrow().clone();
    let data = serde_json::to_string(&*view.state)
        .map_err(|err| Error::Corrupt(format!("the copy does not serialize: {err}")))?;
    let epoch = format!("{:016x}", random_u64());
    let (origin_epoch, origin_version) = match &view.epoch {
        Some(epoch) => (epoch.to_string(), view.version),
        None => (String::new(), 0),
    };
    let reply: Vec<String> = SEED
        .key(&doc.snap)
        .key(&doc.log)
        .arg(&epoch)
        .arg(&origin_epoch)
        .arg(origin_version)
        .arg(data)
        .invoke_async(connection)
        .await?;
    if reply.first().map(String::as_str) == Some("seeded") {
        tracing::info!(
            document = doc.name,
            epoch,
            origin_epoch,
            origin_version,
            "juggler-redis: seeded the document"
        );
    }
    Ok(())
}

/// Applies the entries that follow the copy's version in order, as one
/// change of the group and one new view (one wake-up of the writers
/// waiting for their versions, however many entries an `XREAD` brought);
/// whether they all followed in order (else the caller catches up).
fn apply_all(doc: &DocShared, entries: &[Entry]) -> bool {
    let view = doc.view.borrow().clone();
    let mut version = view.version;
    let mut patches = Vec::new();
    let mut in_order = true;
    for entry in entries {
        let same_epoch = view.epoch.as_deref() == Some(entry.epoch.as_str());
        if same_epoch && entry.version <= version {
            continue;
        }
        if !same_epoch || Some(entry.version) != version.checked_add(1) {
            in_order = false;
            break;
        }
        match serde_json::from_slice::<Vec<PatchOperation>>(&entry.patch) {
            Ok(ops) => patches.push((entry.version, ops)),
            Err(err) => {
                tracing::warn!(document = doc.name, version = entry.version, %err, "juggler-redis: an entry is not a patch; it changes nothing");
            }
        }
        version = entry.version;
    }
    if version != view.version {
        apply_patches(&doc.group, &doc.name, patches);
        doc.set_view(View {
            version,
            state: doc.group.state(),
            ..view
        });
    }
    in_order
}

/// Applies `patches` to the group in order, as one change when they all
/// apply; else each on its own, a patch that does not apply changing
/// nothing, on every node alike.
fn apply_patches(group: &Group, document: &str, patches: Vec<(u64, Vec<PatchOperation>)>) {
    if patches.len() > 1 {
        let joined = patches
            .iter()
            .flat_map(|(_, ops)| ops.iter().cloned())
            .collect();
        if group.update_state(joined).is_ok() {
            return;
        }
    }
    for (version, ops) in patches {
        if let Err(err) = group.update_state(ops) {
            tracing::debug!(document, version, %err, "juggler-redis: a patch did not apply; it changes nothing");
        }
    }
}

/// The entries of an `XREAD` reply (nil when it timed out).
fn stream_entries(reply: &Reply) -> Result<Vec<Entry>, Error> {
    match reply {
        Reply::Nil => Ok(Vec::new()),
        Reply::Array(streams) => match streams.first() {
            Some(Reply::Array(stream)) if stream.len() == 2 => entries(&stream[1]),
            None => Ok(Vec::new()),
            _ => Err(Error::Corrupt("XREAD reply of the wrong shape".into())),
        },
        Reply::Map(streams) => match streams.first() {
            Some((_, entries_reply)) => entries(entries_reply),
            None => Ok(Vec::new()),
        },
        _ => Err(Error::Corrupt("XREAD reply of the wrong shape".into())),
    }
}

/// The entries of an `XRANGE` reply.
fn entries(reply: &Reply) -> Result<Vec<Entry>, Error> {
    let Reply::Array(items) = reply else {
        return Err(Error::Corrupt("stream entries of the wrong shape".into()));
    };
    items.iter().map(entry).collect()
}

fn entry(item: &Reply) -> Result<Entry, Error> {
    let wrong = || Error::Corrupt("a stream entry of the wrong shape".into());
    let Reply::Array(parts) = item else {
        return Err(wrong());
    };
    let [id, fields] = &parts[..] else {
        return Err(wrong());
    };
    let id = text(id)?;
    let version = id
        .split_once('-')
        .and_then(|(version, _)| version.parse().ok())
        .ok_or_else(wrong)?;
    let Reply::Array(fields) = fields else {
        return Err(wrong());
    };
    let (mut epoch, mut patch) = (None, None);
    for pair in fields.chunks(2) {
        if let [name, value] = pair {
            match bytes(name)?.as_slice() {
                b"e" => epoch = Some(text(value)?),
                b"p" => patch = Some(bytes(value)?),
                _ => {}
            }
        }
    }
    Ok(Entry {
        version,
        epoch: epoch.ok_or_else(wrong)?,
        patch: patch.ok_or_else(wrong)?,
    })
}

fn bytes(reply: &Reply) -> Result<Vec<u8>, Error> {
    match reply {
        Reply::BulkString(bytes) => Ok(bytes.clone()),
        Reply::SimpleString(text) => Ok(text.clone().into_bytes()),
        Reply::Int(number) => Ok(number.to_string().into_bytes()),
        _ => Err(Error::Corrupt(format!("expected a string, got {reply:?}"))),
    }
}

fn text(reply: &Reply) -> Result<String, Error> {
    String::from_utf8(bytes(reply)?).map_err(|_| Error::Corrupt("a string not in UTF-8".into()))
}

fn number(reply: &Reply) -> Result<u64, Error> {
    text(reply)?
        .parse()
        .map_err(|_| Error::Corrupt("a version that is not a number".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Reply {
        Reply::BulkString(text.as_bytes().to_vec())
    }

    fn ops(value: serde_json::Value) -> Vec<PatchOperation> {
        serde_json::from_value(value).unwrap()
    }

    /// A batch whose joined patch fails still applies each entry that
    /// applies on its own, in order, as every node does.
    #[test]
    fn a_batch_applies_every_entry_that_applies() {
        let group = Group::new(serde_json::json!({}));
        let whole = vec![
            (
                1,
                ops(serde_json::json!([{"op": "add", "path": "/a", "value": 1}])),
            ),
            (
                2,
                ops(serde_json::json!([{"op": "add", "path": "/b", "value": 2}])),
            ),
        ];
        apply_patches(&group, "doc", whole);
        assert_eq!(*group.state(), serde_json::json!({"a": 1, "b": 2}));
        let one_fails = vec![
            (
                3,
                ops(serde_json::json!([{"op": "replace", "path": "/a", "value": 3}])),
            ),
            (
                4,
                ops(serde_json::json!([{"op": "remove", "path": "/missing"}])),
            ),
            (5, ops(serde_json::json!([{"op": "remove", "path": "/b"}]))),
        ];
        apply_patches(&group, "doc", one_fails);
        assert_eq!(*group.state(), serde_json::json!({"a": 3}));
    }

    #[test]
    fn entries_parse_what_the_scripts_write() {
        let reply = Reply::Array(vec![Reply::Array(vec![
            bulk("7-0"),
            Reply::Array(vec![bulk("e"), bulk("ab"), bulk("p"), bulk("[]")]),
        ])]);
        let parsed = entries(&reply).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!((parsed[0].version, parsed[0].epoch.as_str()), (7, "ab"));
        assert_eq!(parsed[0].patch, b"[]");
    }

    #[test]
    fn anything_else_is_a_typed_error_not_a_panic() {
        let hostile = [
            Reply::Int(5),
            Reply::Array(vec![Reply::Int(5)]),
            Reply::Array(vec![Reply::Array(vec![bulk("x-0"), Reply::Array(vec![])])]),
            Reply::Array(vec![Reply::Array(vec![
                bulk("7-0"),
                Reply::Array(vec![bulk("e")]),
            ])]),
            Reply::Array(vec![Reply::Array(vec![bulk("7-0")])]),
            Reply::Array(vec![Reply::Array(vec![
                Reply::BulkString(vec![0xff]),
                Reply::Array(vec![]),
            ])]),
        ];
        for reply in &hostile {
            assert!(
                matches!(entries(reply), Err(Error::Corrupt(_))),
                "{reply:?}"
            );
        }
        assert!(matches!(
            stream_entries(&Reply::Array(vec![Reply::Nil])),
            Err(Error::Corrupt(_))
        ));
        assert!(stream_entries(&Reply::Nil).unwrap().is_empty());
    }
}
