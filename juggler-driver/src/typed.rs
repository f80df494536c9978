//! A connection whose data are the application's own serde types.

use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use juggler_core::ProtocolError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Connection, Error, RemoteChanges, WeakConnection};

/// A [`Connection`] that sets its local data as an `L` and reads the
/// peer's data as an `R`, with no hand conversion to and from [`Value`].
///
/// Remote data that does not fit `R` gives
/// [`Error::RemoteDataType`] and leaves the connection open, unless
/// [`close_on_mismatch`](Self::close_on_mismatch) asks for a close (with a
/// protocol error the peer sees). Everything else of the connection is
/// one [`connection`](Self::connection) away.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use juggler_driver::{Connection, TypedConnection};
///
/// #[derive(Serialize)]
/// struct Visitor { name: String }
///
/// #[derive(Deserialize, Debug)]
/// struct Board { clients: u32, names: Vec<String> }
///
/// # async fn run(connection: Connection) -> Result<(), juggler_driver::Error> {
/// let typed = TypedConnection::<Visitor, Board>::new(connection);
/// typed.set_local_data(&Visitor { name: "alice".into() })?;
/// let mut boards = typed.remote_changes();
/// while let Ok(board) = boards.changed().await {
///     match board {
///         Ok(board) => println!("{} online: {:?}", board.clients, board.names),
///         Err(err) => eprintln!("the server sent a board we cannot read: {err}"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct TypedConnection<L, R> {
    connection: Connection,
    close_on_mismatch: bool,
    types: PhantomData<fn(&L) -> R>,
}

impl<L, R> Clone for TypedConnection<L, R> {
    fn clone(&self) -> Self {
        TypedConnection {
            connection: self.connection.clone(),
            close_on_mismatch: self.close_on_mismatch,
            types: PhantomData,
        }
    }
}

impl<L, R> fmt::Debug for TypedConnection<L, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedConnection")
            .field("connection", &self.connection)
            .field("local", &std::any::type_name::<L>())
            .field("remote", &std::any::type_name::<R>())
            .finish()
    }
}

impl<L: Serialize, R: DeserializeOwned> TypedConnection<L, R> {
    /// Wraps `connection`.
    pub fn new(connection: Connection) -> Self {
        TypedConnection {
            connection,
            close_on_mismatch: false,
            types: PhantomData,
        }
    }

    /// Closes the connection (with [`ProtocolError::InvalidMessage`]) when
    /// the peer's data does not fit `R`, instead of only reporting it.
    #[must_use]
    pub fn close_on_mismatch(mut self, close: bool) -> Self {
        self.close_on_mismatch = close;
        self
    }

    /// The connection underneath.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The connection underneath, unwrapped.
    pub fn into_inner(self) -> Connection {
        self.connection
    }

    /// Replaces the local data with `data`, serialized; fails with
    /// [`Error::LocalDataType`] if it does not serialize to JSON (a map
    /// with keys that are not strings, say), and then nothing changes.
    #[doc(alias = "set_local")]
    pub fn set_local_data(&self, data: &L) -> Result<(), Error> {
        let value = serde_json::to_value(data).map_err(Error::LocalDataType)?;
        self.connection.set_local_data(value)
    }

    /// The peer's data as an `R`: [`Error::RemoteDataType`] when it does
    /// not fit (the connection stays open unless
    /// [`close_on_mismatch`](Self::close_on_mismatch)).
    pub fn remote_data(&self) -> Result<R, Error> {
        decode(
            &self.connection.remote_data(),
            self.close_on_mismatch.then(|| self.connection.downgrade()),
        )
    }

    /// The peer's data at each change, as an `R`; see
    /// [`TypedRemoteChanges`].
    pub fn remote_changes(&self) -> TypedRemoteChanges<R> {
        TypedRemoteChanges {
            changes: self.connection.remote_changes(),
            close_on_mismatch: self.close_on_mismatch.then(|| self.connection.downgrade()),
            types: PhantomData,
        }
    }

    /// Sends a message of any serde type.
    pub async fn send<M: Serialize>(&self, message: &M) -> Result<(), Error> {
        let value = serde_json::to_value(message).map_err(Error::LocalDataType)?;
        self.connection.send(&value).await
    }
}

fn decode<R: DeserializeOwned>(data: &Value, close: Option<WeakConnection>) -> Result<R, Error> {
    R::deserialize(data).map_err(|err| {
        if let Some(connection) = close.and_then(|weak| weak.upgrade()) {
            connection.close_with_protocol_error(ProtocolError::InvalidMessage(format!(
                "remote data does not fit {}: {err}",
                std::any::type_name::<R>()
            )));
        }
        Error::RemoteDataType(err)
    })
}

/// Remote data changes of a [`TypedConnection`], decoded. Each
/// [`changed`](Self::changed) returns `Ok(Ok(data))`, `Ok(Err(_))` for a
/// change that did not fit `R` (the next change may), or `Err(Closed)`.
/// As a [`Stream`] its items are the inner results, and it ends at the
/// close.
pub struct TypedRemoteChanges<R> {
    changes: RemoteChanges,
    close_on_mismatch: Option<WeakConnection>,
    types: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for TypedRemoteChanges<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedRemoteChanges")
            .field("changes", &self.changes)
            .finish()
    }
}

impl<R: DeserializeOwned> TypedRemoteChanges<R> {
    /// Waits for the next change and decodes it; fails with
    /// [`Error::Closed`] once the connection is closed.
    pub async fn changed(&mut self) -> Result<Result<R, Error>, Error> {
        let data = self.changes.changed().await?;
        Ok(decode(&data, self.close_on_mismatch.clone()))
    }
}

impl<R: DeserializeOwned> Stream for TypedRemoteChanges<R> {
    type Item = Result<R, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        Pin::new(&mut this.changes)
            .poll_next(cx)
            .map(|data| data.map(|data| decode(&data, this.close_on_mismatch.clone())))
    }
}
