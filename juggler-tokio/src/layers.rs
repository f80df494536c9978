//! Tower layers for an app that embeds a [`JugglerEndpoint`](crate::JugglerEndpoint):
//! the basic auth and `Cache-Control` that [`listen`](crate::listen)'s own
//! server applies from its options, for your `Router` to add (see the
//! guide's "Embedding in an axum app").

use axum::http::{header, HeaderValue};
use tower_http::set_header::SetResponseHeaderLayer;

#[cfg(feature = "basic-auth")]
pub use basic_auth::{BasicAuth, BasicAuthLayer, HtpasswdCheck};

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

    use axum::body::Body;
    use axum::http::{Request, Response};
    use juggler_driver::{unauthorized, Error, Htpasswd};
    use tower::Layer;
    use tower_http::auth::{AsyncAuthorizeRequest, AsyncRequireAuthorization};

    use crate::runtime::TokioRuntime;

    /// Requires the basic auth of a user of an htpasswd file on every request
    /// of the routes it wraps, answering others `401` with `WWW-Authenticate:
    /// Basic realm=""`, as `ServerOptions::htpasswd_file` does for
    /// [`listen`](crate::listen). bcrypt checks run on tokio's blocking
    /// threads, once per user and password.
    ///
    /// ```no_run
    /// # use juggler_tokio::{axum::Router, BasicAuthLayer};
    /// # fn app(router: Router) -> Result<Router, juggler_tokio::Error> {
    /// Ok(router.layer(BasicAuthLayer::from_file("users.htpasswd".as_ref())?))
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    pub struct BasicAuthLayer(HtpasswdCheck);

    impl BasicAuthLayer {
        /// Checks requests against these users.
        pub fn new(htpasswd: Htpasswd) -> Self {
            BasicAuthLayer(HtpasswdCheck(htpasswd))
        }

        /// Checks requests against the users of an htpasswd file, read now.
        pub fn from_file(path: &Path) -> Result<Self, Error> {
            Ok(Self::new(Htpasswd::load(path)?))
        }
    }

    impl<S> Layer<S> for BasicAuthLayer {
        type Service = BasicAuth<S>;

        fn layer(&self, inner: S) -> BasicAuth<S> {
            AsyncRequireAuthorization::new(inner, self.0.clone())
        }
    }

    /// The service of a [`BasicAuthLayer`].
    pub type BasicAuth<S> = AsyncRequireAuthorization<S, HtpasswdCheck>;

    /// The check a [`BasicAuthLayer`] makes of each request.
    #[derive(Debug, Clone)]
    pub struct HtpasswdCheck(Htpasswd);

    impl<B: Send + 'static> AsyncAuthorizeRequest<B> for HtpasswdCheck {
        type RequestBody = B;
        type ResponseBody = Body;
        type Future = Pin<Box<dyn Future<Output = Result<Request<B>, Response<Body>>> + Send>>;

        fn authorize(&mut self, request: Request<B>) -> Self::Future {
            let htpasswd = self.0.clone();
            Box::pin(async move {
                let runtime = TokioRuntime(tokio::runtime::Handle::current());
                match htpasswd.check(request.headers(), &runtime).await {
                    true => Ok(request),
                    false => Err(unauthorized().map(Body::from)),
                }
            })
        }
    }
}
