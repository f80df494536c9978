//! Client plumbing shared by the runtimes: address parsing, TLS, handshake.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::{start, Connection, ConnectionOptions, Error, Io, Runtime};

/// Settings of [`connect`](https://docs.rs/juggler-tokio)-style clients.
///
/// ```
/// use std::time::Duration;
/// use juggler_driver::ClientOptions;
///
/// let options = ClientOptions::default().autoflush_delay(None); // manual flush
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Settings of the connection.
    pub connection: ConnectionOptions,
    /// The TLS client configuration for `wss://`; `None` trusts the
    /// webpki (Mozilla) root certificates.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Headers added to the upgrade request: an auth token, a cookie.
    pub headers: http::HeaderMap,
    /// How long TCP, TLS and the WebSocket handshake may take together;
    /// `None` waits as long as the system does. Default 10 s.
    pub connect_timeout: Option<std::time::Duration>,
    /// permessage-deflate (RFC 7692), for 0.5 and 0.6/0.7 clients alike:
    /// off by default, as hat-juggler's client has it; with it on
    /// ([`Compression::default`](crate::Compression::default), say) the
    /// upgrade request offers it and the server's answer decides.
    pub compression: crate::Compression,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connection: ConnectionOptions::default(),
            tls: None,
            headers: http::HeaderMap::new(),
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            compression: crate::Compression::disabled(),
        }
    }
}

impl ClientOptions {
    /// Adds HTTP basic auth to the upgrade request, as the reference
    /// client's `auth=`: `user:password` encoded as latin-1 (aiohttp's
    /// `BasicAuth`), then base64. Fails with [`Error::Config`] when either
    /// has a character latin-1 lacks, or the user a `:`.
    ///
    /// ```
    /// use juggler_driver::ClientOptions;
    ///
    /// let options = ClientOptions::default().basic_auth("user", "pé").unwrap();
    /// assert_eq!(options.headers["authorization"], "Basic dXNlcjpw6Q==");
    /// assert!(ClientOptions::default().basic_auth("user", "€").is_err());
    /// ```
    pub fn basic_auth(mut self, user: &str, password: &str) -> Result<Self, Error> {
        use base64::Engine as _;
        if user.contains(':') {
            return Err(Error::Config("a basic auth user has no ':'".into()));
        }
        let latin1: Vec<u8> = user
            .chars()
            .chain(std::iter::once(':'))
            .chain(password.chars())
            .map(|c| u8::try_from(u32::from(c)))
            .collect::<Result<_, _>>()
            .map_err(|_| Error::Config("basic auth credentials must be latin-1 text".into()))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(latin1);
        let mut value = http::HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| Error::Config("basic auth credentials do not fit a header".into()))?;
        value.set_sensitive(true);
        self.headers.insert(http::header::AUTHORIZATION, value);
        Ok(self)
    }

    /// Adds a header to the upgrade request.
    ///
    /// ```
    /// use juggler_driver::http::{header, HeaderValue};
    /// use juggler_driver::ClientOptions;
    ///
    /// let options = ClientOptions::default()
    ///     .header(header::AUTHORIZATION, HeaderValue::from_static("Bearer t0ken"));
    /// ```
    #[must_use]
    pub fn header(mut self, name: http::header::HeaderName, value: http::HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the permessage-deflate options; `Compression::default()`
    /// offers it.
    #[must_use]
    pub fn compression(mut self, compression: crate::Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Sets the connect timeout (`None`: none).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the autoflush delay the reference way (see
    /// [`ConnectionOptions::autoflush_delay`]).
    #[must_use]
    pub fn autoflush_delay(mut self, delay: Option<std::time::Duration>) -> Self {
        self.connection = self.connection.autoflush_delay(delay);
        self
    }

    /// Sets the connection options.
    #[must_use]
    pub fn connection(mut self, options: ConnectionOptions) -> Self {
        self.connection = options;
        self
    }

    /// Uses this TLS configuration for `wss://`.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Trusts the platform's root certificates (the system's CA bundle,
    /// as `rustls-native-certs` finds it) instead of the webpki roots built
    /// into this crate: for networks whose proxies or private CAs the
    /// operating system trusts. Fails with [`Error::Tls`] when the platform
    /// has none.
    pub fn platform_roots(mut self) -> Result<Self, Error> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        let (added, _unusable) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map_or("none found".to_owned(), ToString::to_string);
            return Err(Error::Tls(format!("no platform root certificates: {why}")));
        }
        self.tls = Some(Arc::new(client_config(roots)?));
        Ok(self)
    }

    /// Trusts the certificates in a PEM file (a private CA, or a
    /// self-signed server certificate) in addition to the webpki roots.
    pub fn trust_pem_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = std::fs::read(path.as_ref())?;
        self.trust_pem(&pem)
    }

    /// Trusts the certificates in PEM text in addition to the webpki roots.
    pub fn trust_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let mut roots = default_roots();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|err| Error::Tls(format!("bad certificate PEM: {err}")))?;
            roots
                .add(cert)
                .map_err(|err| Error::Tls(format!("unusable certificate: {err}")))?;
            added += 1;
        }
        if added == 0 {
            return Err(Error::Tls("no certificate in PEM".into()));
        }
        self.tls = Some(Arc::new(client_config(roots)?));
        Ok(self)
    }
}

fn default_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn client_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, Error> {
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::crypto_provider()?)
            .with_safe_default_protocol_versions()
            .map_err(|err| Error::Tls(format!("crypto provider: {err}")))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Where a `ws://` or `wss://` address points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (80 and 443 when the URL names none).
    pub port: u16,
    /// Whether the scheme is `wss`.
    pub tls: bool,
    address: String,
}

impl Target {
    /// Parses a `ws://` or `wss://` URL.
    pub fn parse(address: &str) -> Result<Target, Error> {
        let request = address
            .into_client_request()
            .map_err(|err| Error::InvalidAddress(format!("{address}: {err}")))?;
        let uri = request.uri();
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(Error::InvalidAddress(format!(
                    "{address}: scheme must be ws or wss"
                )))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::InvalidAddress(format!("{address}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            host,
            port,
            tls,
            address: address.to_owned(),
        })
    }
}

/// Connects to a `ws://` or `wss://` address on `runtime`: TCP, TLS when the
/// scheme is `wss`, the WebSocket handshake, then the driver. The runtime
/// crates' `connect_with` is this with their runtime.
pub async fn connect(
    address: &str,
    options: ClientOptions,
    runtime: Arc<dyn Runtime>,
) -> Result<Connection, Error> {
    let target = Target::parse(address)?;
    let attempt = async {
        let (stream, peer_addr) = runtime
            .connect_tcp(target.host.clone(), target.port)
            .await?;
        handshake(stream, &target, Some(peer_addr), &options, runtime.clone()).await
    };
    within_connect_timeout(&*runtime, options.connect_timeout, attempt).await
}

/// `attempt`, or [`Error::ConnectTimeout`] once `limit` (if any) passes.
pub(crate) async fn within_connect_timeout<T>(
    runtime: &dyn Runtime,
    limit: Option<std::time::Duration>,
    attempt: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(limit) = limit else {
        return attempt.await;
    };
    let timer = runtime.sleep_until(runtime.now() + limit);
    match futures_util::future::select(std::pin::pin!(attempt), timer).await {
        futures_util::future::Either::Left((outcome, _)) => outcome,
        futures_util::future::Either::Right(_) => Err(Error::ConnectTimeout(limit)),
    }
}

/// Finishes a client connection over an open TCP stream: TLS when the
/// target is `wss`, the WebSocket handshake, then the driver on `runtime`.
pub async fn handshake<S: Io>(
    stream: S,
    target: &Target,
    peer_addr: Option<SocketAddr>,
    options: &ClientOptions,
    runtime: Arc<dyn Runtime>,
) -> Result<Connection, Error> {
    let stream = wrap_tls(stream, target, options).await?;
    let config = options.connection.websocket_config();
    let mut request = target
        .address
        .as_str()
        .into_client_request()
        .map_err(Error::websocket)?;
    for (name, value) in &options.headers {
        request.headers_mut().append(name, value.clone());
    }
    let socket =
        crate::compression::client_upgrade(request, stream, config, &options.compression).await?;
    let connection = start(socket, options.connection.clone(), peer_addr, runtime);
    if let Ok(uri) = target.address.parse::<http::Uri>() {
        connection
            .span()
            .record("path", tracing::field::display(uri.path()));
    }
    tracing::debug!(parent: connection.span(), address = %target.address, "juggler client connected");
    Ok(connection)
}

/// The stream, in TLS when the target is `wss`.
pub(crate) async fn wrap_tls<S: Io>(
    stream: S,
    target: &Target,
    options: &ClientOptions,
) -> Result<Box<dyn Io>, Error> {
    if !target.tls {
        return Ok(Box::new(stream));
    }
    let config = match &options.tls {
        Some(config) => config.clone(),
        None => Arc::new(client_config(default_roots())?),
    };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|err| Error::InvalidAddress(format!("{}: {err}", target.host)))?;
    let tls = futures_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    Ok(Box::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_and_wss_addresses() {
        let target = Target::parse("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.tls),
            ("127.0.0.1", 8080, false)
        );
        let target = Target::parse("wss://example.com/ws").unwrap();
        assert_eq!(
            (target.host.as_str(), target.port, target.tls),
            ("example.com", 443, true)
        );
        let target = Target::parse("ws://[::1]/ws").unwrap();
        assert_eq!((target.host.as_str(), target.port), ("::1", 80));
    }

    #[test]
    fn rejects_other_addresses() {
        for address in ["http://host/ws", "host:1/ws", "", "ws://"] {
            assert!(
                matches!(Target::parse(address), Err(Error::InvalidAddress(_))),
                "{address}"
            );
        }
    }

    #[test]
    fn trusting_garbage_pem_fails() {
        assert!(matches!(
            ClientOptions::default().trust_pem(b"nope"),
            Err(Error::Tls(_))
        ));
    }
}
