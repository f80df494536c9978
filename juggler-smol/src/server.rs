//! `listen`: the server side, on hyper over smol's I/O.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::Role;
use async_tungstenite::WebSocketStream;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use juggler_driver::{
    index_redirect, load_server_files, AcceptControl, Acceptor, Connection, Error, HttpTimeouts,
    Io, Registry, Server, ServerOptions, StaticDir,
};
use smol::net::{TcpListener, TcpStream};
use smol::Task;
use smol_hyper::rt::{FuturesIo, SmolTimer};

use crate::runtime::SmolRuntime;

/// The I/O hyper serves, plain or TLS: one type, so an upgraded request
/// can be turned back into the stream it came on.
type HttpIo = FuturesIo<Box<dyn Io>>;
type Body = Full<Bytes>;

/// What every request of one server shares.
struct App {
    acceptor: Acceptor,
    ws_path: String,
    index_path: Option<String>,
    static_dir: Option<StaticDir>,
}

impl App {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let path = request.uri().path();
        if path == self.ws_path {
            return self.websocket(request, peer).await;
        }
        let readable = matches!(*request.method(), Method::GET | Method::HEAD);
        if readable && path == "/" {
            if let Some(index_path) = &self.index_path {
                return index_redirect(index_path).map(Body::from);
            }
        }
        if let (true, Some(dir)) = (readable, &self.static_dir) {
            if let Some(file) = dir.resolve(path) {
                return serve_file(file, request.method() == Method::HEAD).await;
            }
        }
        status(StatusCode::NOT_FOUND)
    }

    async fn websocket(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let checked = match self.acceptor.check(&request, Some(peer)) {
            Ok(checked) => checked,
            Err(refusal) => return refusal.response().map(Body::from),
        };
        let on_upgrade = hyper::upgrade::on(request);
        let (response, admitted) = match self.acceptor.decide(checked).await {
            Ok(decided) => decided,
            Err(refusal) => return refusal.response().map(Body::from),
        };
        smol::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => return tracing::debug!(%peer, %err, "WebSocket upgrade failed"),
            };
            let Ok(parts) = upgraded.downcast::<HttpIo>() else {
                return tracing::error!("upgraded stream is not the served stream");
            };
            let config = self.acceptor.websocket_config();
            let io = parts.io.into_inner();
            // tungstenite sizes the read buffers it allocates later after
            // the allocation of the first one, and `read_buf.to_vec()` of
            // nothing has none: every later socket read would then be of a
            // few bytes, a syscall per frame header (1.5 per 100-byte
            // message). Bytes the client sent before our 101 are rare.
            let socket = if parts.read_buf.is_empty() {
                WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
            } else {
                let mut read =
                    Vec::with_capacity(config.read_buffer_size.max(parts.read_buf.len()));
                read.extend_from_slice(&parts.read_buf);
                WebSocketStream::from_partially_read(io, read, Role::Server, Some(config)).await
            };
            self.acceptor.accept(socket, admitted);
        })
        .detach();
        response.map(|()| Body::default())
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = code;
    response
}

/// Serves one file that [`StaticDir::resolve`] found (read whole: static
/// folders of GUI assets hold small files).
async fn serve_file(path: PathBuf, head_only: bool) -> Response<Body> {
    let Ok(bytes) = smol::fs::read(&path).await else {
        return status(StatusCode::NOT_FOUND);
    };
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    let body = if head_only {
        Bytes::new()
    } else {
        Bytes::from(bytes)
    };
    let mut response = Response::new(Body::from(body));
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// Starts a Juggler server on `host:port` (port `0` picks a free one) and
/// calls `on_connection` with every new connection.
///
/// `on_connection` runs before the connection reads its first frame and
/// must not block; spawn async work from it. The connection closes when the
/// last handle to it is dropped.
///
/// ```no_run
/// use juggler_smol::{listen, ServerOptions};
///
/// # fn main() -> Result<(), juggler_smol::Error> { smol::block_on(async {
/// let server = listen("127.0.0.1", 0, |connection| {
///     smol::spawn(async move {
///         while let Ok(message) = connection.receive().await {
///             let _ = connection.send(&message).await; // echo
///         }
///     }).detach();
/// }, ServerOptions::default()).await?;
/// println!("listening on {}", server.url());
/// server.close().await;
/// # Ok(()) }) }
/// ```
pub async fn listen(
    host: &str,
    port: u16,
    on_connection: impl Fn(Connection) + Send + Sync + 'static,
    options: ServerOptions,
) -> Result<Server, Error> {
    let (tls, static_dir) = load_server_files(&options)?;
    let listener = TcpListener::bind((host, port)).await?;
    let local_addr = listener.local_addr()?;
    let registry = Arc::new(Registry::default());
    let app = Arc::new(App {
        acceptor: Acceptor::new(
            on_connection,
            registry.clone(),
            &options,
            SmolRuntime::shared(),
        ),
        ws_path: options.ws_path.clone(),
        index_path: options.index_path.clone(),
        static_dir,
    });
    let acceptor = tls.map(futures_rustls::TlsAcceptor::from);
    let scheme = if acceptor.is_some() { "wss" } else { "ws" };
    let url = format!("{scheme}://{local_addr}{}", options.ws_path);
    tracing::info!(%url, "juggler server listening");
    let (server, control) = Server::new(local_addr, url, registry, SmolRuntime::shared());
    smol::spawn(accept_loop(
        listener,
        app,
        acceptor,
        options.http_timeouts(),
        control,
    ))
    .detach();
    Ok(server)
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    tls: Option<futures_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
    mut control: AcceptControl,
) {
    // HTTP connections are tasks owned here, so ending the loop cancels
    // them; upgraded WebSocket connections run in tasks of their own.
    let mut http: Vec<Task<()>> = Vec::new();
    loop {
        let accepted = smol::future::or(async { Some(listener.accept().await) }, async {
            control.stopped().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { return };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                http.retain(|task| !task.is_finished());
                http.push(smol::spawn(serve_http(
                    stream,
                    peer,
                    app.clone(),
                    tls.clone(),
                    timeouts,
                )));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(%err, "accept failed");
                smol::Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_http(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    tls: Option<futures_rustls::TlsAcceptor>,
    timeouts: HttpTimeouts,
) {
    let io: Box<dyn Io> = match tls {
        None => Box::new(stream),
        Some(acceptor) => {
            let handshake = async { Some(acceptor.accept(stream).await) };
            let timeout = async {
                smol::Timer::after(timeouts.tls_handshake).await;
                None
            };
            match smol::future::or(handshake, timeout).await {
                Some(Ok(stream)) => Box::new(stream),
                Some(Err(err)) => return tracing::debug!(%peer, %err, "TLS handshake failed"),
                None => return tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    };
    let service = hyper::service::service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(request, peer).await) }
    });
    let result = hyper::server::conn::http1::Builder::new()
        .timer(SmolTimer::new())
        .header_read_timeout(timeouts.header_read)
        .serve_connection(FuturesIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "HTTP connection ended with an error");
    }
}
