//! [`OriginPolicy`]: which web pages may open the WebSocket.

use http::{header, HeaderMap};

/// Which web pages may open the WebSocket: the check of a browser's
/// `Origin` header against cross-site WebSocket hijacking.
///
/// A browser lets any page open a WebSocket to any server, with the
/// user's cookies, and tells the server only the page's origin. Without a
/// check, any page an operator has open could read the state or call the
/// actions of a back end on their network. So the default admits only
/// pages of the server's own host and port, as Phoenix and Django Channels
/// do by default. Requests without `Origin` (the Python and Rust clients,
/// other non-browser programs) are always admitted: `Origin` protects a
/// browser's user, and a program that is not a browser can send any
/// `Origin` it likes anyway.
///
/// ```
/// use juggler_driver::{OriginPolicy, ServerOptions};
///
/// let options = ServerOptions::default().origin_policy(OriginPolicy::AllowList(vec![
///     "https://gui.example.com".into(),
/// ]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OriginPolicy {
    /// Only pages whose origin's host and port are the request's `Host`.
    /// Others get `403 Forbidden`. The default.
    #[default]
    SameHost,
    /// The server's own host, and pages of these origins
    /// (`scheme://host[:port]`; host case and default ports do not matter).
    AllowList(Vec<String>),
    /// Any page. Only for servers with nothing a third-party page must not
    /// read or do.
    Any,
}

/// A host and port, the part of an origin the policy compares.
#[derive(Debug, PartialEq, Eq)]
struct Site {
    host: String,
    port: u16,
}

impl Site {
    /// The site of an origin (`scheme://host[:port]`); `None` for `null`
    /// and anything else that is not a web origin.
    fn of_origin(origin: &str) -> Option<Site> {
        let uri: http::Uri = origin.parse().ok()?;
        let default_port = default_port(uri.scheme_str()?)?;
        Some(Site {
            host: uri.host()?.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(default_port),
        })
    }

    /// The site of a `Host` header, its port defaulting to `default_port`.
    fn of_host(host: &str, default_port: u16) -> Option<Site> {
        let authority: http::uri::Authority = host.parse().ok()?;
        Some(Site {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl OriginPolicy {
    /// Whether a request with these headers may open the WebSocket.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return true;
        };
        if *self == OriginPolicy::Any {
            return true;
        }
        let Some(site) = origin.to_str().ok().and_then(Site::of_origin) else {
            return false;
        };
        let origin_port = site.port;
        let same_host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| Site::of_host(host, origin_port))
            .is_some_and(|host| host == site);
        same_host
            || match self {
                OriginPolicy::AllowList(allowed) => allowed
                    .iter()
                    .any(|allowed| Site::of_origin(allowed).is_some_and(|a| a == site)),
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn the_default_origin_policy_admits_the_same_host_and_non_browsers() {
        let policy = OriginPolicy::default();
        for (origin, host, admitted) in [
            (None, "127.0.0.1:8080", true),
            (Some("http://127.0.0.1:8080"), "127.0.0.1:8080", true),
            (Some("HTTP://LOCALHOST:8080"), "localhost:8080", true),
            (Some("http://gui.example"), "gui.example", true),
            (Some("https://gui.example"), "gui.example", true),
            (Some("http://gui.example:80"), "gui.example", true),
            (Some("http://[::1]:9"), "[::1]:9", true),
            (Some("http://evil.example"), "127.0.0.1:8080", false),
            (Some("http://127.0.0.1:8081"), "127.0.0.1:8080", false),
            (Some("http://127.0.0.1"), "127.0.0.1:8080", false),
            (Some("null"), "127.0.0.1:8080", false),
            (Some("file://"), "127.0.0.1:8080", false),
            (Some("not a url"), "127.0.0.1:8080", false),
        ] {
            assert_eq!(
                policy.admits(&with(origin, host)),
                admitted,
                "{origin:?} to {host}"
            );
        }
    }

    #[test]
    fn allow_lists_and_any() {
        let list = OriginPolicy::AllowList(vec!["https://GUI.example".into()]);
        assert!(list.admits(&with(Some("https://gui.example:443"), "api.example")));
        assert!(!list.admits(&with(Some("http://gui.example"), "api.example")));
        assert!(list.admits(&with(Some("http://api.example"), "api.example")));
        assert!(!list.admits(&with(Some("https://evil.example"), "api.example")));
        assert!(OriginPolicy::Any.admits(&with(Some("https://evil.example"), "api.example")));
        assert!(OriginPolicy::Any.admits(&with(Some("null"), "api.example")));
    }
}
