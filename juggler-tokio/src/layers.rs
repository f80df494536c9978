//! Tower layers for an app that embeds a [`JugglerEndpoint`](crate::JugglerEndpoint):
//! the basic auth and `Cache-Control` that [`listen`](crate::listen)'s own
//! server applies from its options, for your `Router` to add.

use axum::http::{header, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

#[cfg(feature = "basic-auth")]
pub use basic_auth::{BasicAuth, BasicAuthLayer};

/// Sets `Cache-Control: no-cache` on every response, as hat-juggler 0.7's
/// server does (`ServerOptions::no_cache`): a GUI's assets change with its
/// back end, and browsers must revalidate them.
pub fn no_cache_layer() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
}

#[cfg(feature = "basic-auth")]
mod basic_auth {
    use std::future::Future;
    use std::path::Path;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use axum::body::Body;
    use axum::http::{Request, Response};
    use juggler_driver::{unauthorized, Error, Htpasswd};
    use tower::{Layer, Service};

    use crate::runtime::TokioRuntime;

    /// Requires the basic auth of a user of an htpasswd file on every request
    /// of the routes it wraps, answering others `401` with `WWW-Authenticate:
    /// Basic realm=""`, as `ServerOptions::htpasswd_file` does for
    /// [`listen`](crate::listen). bcrypt checks run on tokio's blocking
    /// threads, once per user and password.
    ///
    /// ```no_run
    /// use std::net::SocketAddr;
    /// use axum::{routing::get, Router};
    /// use juggler_tokio::{no_cache_layer, BasicAuthLayer, JugglerEndpoint, ServerOptions};
    ///
    /// # async fn run() -> Result<(), juggler_tokio::Error> {
    /// let endpoint = JugglerEndpoint::new(drop, &ServerOptions::default())?;
    /// let app = Router::new()
    ///     .route("/ws", endpoint.handler())
    ///     .layer(BasicAuthLayer::from_file("users.htpasswd".as_ref())?)
    ///     .layer(no_cache_layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    /// # Ok(()) }
    /// ```
    #[derive(Debug, Clone)]
    pub struct BasicAuthLayer {
        htpasswd: Htpasswd,
    }

    impl BasicAuthLayer {
        /// Checks requests against these users.
        pub fn new(htpasswd: Htpasswd) -> Self {
            BasicAuthLayer { htpasswd }
        }

        /// Checks requests against the users of an htpasswd file, read now.
        pub fn from_file(path: &Path) -> Result<Self, Error> {
            Ok(Self::new(Htpasswd::load(path)?))
        }
    }

    impl<S> Layer<S> for BasicAuthLayer {
        type Service = BasicAuth<S>;

        fn layer(&self, inner: S) -> BasicAuth<S> {
            BasicAuth {
                inner,
                htpasswd: self.htpasswd.clone(),
            }
        }
    }

    /// The service of a [`BasicAuthLayer`].
    #[derive(Debug, Clone)]
    pub struct BasicAuth<S> {
        inner: S,
        htpasswd: Htpasswd,
    }

    impl<S, B> Service<Request<B>> for BasicAuth<S>
    where
        S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
        S::Future: Send,
        B: Send + 'static,
    {
        type Response = Response<Body>;
        type Error = S::Error;
        type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            self.inner.poll_ready(cx)
        }

        fn call(&mut self, request: Request<B>) -> Self::Future {
            // The clone that was polled ready serves this request; a fresh one
            // waits for the next.
            let ready = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, ready);
            let htpasswd = self.htpasswd.clone();
            Box::pin(async move {
                if htpasswd
                    .check(
                        request.headers(),
                        &TokioRuntime(tokio::runtime::Handle::current()),
                    )
                    .await
                {
                    inner.call(request).await
                } else {
                    Ok(unauthorized().map(Body::from))
                }
            })
        }
    }
}
