//! What [`RemoteChanges`](crate::RemoteChanges) and
//! [`RemoteDataChanges`](crate::RemoteDataChanges) share as `Stream`s: a
//! wait for "a change after version `seen`", kept across polls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::Value;

use crate::Error;

/// A wait for the next change: its version and the data after it.
pub(crate) type ChangeWait = Pin<Box<dyn Future<Output = Result<(u64, Arc<Value>), Error>> + Send>>;

/// The stream state: the last version seen and the wait in progress.
#[derive(Default)]
pub(crate) struct ChangeCursor {
    pub(crate) seen: u64,
    pending: Option<ChangeWait>,
}

impl Clone for ChangeCursor {
    /// A clone has seen as much, and waits afresh.
    fn clone(&self) -> Self {
        ChangeCursor {
            seen: self.seen,
            pending: None,
        }
    }
}

impl ChangeCursor {
    /// Polls the wait `start(seen)` begins (once per change); `None` once
    /// it fails, which is the end of the stream.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        start: impl FnOnce(u64) -> ChangeWait,
    ) -> Poll<Option<Arc<Value>>> {
        let seen = self.seen;
        let pending = self.pending.get_or_insert_with(|| start(seen));
        let outcome = std::task::ready!(pending.as_mut().poll(cx));
        self.pending = None;
        Poll::Ready(match outcome {
            Ok((version, data)) => {
                self.seen = version;
                Some(data)
            }
            Err(_) => None,
        })
    }
}
