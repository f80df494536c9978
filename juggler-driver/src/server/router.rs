//! The router of a server of juggler-rs's own, the same on every runtime:
//! the WebSocket path, the `/` redirect, the application's routes and the
//! static folder, with basic auth before and `Cache-Control` on every
//! answer.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::header::{CACHE_CONTROL, CONTENT_LENGTH};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Bytes, Incoming};

use super::{index_redirect, Acceptor, ServerFiles, ServerOptions};
use crate::Runtime;

/// The application's routes beside the WebSocket path and the static
/// folder (the runtime crates' `listen_with_routes`): every answer but
/// `404` is final; a `404` falls through to the static folder.
pub type Routes<B> = Box<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<B>> + Send>> + Send + Sync,
>;

/// What the router answers: small bodies whole, files streamed, and the
/// application's routes' own.
pub type RouterBody<B> = Either<Full<Bytes>, Either<Files, B>>;

/// A static file's body.
#[cfg(feature = "static-files")]
type Files = crate::FileBody;
/// No static files are served without the `static-files` feature.
#[cfg(not(feature = "static-files"))]
type Files = http_body_util::Empty<Bytes>;

/// What every request of one server shares.
pub(super) struct Router<B> {
    acceptor: Arc<Acceptor>,
    ws_path: String,
    index_path: Option<String>,
    /// The static folder and the htpasswd users, as their features allow.
    #[cfg_attr(
        not(any(feature = "static-files", feature = "basic-auth")),
        allow(dead_code)
    )]
    files: ServerFiles,
    no_cache: bool,
    routes: Option<Routes<B>>,
    /// For basic auth's bcrypt and the static folder's file system calls.
    #[cfg_attr(
        not(any(feature = "static-files", feature = "basic-auth")),
        allow(dead_code)
    )]
    runtime: Arc<dyn Runtime>,
}

impl<B> Router<B> {
    pub(super) fn new(
        acceptor: &Arc<Acceptor>,
        options: &ServerOptions,
        files: ServerFiles,
        routes: Option<Routes<B>>,
        runtime: Arc<dyn Runtime>,
    ) -> Self {
        Router {
            acceptor: acceptor.clone(),
            ws_path: options.ws_path.clone(),
            index_path: options.index_path.clone(),
            files,
            no_cache: options.no_cache,
            routes,
            runtime,
        }
    }
}

impl<B> Router<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Answers one request of the HTTP connection from `peer`.
    pub(super) async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<RouterBody<B>> {
        #[cfg(feature = "basic-auth")]
        if let Some(htpasswd) = &self.files.htpasswd {
            if !htpasswd.check(request.headers(), &*self.runtime).await {
                return self.finish(crate::unauthorized().map(|body| Either::Left(body.into())));
            }
        }
        let response = self.route(request, peer).await;
        self.finish(response)
    }

    /// What every answer carries: `Cache-Control` as the options say,
    /// and the length of a body whose length is known.
    fn finish(&self, mut response: Response<RouterBody<B>>) -> Response<RouterBody<B>> {
        if self.no_cache {
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        // hyper sends no length on an answer to HEAD; a HEAD's answer says
        // what the GET's would (as axum does).
        let exact = response.body().size_hint().exact();
        if let (Some(length), false) = (exact, response.headers().contains_key(CONTENT_LENGTH)) {
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
        }
        response
    }

    async fn route(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<RouterBody<B>> {
        let path = request.uri().path();
        if path == self.ws_path {
            return match self.acceptor.answer(request, Some(peer)).await {
                Ok(switching) => switching.map(|()| Either::Left(Full::default())),
                Err(refusal) => refusal.map(|body| Either::Left(body.into())),
            };
        }
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        if readable && path == "/" {
            if let Some(index_path) = &self.index_path {
                return index_redirect(index_path).map(|body| Either::Left(body.into()));
            }
        }
        let (parts, body) = request.into_parts();
        if let Some(routes) = &self.routes {
            let copy = request_copy(&parts);
            let response = routes(Request::from_parts(parts, body)).await;
            if response.status() != StatusCode::NOT_FOUND {
                return response.map(|body| Either::Right(Either::Right(body)));
            }
            return self.serve_static(copy).await;
        }
        self.serve_static(parts).await
    }

    /// A file of the static folder, or 404.
    #[cfg_attr(not(feature = "static-files"), allow(clippy::unused_async))]
    async fn serve_static(&self, request: Parts) -> Response<RouterBody<B>> {
        #[cfg(feature = "static-files")]
        if let Some(dir) = &self.files.static_dir {
            return dir
                .serve(&request, self.runtime.clone())
                .await
                .map(|body| Either::Right(Either::Left(body)));
        }
        let _ = request;
        let mut response = Response::new(Either::Left(Full::default()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    }
}

/// The method, URI, version and headers of a request, for the static
/// folder once the application's routes have taken the request itself.
fn request_copy(parts: &Parts) -> Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    copy.into_parts().0
}
