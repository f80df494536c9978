//! The WebSocket upgrade (RFC 6455 §4.2.1): the check of a request, the
//! `101` answer, and the answers to requests that are refused.

use async_tungstenite::tungstenite::handshake::derive_accept_key;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

/// Why [`Acceptor::check`](super::Acceptor::check) or
/// [`Acceptor::decide`](super::Acceptor::decide) refused an upgrade
/// request.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// Not a WebSocket upgrade we accept: 400 or 426.
    Upgrade(UpgradeRejection),
    /// The origin policy does not admit the page: 403.
    Origin,
    /// `max_connections` are open: 503.
    Full,
    /// The application's admission hook refused, with this answer.
    Application(Box<Response<String>>),
}

impl Refusal {
    /// The HTTP answer to the refused request.
    pub fn response(self) -> Response<String> {
        let (status, text) = match self {
            Refusal::Upgrade(rejection) => return rejection.response(),
            Refusal::Application(response) => return *response,
            Refusal::Origin => (StatusCode::FORBIDDEN, "origin not allowed\n"),
            Refusal::Full => (StatusCode::SERVICE_UNAVAILABLE, "too many connections\n"),
        };
        let mut response = Response::new(text.to_owned());
        *response.status_mut() = status;
        response
    }
}

/// Why a request to the WebSocket path is not an upgrade we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRejection {
    /// Not a GET with `Connection: upgrade`, `Upgrade: websocket` and a key.
    NotWebSocket,
    /// A WebSocket version other than 13.
    UnsupportedVersion,
}

impl UpgradeRejection {
    /// The HTTP answer to the rejected request.
    pub fn response(self) -> Response<String> {
        let mut response = Response::new(String::new());
        match self {
            UpgradeRejection::NotWebSocket => {
                *response.status_mut() = StatusCode::BAD_REQUEST;
                *response.body_mut() = "expected a WebSocket upgrade request\n".into();
            }
            UpgradeRejection::UnsupportedVersion => {
                *response.status_mut() = StatusCode::UPGRADE_REQUIRED;
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
        }
        response
    }
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .map(|text| {
                text.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
            .unwrap_or(false)
    })
}

/// Checks a WebSocket upgrade request (RFC 6455 §4.2.1) and builds the
/// `101 Switching Protocols` answer.
pub fn upgrade_response<B>(request: &Request<B>) -> Result<Response<()>, UpgradeRejection> {
    let headers = request.headers();
    if request.method() != Method::GET
        || !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(UpgradeRejection::NotWebSocket);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(UpgradeRejection::UnsupportedVersion);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(UpgradeRejection::NotWebSocket)?;
    let accept = derive_accept_key(key.as_bytes());
    let response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(())
        .expect("static header names and an ASCII accept key are valid");
    Ok(response)
}

/// The `302 Found` answer to `GET /`.
pub fn index_redirect(index_path: &str) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::FOUND;
    if let Ok(location) = HeaderValue::from_str(index_path) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method("GET").uri("/ws");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn accepts_a_websocket_upgrade_with_the_rfc_accept_key() {
        let response = upgrade_response(&request(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]))
        .unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        // The example of RFC 6455 §1.3.
        assert_eq!(
            response.headers()[header::SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rejects_plain_requests_and_other_versions() {
        assert_eq!(
            upgrade_response(&request(&[])).unwrap_err(),
            UpgradeRejection::NotWebSocket
        );
        let old = request(&[
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-version", "8"),
            ("sec-websocket-key", "x"),
        ]);
        assert_eq!(
            upgrade_response(&old).unwrap_err(),
            UpgradeRejection::UnsupportedVersion
        );
        assert_eq!(
            UpgradeRejection::NotWebSocket.response().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
