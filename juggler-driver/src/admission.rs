//! Who gets a server connection, decided before the `101`: the upgrade
//! request as the application sees it, the client's address behind a
//! proxy, and the application's own admission hook.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, Uri};

/// The HTTP request that opened a server-side connection: what an
/// admission hook decides on, and what [`Connection::upgrade_request`]
/// keeps (the cookies, an auth header, the query).
///
/// [`Connection::upgrade_request`]: crate::Connection::upgrade_request
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UpgradeRequest {
    /// `GET`.
    pub method: Method,
    /// The path and query as the client sent them.
    pub uri: Uri,
    /// Every header, cookies included.
    pub headers: HeaderMap,
    /// The socket's peer: behind a reverse proxy, the proxy.
    pub peer_addr: Option<SocketAddr>,
    /// The certificate chain the client presented in a mutual TLS
    /// handshake, leaf first.
    pub peer_certificates: Option<PeerCertificates>,
    /// The client's address: with
    /// [`ServerOptions::trust_forwarded_headers`](crate::ServerOptions::trust_forwarded_headers),
    /// by the 0.7 reference's `remote` rule ([`forwarded_client`]), else
    /// the peer's IP.
    pub remote: Option<String>,
    /// The request's extensions as the HTTP stack and the application's
    /// own layers left them: the user an axum auth layer resolved, say,
    /// for the admission hook to read or to put in the connection's
    /// context.
    pub extensions: http::Extensions,
}

/// A copy of `headers` that owns its bytes. hyper's parsed header values
/// (and its URI) are slices of the connection's read buffer: a plain
/// clone, kept for the connection's life, would keep that whole buffer
/// (8 KiB or more) alive for every connection.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut owned = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        owned.append(name.clone(), copy);
    }
    owned
}

/// A copy of `uri` that owns its bytes (see [`owned_headers`]).
fn owned_uri(uri: &Uri) -> Uri {
    uri.to_string().parse().unwrap_or_else(|_| uri.clone())
}

impl UpgradeRequest {
    /// The request's parts, with the peer, the client address read from
    /// forwarding headers only if `trust_forwarded` is set.
    pub fn new<B>(
        request: &Request<B>,
        peer_addr: Option<SocketAddr>,
        trust_forwarded: bool,
    ) -> Self {
        let headers = owned_headers(request.headers());
        let forwarded = trust_forwarded
            .then(|| forwarded_client(&headers))
            .flatten();
        UpgradeRequest {
            peer_certificates: request.extensions().get::<PeerCertificates>().cloned(),
            method: request.method().clone(),
            uri: owned_uri(request.uri()),
            remote: forwarded.or_else(|| peer_addr.map(|peer| peer.ip().to_string())),
            headers,
            peer_addr,
            extensions: request.extensions().clone(),
        }
    }

    /// The query string, if the URL had one.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The value of cookie `name`, from the `Cookie` headers: the first
    /// one of that name, percent-decoded, without the double quotes of a
    /// quoted value (parsed by the `cookie` crate; a pair it can't parse
    /// is skipped).
    #[cfg(feature = "server")]
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(cookie::Cookie::split_parse_encoded)
            .filter_map(Result::ok)
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value_trimmed().to_owned())
    }
}

/// The certificate chain a TLS client presented (mutual TLS), leaf first.
/// Runtime crates put it in the extensions of every request of that
/// connection; [`UpgradeRequest`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Arc<[rustls::pki_types::CertificateDer<'static>]>);

impl PeerCertificates {
    /// The chain of a TLS server connection, if the client sent one.
    pub fn of(connection: &rustls::ServerConnection) -> Option<Self> {
        let chain = connection.peer_certificates()?;
        (!chain.is_empty()).then(|| PeerCertificates(chain.iter().cloned().collect()))
    }
}

/// The client address the 0.7 reference reports as `Connection.remote`
/// (SPEC-0.7 §9): the `for` of the last `Forwarded` element if there is
/// one; else, with exactly one `X-Forwarded-For` header, its last entry.
/// Only proxies may send these; a server trusts them only when told to.
pub fn forwarded_client(headers: &HeaderMap) -> Option<String> {
    let last_forwarded = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .last();
    if let Some(element) = last_forwarded {
        return element.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("for")
                .then(|| value.trim().trim_matches('"').to_owned())
        });
    }
    let mut forwarded_for = headers.get_all("x-forwarded-for").iter();
    match (forwarded_for.next(), forwarded_for.next()) {
        (Some(only), None) => only
            .to_str()
            .ok()?
            .rsplit(',')
            .next()
            .map(|entry| entry.trim().to_owned()),
        _ => None,
    }
}

/// What an admission hook decides.
pub enum Admission {
    /// The connection is made; the context, if any, is what
    /// [`Connection::context`](crate::Connection::context) returns (the
    /// authenticated user, say).
    Admit(Option<Arc<dyn Any + Send + Sync>>),
    /// No connection: the client gets this answer instead of the `101`.
    Refuse(Response<String>),
}

impl Admission {
    /// Admits with a typed context.
    pub fn admit_with<T: Any + Send + Sync>(context: T) -> Self {
        Admission::Admit(Some(Arc::new(context)))
    }

    /// Refuses with a status and a text body.
    pub fn refuse(status: http::StatusCode, text: &str) -> Self {
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        Admission::Refuse(response)
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Admission::Admit(context) => f
                .debug_tuple("Admit")
                .field(&context.as_ref().map(|_| ".."))
                .finish(),
            Admission::Refuse(response) => f.debug_tuple("Refuse").field(response).finish(),
        }
    }
}

/// The future an admission hook returns.
pub type AdmissionFuture = Pin<Box<dyn Future<Output = Admission> + Send + 'static>>;

/// An async admission hook: see [`ServerOptions::admission`](crate::ServerOptions::admission).
#[derive(Clone)]
pub struct AdmissionHook(pub(crate) Arc<dyn Fn(&UpgradeRequest) -> AdmissionFuture + Send + Sync>);

impl fmt::Debug for AdmissionHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdmissionHook")
    }
}

/// What a connection keeps of its admission: the request and the context.
#[derive(Clone, Default)]
pub struct Admitted {
    pub(crate) request: Option<Arc<UpgradeRequest>>,
    pub(crate) context: Option<Arc<dyn Any + Send + Sync>>,
    /// permessage-deflate, when the upgrade agreed to it.
    pub(crate) compression: Option<juggler_deflate::Negotiated>,
}

impl fmt::Debug for Admitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admitted")
            .field("request", &self.request)
            .field("context", &self.context.as_ref().map(|_| ".."))
            .field("compression", &self.compression)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn the_kept_request_does_not_hold_the_read_buffer() {
        // As hyper parses: values and path are slices of one read buffer.
        let buffer = Bytes::from(
            b"/ws?x=1 sid=abc; theme=dark secret-token"
                .iter()
                .copied()
                .chain(std::iter::repeat_n(b' ', 8192))
                .collect::<Vec<u8>>(),
        );
        let mut request = Request::builder()
            .uri(Uri::from_maybe_shared(buffer.slice(0..7)).unwrap())
            .body(())
            .unwrap();
        let headers = request.headers_mut();
        headers.append(
            header::COOKIE,
            HeaderValue::from_maybe_shared(buffer.slice(8..27)).unwrap(),
        );
        let mut token = HeaderValue::from_maybe_shared(buffer.slice(28..40)).unwrap();
        token.set_sensitive(true);
        headers.append(header::AUTHORIZATION, token);
        headers.append(
            "x-custom",
            HeaderValue::from_maybe_shared(buffer.slice(8..11)).unwrap(),
        );

        let kept = UpgradeRequest::new(&request, None, false);
        drop(request);
        assert!(
            buffer.is_unique(),
            "the kept request still holds the buffer"
        );
        assert_eq!(kept.uri, "/ws?x=1");
        assert_eq!(kept.query(), Some("x=1"));
        assert_eq!(kept.cookie("theme").as_deref(), Some("dark"));
        assert!(kept.headers[header::AUTHORIZATION].is_sensitive());
        assert_eq!(kept.headers["x-custom"], "sid");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_reference_remote_rule() {
        for (pairs, expected) in [
            (vec![], None),
            (vec![("x-forwarded-for", "1.2.3.4")], Some("1.2.3.4")),
            (
                vec![("x-forwarded-for", "1.2.3.4, 5.6.7.8 ")],
                Some("5.6.7.8"),
            ),
            (
                vec![
                    ("x-forwarded-for", "1.2.3.4"),
                    ("x-forwarded-for", "5.6.7.8"),
                ],
                None,
            ),
            (
                vec![
                    (
                        "forwarded",
                        "for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\"",
                    ),
                    ("x-forwarded-for", "1.2.3.4"),
                ],
                Some("[2001:db8::1]:4711"),
            ),
            (
                vec![("forwarded", "proto=https;For=198.51.100.17")],
                Some("198.51.100.17"),
            ),
            (
                vec![("forwarded", "for=a"), ("forwarded", "for=b")],
                Some("b"),
            ),
            (vec![("forwarded", "proto=https")], None),
        ] {
            assert_eq!(
                forwarded_client(&headers(&pairs)).as_deref(),
                expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn remote_is_the_peer_unless_forwarding_is_trusted() {
        let request = Request::builder()
            .uri("/ws?room=7")
            .header("x-forwarded-for", "203.0.113.9")
            .header("cookie", "a=1; session=s3cret")
            .body(())
            .unwrap();
        let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let untrusted = UpgradeRequest::new(&request, Some(peer), false);
        assert_eq!(untrusted.remote.as_deref(), Some("10.0.0.2"));
        let trusted = UpgradeRequest::new(&request, Some(peer), true);
        assert_eq!(trusted.remote.as_deref(), Some("203.0.113.9"));
        assert_eq!(trusted.query(), Some("room=7"));
        assert_eq!(trusted.cookie("session").as_deref(), Some("s3cret"));
        assert_eq!(trusted.cookie("missing"), None);
    }

    #[test]
    fn cookies_are_decoded_and_unquoted() {
        let request = Request::builder()
            .header("cookie", "a=1; name=\"J%C3%BCrgen%20K\"; broken")
            .header("cookie", "a=2")
            .body(())
            .unwrap();
        let kept = UpgradeRequest::new(&request, None, false);
        assert_eq!(kept.cookie("name").as_deref(), Some("Jürgen K"));
        assert_eq!(kept.cookie("a").as_deref(), Some("1"));
        assert_eq!(kept.cookie("broken"), None);
    }

    #[test]
    fn extensions_are_kept() {
        #[derive(Debug, Clone, PartialEq)]
        struct User(&'static str);
        let mut request = Request::builder().body(()).unwrap();
        request.extensions_mut().insert(User("alice"));
        let kept = UpgradeRequest::new(&request, None, false);
        assert_eq!(kept.extensions.get::<User>(), Some(&User("alice")));
    }
}
