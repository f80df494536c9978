//! The one change-stream type: remote data changes as an async sequence,
//! over a 0.5 [`Connection`](crate::Connection)
//! ([`RemoteChanges`](crate::RemoteChanges)) or a reconnecting client
//! ([`RemoteDataChanges`](crate::RemoteDataChanges)) alike.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::Value;

use crate::Error;

/// A wait for the next change: its version and the data after it.
type ChangeWait = Pin<Box<dyn Future<Output = Result<(u64, Arc<Value>), Error>> + Send>>;

/// What a [`ChangeStream`] watches: versions of the remote data, counted
/// from 0, and the data after the latest. Implemented by the crate's
/// connection state and reconnecting client only.
pub trait ChangeSource: Send + Sync + 'static {
    /// The stream's name in `Debug` output.
    #[doc(hidden)]
    const NAME: &'static str;

    /// Waits for a version after `seen`: that version and the data after
    /// it; fails once no change can come any more.
    #[doc(hidden)]
    fn next_change(
        &self,
        seen: u64,
    ) -> impl Future<Output = Result<(u64, Arc<Value>), Error>> + Send;
}

/// Remote data changes as an async sequence: each
/// [`changed`](Self::changed) waits for changes not yet seen and returns
/// the remote data after them (several quick changes may be seen as one).
///
/// A new stream has seen nothing: if the remote data has changed since
/// the connection (or the reconnecting client) opened, its first
/// `changed` returns at once with the current data, so a late subscriber
/// never misses the state. It does not keep the connection open.
///
/// It is also a [`Stream`](futures_util::Stream) of the remote data after
/// each change, which ends when the connection closes (or the
/// reconnecting client closes or gives up).
pub struct ChangeStream<S> {
    source: Arc<S>,
    /// The last version seen.
    seen: u64,
    /// The `Stream`'s wait in progress, kept across polls.
    pending: Option<ChangeWait>,
}

impl<S> Clone for ChangeStream<S> {
    /// A clone has seen as much, and waits afresh.
    fn clone(&self) -> Self {
        ChangeStream {
            source: self.source.clone(),
            seen: self.seen,
            pending: None,
        }
    }
}

impl<S: ChangeSource> fmt::Debug for ChangeStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME).field("seen", &self.seen).finish()
    }
}

impl<S: ChangeSource> ChangeStream<S> {
    /// A stream that has seen nothing of `source`.
    pub(crate) fn new(source: Arc<S>) -> Self {
        ChangeStream {
            source,
            seen: 0,
            pending: None,
        }
    }

    /// Waits for the next change and returns the remote data; fails with
    /// [`Error::Closed`] once the connection (or reconnecting client) is
    /// closed, and with [`Error::Disconnected`] once a reconnecting
    /// client gave up.
    pub async fn changed(&mut self) -> Result<Arc<Value>, Error> {
        let (version, data) = self.source.next_change(self.seen).await?;
        self.seen = version;
        Ok(data)
    }
}

impl<S: ChangeSource> futures_util::Stream for ChangeStream<S> {
    type Item = Arc<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<Value>>> {
        let this = &mut *self;
        let (source, seen) = (&this.source, this.seen);
        let pending = this.pending.get_or_insert_with(|| {
            let source = source.clone();
            Box::pin(async move { source.next_change(seen).await })
        });
        let outcome = std::task::ready!(pending.as_mut().poll(cx));
        this.pending = None;
        Poll::Ready(match outcome {
            Ok((version, data)) => {
                this.seen = version;
                Some(data)
            }
            // Once it fails it is the end of the stream.
            Err(_) => None,
        })
    }
}
