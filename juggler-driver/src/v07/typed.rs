//! 0.6/0.7 with the application's own serde types: requests routed by
//! name to typed handlers, typed requests from the client, typed state.

#[cfg(feature = "server")]
pub(super) use server_side::Routes;

#[cfg(feature = "server")]
mod server_side {
    use std::collections::HashMap;
    use std::future::Future;
    use std::marker::PhantomData;
    use std::sync::Arc;

    use futures_util::FutureExt;
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    use crate::v07::{Connection, Handlers, RequestError, RequestFuture, RequestHandler};
    use crate::{Error, Group};

    /// Typed handlers by request name, and what answers the other names.
    #[derive(Clone, Default)]
    pub(crate) struct Routes {
        by_name: HashMap<String, Arc<dyn RequestHandler>>,
        fallback: Option<Arc<dyn RequestHandler>>,
    }

    impl Routes {
        /// These routes, answering the names they don't with `fallback`.
        pub(crate) fn with_fallback(
            &mut self,
            fallback: Arc<dyn RequestHandler>,
        ) -> Arc<dyn RequestHandler> {
            self.fallback = Some(fallback);
            Arc::new(self.clone())
        }
    }

    impl RequestHandler for Routes {
        fn handle(&self, connection: Connection, name: String, data: Value) -> RequestFuture {
            match self.by_name.get(&name).or(self.fallback.as_ref()) {
                Some(handler) => handler.handle(connection, name, data),
                None => {
                    let error = RequestError::new(format!("unknown request {name}"));
                    Box::pin(std::future::ready(Err(error)))
                }
            }
        }
    }

    /// A handler of `Req` that answers a `Resp`.
    struct Typed<F, Req, Resp> {
        handler: F,
        types: PhantomData<fn(Req) -> Resp>,
    }

    impl<F, Fut, Req, Resp> RequestHandler for Typed<F, Req, Resp>
    where
        F: Fn(Connection, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, RequestError>> + Send + 'static,
        Req: DeserializeOwned + 'static,
        Resp: Serialize + 'static,
    {
        fn handle(&self, connection: Connection, name: String, data: Value) -> RequestFuture {
            let request: Req = match serde_path_to_error::deserialize(data) {
                Ok(request) => request,
                Err(err) => {
                    // The path names the field; the data itself has none.
                    let why = match err.path().iter().next() {
                        Some(_) => err.to_string(),
                        None => err.into_inner().to_string(),
                    };
                    let error = RequestError::new(format!("bad data for request {name}: {why}"));
                    return Box::pin(std::future::ready(Err(error)));
                }
            };
            Box::pin((self.handler)(connection, request).map(|answer| {
                serde_json::to_value(answer?).map_err(|err| {
                    RequestError::new(format!("the answer does not serialize to JSON: {err}"))
                })
            }))
        }
    }

    impl Handlers {
        /// Answers requests named `name` with `handler`, an async closure of
        /// the connection and the request's data as a `Req`; its `Resp`
        /// goes back as the answer's data.
        ///
        /// Data that doesn't deserialize as a `Req` gets an error answer
        /// that names the field (`bad data for request add: b: invalid
        /// type: ...`), and a name no handler takes gets `unknown request
        /// NAME` (or goes to [`on_request`](Self::on_request), when set).
        ///
        /// ```
        /// use juggler_driver::v07::{Handlers, RequestError};
        /// use serde::Deserialize;
        ///
        /// #[derive(Deserialize)]
        /// struct Add { a: i64, b: i64 }
        ///
        /// let handlers = Handlers::new()
        ///     .request("add", |_connection, add: Add| async move {
        ///         Ok::<_, RequestError>(add.a + add.b)
        ///     })
        ///     .request("echo", |_connection, text: String| async move {
        ///         Ok::<_, RequestError>(text)
        ///     });
        /// ```
        #[must_use]
        pub fn request<Req, Resp, F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
        where
            F: Fn(Connection, Req) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<Resp, RequestError>> + Send + 'static,
            Req: DeserializeOwned + 'static,
            Resp: Serialize + 'static,
        {
            let routes = self.routes.get_or_insert_with(Routes::default);
            let typed = Typed {
                handler,
                types: PhantomData,
            };
            routes.by_name.insert(name.into(), Arc::new(typed));
            let fallback = routes.fallback.take().or_else(|| self.request_cb.take());
            self.request_cb = Some(match fallback {
                Some(fallback) => routes.with_fallback(fallback),
                None => Arc::new(routes.clone()),
            });
            self
        }

        /// Serves `state` to every connection: each joins the group before
        /// `on_connection` sees it, as the reference's `listen(state=...)`.
        /// Change it with [`Group::set`] or [`Group::modify`], which are
        /// safe from requests running at once.
        #[must_use]
        pub fn state(mut self, state: Group) -> Self {
            self.state = Some(state);
            self
        }
    }

    impl Connection {
        /// Replaces the state with `state` serialized, as
        /// [`set_state`](Self::set_state) does; [`Error::LocalDataType`]
        /// when it does not serialize to JSON.
        pub fn set_state_as<T: Serialize + ?Sized>(&self, state: &T) -> Result<(), Error> {
            self.set_state(serde_json::to_value(state).map_err(Error::LocalDataType)?);
            Ok(())
        }
    }

    impl Group {
        /// Replaces the state with `state` serialized, as
        /// [`set_state`](Self::set_state) does; [`Error::LocalDataType`]
        /// when it does not serialize to JSON.
        pub fn set_state_as<T: Serialize + ?Sized>(&self, state: &T) -> Result<(), Error> {
            self.set_state(serde_json::to_value(state).map_err(Error::LocalDataType)?);
            Ok(())
        }
    }
}

#[cfg(feature = "client")]
mod client_side {
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::Value;

    use crate::v07::Client;
    use crate::Error;

    impl Client {
        /// Sends request `name` with `data` serialized and reads the
        /// answer as a `Resp`: [`send`](Self::send) with types.
        /// [`Error::LocalDataType`] when `data` doesn't serialize,
        /// [`Error::Remote`] with the error data when the server answers
        /// `success: false`, [`Error::RemoteDataType`] when the answer
        /// isn't a `Resp`.
        ///
        /// ```no_run
        /// # async fn run(client: juggler_driver::v07::Client) -> Result<(), juggler_driver::Error> {
        /// let sum: i64 = client.request("add", &serde_json::json!({"a": 1, "b": 2})).await?;
        /// # Ok(()) }
        /// ```
        pub async fn request<Req, Resp>(&self, name: &str, data: &Req) -> Result<Resp, Error>
        where
            Req: Serialize + ?Sized,
            Resp: DeserializeOwned,
        {
            let data = serde_json::to_value(data).map_err(Error::LocalDataType)?;
            let answer = self.send(name, data).await?;
            serde_json::from_value(answer).map_err(Error::RemoteDataType)
        }

        /// The state as a `T`; [`Error::RemoteDataType`] when it isn't one.
        pub fn state_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
            T::deserialize(&*self.state()).map_err(Error::RemoteDataType)
        }

        /// The value at JSON pointer `pointer` of the state (`""` is all
        /// of it), as the reference's `json.Storage.get(path)`.
        pub fn get(&self, pointer: &str) -> Result<Option<Value>, Error> {
            let state = self.state();
            Ok(juggler_core::path_edit::get_at(&state, pointer)?.cloned())
        }
    }
}
