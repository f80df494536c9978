//! A cluster document: one JSON document that every node mirrors.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use juggler_driver::{Group, PatchOperation, Value};
use tokio::sync::watch;

use crate::cluster::ClusterShared;
use crate::link::sleep;
use crate::scripts::{SAVE, UPDATE};
use crate::{Error, View};

/// How many times [`Document::modify`] retries on a conflict.
const MODIFY_ATTEMPTS: usize = 64;

/// One JSON document shared by every node of a cluster.
///
/// Writes are JSON Patches, committed in Redis in one order; every node,
/// the writer included, applies them only as they come back from the
/// document's Redis stream, so all nodes converge on the same document.
/// The node's copy is the state of a local [`Group`]: a connection that
/// [`join`](Group::join)s it shows the document, and gets every change as
/// a diff (and after a catch-up from the snapshot, one corrective diff);
/// one that joins it [`at`](Group::join_at) a pointer shows it as a part
/// of its state, beside its own and other documents' parts.
/// Reads ([`state`](Self::state)) always serve the node's copy, also
/// while Redis is unreachable; writes then fail at once with
/// [`Error::Unavailable`]. A clone is the same document.
#[derive(Clone)]
pub struct Document {
    pub(crate) shared: Arc<DocShared>,
}

/// What the handle and the follower task share.
pub(crate) struct DocShared {
    pub(crate) cluster: Arc<ClusterShared>,
    pub(crate) name: String,
    /// The snapshot hash's key.
    pub(crate) snap: String,
    /// The stream's key.
    pub(crate) log: String,
    pub(crate) group: Group,
    pub(crate) view: watch::Sender<View>,
    /// Whether the follower is caught up and reading the stream.
    pub(crate) synced: AtomicBool,
    /// The newest snapshot version this node knows of.
    pub(crate) saved: AtomicU64,
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = self.view();
        f.debug_struct("Document")
            .field("name", &self.shared.name)
            .field("epoch", &view.epoch)
            .field("version", &view.version)
            .finish()
    }
}

impl DocShared {
    /// Replaces the node's view and wakes its watchers.
    pub(crate) fn set_view(&self, view: View) {
        self.view.send_replace(view);
    }
}

impl Document {
    /// The document's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The node's copy of the document now.
    pub fn state(&self) -> Arc<Value> {
        self.shared.view.borrow().state.clone()
    }

    /// The node's copy with its epoch and version.
    pub fn view(&self) -> View {
        self.shared.view.borrow().clone()
    }

    /// The version of the node's copy.
    pub fn version(&self) -> u64 {
        self.shared.view.borrow().version
    }

    /// The local group whose state is this document: join connections to
    /// it to show them the document.
    pub fn group(&self) -> &Group {
        &self.shared.group
    }

    /// Whether the node is caught up with Redis, following the stream,
    /// and has its command connection (so writes can be sent).
    pub fn is_synced(&self) -> bool {
        self.shared.synced.load(Ordering::SeqCst) && self.shared.cluster.link.is_up()
    }

    /// Changes of the node's copy, from now on.
    pub fn changes(&self) -> Changes {
        let mut receiver = self.shared.view.subscribe();
        receiver.mark_unchanged();
        Changes { receiver }
    }

    /// Waits until the node is synced (see [`is_synced`](Self::is_synced)).
    pub async fn synced(&self) {
        let mut receiver = self.shared.view.subscribe();
        while !self.shared.synced.load(Ordering::SeqCst) {
            if receiver.changed().await.is_err() {
                return;
            }
        }
        self.shared.cluster.link.wait_up().await;
    }

    /// Applies `ops` on top of whatever the document is when Redis gets
    /// them; returns the version they made, once this node's copy has it.
    ///
    /// The patch must apply to this node's copy (checked before sending,
    /// [`Error::Patch`] otherwise). If it does not apply to the document
    /// at its version (someone changed it first), it changes nothing, on
    /// every node alike: use [`update_at`](Self::update_at) or
    /// [`modify`](Self::modify) when that matters.
    pub async fn update(&self, ops: Vec<PatchOperation>) -> Result<u64, Error> {
        self.check(&ops)?;
        self.write(None, ops).await
    }

    /// Applies `ops` only if the document is still at `version` of this
    /// node's epoch ([`Error::Conflict`] otherwise, and nothing changes).
    pub async fn update_at(&self, version: u64, ops: Vec<PatchOperation>) -> Result<u64, Error> {
        let epoch = self.view().epoch.ok_or(Error::Unavailable)?;
        self.write(Some((epoch, version)), ops).await
    }

    /// Read-modify-write: `change` gets the document and returns a patch,
    /// which is committed only if nobody wrote in between; on a conflict
    /// it runs again on the newer document (up to 64 times). Returns the
    /// version the patch made and the document with it.
    ///
    /// ```no_run
    /// # async fn count(document: &juggler_redis::Document) -> Result<(), juggler_redis::Error> {
    /// use juggler_driver::PatchOperation;
    /// use serde_json::{from_value, json};
    ///
    /// document
    ///     .modify(|doc| {
    ///         let counter = doc["counter"].as_i64().unwrap_or(0);
    ///         from_value::<Vec<PatchOperation>>(json!([
    ///             {"op": "add", "path": "/counter", "value": counter + 1}
    ///         ]))
    ///         .unwrap_or_default()
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn modify(
        &self,
        mut change: impl FnMut(&Value) -> Vec<PatchOperation>,
    ) -> Result<(u64, Arc<Value>), Error> {
        let mut last = None;
        for _ in 0..MODIFY_ATTEMPTS {
            let view = self.view();
            let epoch = view.epoch.clone().ok_or(Error::Unavailable)?;
            let ops = change(&view.state);
            check_on(&view.state, &ops)?;
            match self.write(Some((epoch, view.version)), ops).await {
                Ok(version) => return Ok((version, self.state())),
                Err(Error::Conflict { expected, actual }) => {
                    last = Some(Error::Conflict { expected, actual });
                    self.wait_past(view.version, Duration::from_secs(1)).await;
                }
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or(Error::Unavailable))
    }

    /// Fails with [`Error::Patch`] if `ops` do not apply to the copy.
    fn check(&self, ops: &[PatchOperation]) -> Result<(), Error> {
        check_on(&self.state(), ops)
    }

    /// Waits (up to `limit`) until the copy is past `version` or changed
    /// epoch.
    async fn wait_past(&self, version: u64, limit: Duration) {
        let mut receiver = self.shared.view.subscribe();
        let epoch = receiver.borrow().epoch.clone();
        let wait = receiver.wait_for(|view| view.version > version || view.epoch != epoch);
        let runtime = &self.shared.cluster.runtime;
        let timeout = runtime.sleep_until(runtime.now() + limit);
        futures_util::future::select(Box::pin(wait), timeout).await;
    }

    async fn write(
        &self,
        expected: Option<(Arc<str>, u64)>,
        ops: Vec<PatchOperation>,
    ) -> Result<u64, Error> {
        let shared = &self.shared;
        let cluster = &shared.cluster;
        if !self.is_synced() {
            return Err(Error::Unavailable);
        }
        let mut connection = cluster.link.connection()?;
        let patch = serde_json::to_string(&ops).map_err(|err| Error::Patch(err.to_string()))?;
        let (expected_epoch, expected_version) = match &expected {
            Some((epoch, version)) => (epoch.to_string(), version.to_string()),
            None => (String::new(), String::new()),
        };
        let runtime = &*cluster.runtime;
        let deadline = runtime.now() + cluster.options.write_timeout;
        let (epoch, version) = loop {
            let reply: Vec<String> = UPDATE
                .key(&shared.snap)
                .key(&shared.log)
                .arg(&expected_epoch)
                .arg(&expected_version)
                .arg(&patch)
                .arg(cluster.options.max_stream_len)
                .arg(cluster.options.reseed_settle.as_millis() as u64)
                .invoke_async(&mut connection)
                .await
                .map_err(|err| match cluster.link.failed(err) {
                    Error::Redis(err) if Error::is_connection_loss(&err) => {
                        Error::Unconfirmed(err.to_string())
                    }
                    other => other,
                })?;
            match reply.first().map(String::as_str) {
                Some("ok") if reply.len() == 3 => break (reply[1].clone(), parse(&reply[2])?),
                Some("conflict") if reply.len() == 3 => {
                    return Err(Error::Conflict {
                        expected: expected.map_or(0, |(_, version)| version),
                        actual: parse(&reply[2])?,
                    })
                }
                Some("settling") if runtime.now() < deadline => {
                    sleep(runtime, Duration::from_millis(20)).await;
                }
                Some("settling" | "missing") => return Err(Error::Unavailable),
                _ => return Err(Error::Corrupt(format!("update answered {reply:?}"))),
            }
        };
        self.wait_applied(&epoch, version, deadline).await?;
        self.maybe_save(version);
        Ok(version)
    }

    /// Waits until the copy has `version` of `epoch`.
    async fn wait_applied(
        &self,
        epoch: &str,
        version: u64,
        deadline: std::time::Instant,
    ) -> Result<(), Error> {
        let mut receiver = self.shared.view.subscribe();
        let outcome = receiver.wait_for(|view| view.covers(epoch, version).is_some());
        let runtime = self.shared.cluster.runtime.clone();
        let timeout = runtime.sleep_until(deadline);
        let seen = match futures_util::future::select(Box::pin(outcome), timeout).await {
            futures_util::future::Either::Left((Ok(view), _)) => {
                Some(Ok(view.covers(epoch, version)))
            }
            futures_util::future::Either::Left((Err(_), _)) => Some(Err(())),
            futures_util::future::Either::Right(_) => None,
        };
        match seen {
            Some(Ok(covered)) => {
                if covered == Some(true) {
                    Ok(())
                } else {
                    Err(Error::Lost(version))
                }
            }
            Some(Err(())) => Err(Error::Closed),
            None => Err(Error::Unconfirmed(format!(
                "version {version} was committed but not seen back in time"
            ))),
        }
    }

    /// Stores a snapshot in the background when the last is old enough.
    fn maybe_save(&self, version: u64) {
        let shared = self.shared.clone();
        let every = shared.cluster.options.snapshot_every;
        let saved = shared.saved.load(Ordering::SeqCst);
        if version < saved.saturating_add(every) {
            return;
        }
        // Claims this round, so that one write saves it.
        if shared
            .saved
            .compare_exchange(saved, version, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        let Ok(mut connection) = shared.cluster.link.connection() else {
            shared.saved.store(saved, Ordering::SeqCst);
            return;
        };
        shared.cluster.runtime.clone().spawn(Box::pin(async move {
            let view = shared.view.borrow().clone();
            let Some(epoch) = view.epoch else { return };
            let Ok(data) = serde_json::to_string(&*view.state) else {
                return;
            };
            let stored: Result<i64, _> = SAVE
                .key(&shared.snap)
                .key(&shared.log)
                .arg(&*epoch)
                .arg(view.version)
                .arg(data)
                .invoke_async(&mut connection)
                .await;
            match stored {
                Ok(_) => {
                    shared.saved.fetch_max(view.version, Ordering::SeqCst);
                }
                Err(err) => {
                    shared.saved.store(saved, Ordering::SeqCst);
                    let _ = shared.cluster.link.failed(err);
                }
            }
        }));
    }
}

/// Fails with [`Error::Patch`] if `ops` do not apply to `state`.
fn check_on(state: &Value, ops: &[PatchOperation]) -> Result<(), Error> {
    let mut copy = state.clone();
    json_patch_apply(&mut copy, ops)
}

fn json_patch_apply(state: &mut Value, ops: &[PatchOperation]) -> Result<(), Error> {
    let mut shared = juggler_driver::SharedState::new(std::mem::take(state));
    shared
        .update(ops.to_vec())
        .map(|_| ())
        .map_err(|err| Error::Patch(err.to_string()))
}

fn parse(number: &str) -> Result<u64, Error> {
    number
        .parse()
        .map_err(|_| Error::Corrupt(format!("version {number:?}")))
}

/// Changes of a node's copy of a document.
#[derive(Debug)]
pub struct Changes {
    receiver: watch::Receiver<View>,
}

impl Changes {
    /// The copy after its next change (changes in between may be skipped;
    /// the newest is never missed). `None` once the document is closed.
    pub async fn next(&mut self) -> Option<View> {
        self.receiver.changed().await.ok()?;
        Some(self.receiver.borrow_and_update().clone())
    }
}
