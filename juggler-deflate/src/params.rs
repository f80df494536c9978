//! Negotiation: the `Sec-WebSocket-Extensions` offer and answer
//! (RFC 7692 §5 and §7.1).

use thiserror::Error;

/// The extension token.
pub const EXTENSION: &str = "permessage-deflate";

/// What one side is willing to do; the options of the layer.
///
/// By default our compressor keeps no context between messages (a server
/// answers `server_no_context_takeover`, which RFC 7692 §7.1.1.1 allows
/// unasked; a client offers `client_no_context_takeover`), so it holds no
/// memory between messages and a shared payload compresses to the same
/// bytes on every connection. [`context_takeover`](Self::context_takeover)
/// trades that for smaller streams of small messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Whether to negotiate at all. Default: `true` (a server answers a
    /// client's offer, as aiohttp's `compress=True` does); clients of
    /// juggler-rs turn it on with their own option.
    pub enabled: bool,
    /// Messages with fewer payload bytes than this go uncompressed (RSV1
    /// clear). Default 64. A message that would not shrink goes
    /// uncompressed too.
    pub threshold: usize,
    /// The LZ77 window of our compressor, 2^bits bytes, 9 to 15. Default
    /// 15. A peer's request for fewer (`server_max_window_bits` offered to
    /// a server, `client_max_window_bits` answered to a client) lowers it.
    pub window_bits: u8,
    /// The deflate level, 1 to 9. Default 6, as zlib's.
    pub level: u8,
    /// Whether the peer may keep its compression context between messages.
    /// Default `false`: a server answers `client_no_context_takeover` and a
    /// client offers `server_no_context_takeover`, so no inflater stays
    /// allocated between messages (one costs 42 KiB). With `true`
    /// the peer's messages may be smaller, and each connection holds an
    /// inflater from its first compressed message on.
    pub peer_context_takeover: bool,
    /// Whether our compressor may keep its context between messages, when
    /// the peer allows it. Default `false`. With `true`, a stream of small
    /// similar messages (one-key patches) compresses several times
    /// better, at the cost of a compressor held by each connection from
    /// its first compressed message on (271 KiB), and of
    /// compressing a shared change once per connection.
    pub context_takeover: bool,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            enabled: true,
            threshold: 64,
            window_bits: 15,
            level: 6,
            peer_context_takeover: false,
            context_takeover: false,
        }
    }
}

impl Compression {
    /// Compression switched off: no offer, no answer.
    pub fn disabled() -> Self {
        Compression {
            enabled: false,
            ..Compression::default()
        }
    }

    fn own_window_bits(&self) -> u8 {
        self.window_bits.clamp(9, 15)
    }

    /// A server's answer to the values of the request's
    /// `Sec-WebSocket-Extensions` headers: the first permessage-deflate
    /// offer we can accept, the header value to answer with, and what was
    /// agreed. `None`: answer nothing, no compression.
    pub fn answer_offers<'a>(
        &self,
        header_values: impl IntoIterator<Item = &'a str>,
    ) -> Option<(Negotiated, String)> {
        if !self.enabled {
            return None;
        }
        for value in header_values {
            for extension in split_outside_quotes(value, ',') {
                let Ok((name, params)) = parse_extension(extension) else {
                    continue;
                };
                if name.eq_ignore_ascii_case(EXTENSION) {
                    if let Some(agreed) = self.accept_offer(&params) {
                        return Some(agreed);
                    }
                }
            }
        }
        None
    }

    fn accept_offer(&self, params: &[(String, Option<String>)]) -> Option<(Negotiated, String)> {
        let mut own_bits = self.own_window_bits();
        let mut peer_no_takeover = !self.peer_context_takeover;
        let mut own_takeover = self.context_takeover;
        let mut seen = Vec::new();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return None;
            }
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => own_takeover = false,
                ("client_no_context_takeover", None) => peer_no_takeover = true,
                ("server_max_window_bits", Some(value)) => {
                    own_bits = own_bits.min(window_bits(value)?)
                }
                ("client_max_window_bits", None) => {}
                ("client_max_window_bits", Some(value)) => {
                    window_bits(value)?;
                }
                _ => return None,
            }
            seen.push(name);
        }
        let mut answer = EXTENSION.to_owned();
        if !own_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if peer_no_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if own_bits < 15 {
            answer.push_str(&format!("; server_max_window_bits={own_bits}"));
        }
        Some((
            Negotiated {
                own_window_bits: own_bits,
                own_context_takeover: own_takeover,
                peer_context_takeover: !peer_no_takeover,
                threshold: self.threshold,
                level: self.level.clamp(1, 9),
            },
            answer,
        ))
    }

    /// A client's offer, the value of its `Sec-WebSocket-Extensions`
    /// header; `None` when disabled.
    pub fn offer(&self) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let mut offer = EXTENSION.to_owned();
        if !self.context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        offer.push_str("; client_max_window_bits");
        if !self.peer_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        Some(offer)
    }

    /// A client's reading of the server's answer (the values of the
    /// response's `Sec-WebSocket-Extensions` headers) to [`offer`](Self::offer):
    /// `Ok(None)` when the server declined, an error when the answer
    /// breaks RFC 7692 (the client must then fail the connection).
    pub fn read_answer<'a>(
        &self,
        header_values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<Negotiated>, NegotiationError> {
        let mut agreed = None;
        for value in header_values {
            for extension in split_outside_quotes(value, ',') {
                if extension.trim().is_empty() {
                    continue;
                }
                let (name, params) = parse_extension(extension)?;
                if !self.enabled || !name.eq_ignore_ascii_case(EXTENSION) {
                    return Err(NegotiationError::Unexpected(name));
                }
                if agreed.is_some() {
                    return Err(NegotiationError::Unexpected(name));
                }
                agreed = Some(self.accept_answer(&params)?);
            }
        }
        Ok(agreed)
    }

    fn accept_answer(
        &self,
        params: &[(String, Option<String>)],
    ) -> Result<Negotiated, NegotiationError> {
        let mut own_bits = self.own_window_bits();
        let mut server_no_takeover = false;
        let mut own_takeover = self.context_takeover;
        let mut seen = Vec::new();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return Err(NegotiationError::BadParameter(name));
            }
            let bad = || NegotiationError::BadParameter(name.clone());
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => server_no_takeover = true,
                ("client_no_context_takeover", None) => own_takeover = false,
                ("server_max_window_bits", Some(value)) => {
                    window_bits(value).ok_or_else(bad)?;
                }
                ("client_max_window_bits", Some(value)) => {
                    own_bits = own_bits.min(window_bits(value).ok_or_else(bad)?);
                }
                _ => return Err(bad()),
            }
            seen.push(name);
        }
        if !self.peer_context_takeover && !server_no_takeover {
            return Err(NegotiationError::BadParameter(
                "server_no_context_takeover missing".into(),
            ));
        }
        Ok(Negotiated {
            own_window_bits: own_bits,
            own_context_takeover: own_takeover,
            peer_context_takeover: !server_no_takeover,
            threshold: self.threshold,
            level: self.level.clamp(1, 9),
        })
    }
}

/// What both sides agreed to, from our side's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The window of our compressor, 2^bits bytes (9 to 15).
    pub own_window_bits: u8,
    /// Whether our compressor keeps its context between messages.
    pub own_context_takeover: bool,
    /// Whether the peer may refer to earlier messages: our inflater is
    /// kept between messages.
    pub peer_context_takeover: bool,
    /// Messages with fewer payload bytes go uncompressed.
    pub threshold: usize,
    /// The deflate level, 1 to 9.
    pub level: u8,
}

impl Negotiated {
    /// Every parameter set the transform supports (for tests).
    pub fn all() -> impl Iterator<Item = Negotiated> {
        (9..=15u8).flat_map(|bits| {
            [(false, false), (false, true), (true, false), (true, true)]
                .into_iter()
                .map(move |(own, peer)| Negotiated {
                    own_window_bits: bits,
                    own_context_takeover: own,
                    peer_context_takeover: peer,
                    threshold: 0,
                    level: 6,
                })
        })
    }
}

/// A server's answer a client cannot accept (RFC 7692 §7.1: the client
/// fails the connection).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NegotiationError {
    /// An extension that was not offered, or a second one.
    #[error("extension not offered: {0}")]
    Unexpected(String),
    /// A parameter that is unknown, repeated, out of range or missing.
    #[error("bad permessage-deflate parameter in the answer: {0}")]
    BadParameter(String),
    /// The header is not the extension grammar of RFC 6455 §9.1.
    #[error("malformed Sec-WebSocket-Extensions header")]
    Malformed,
}

fn window_bits(value: &str) -> Option<u8> {
    // RFC 7692 §7.1.2: 1*DIGIT, no leading zero, 8 to 15.
    if value.is_empty() || value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    // 8 is legal, but zlib refuses a raw stream of 8 bits; we treat an
    // offer of 8 as 9, which is what zlib itself does for zlib streams.
    (8..=15).contains(&bits).then_some(bits.max(9))
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..index]);
            start = index + 1;
        }
    }
    parts.push(&text[start..]);
    parts
}

type Params = Vec<(String, Option<String>)>;

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn parse_extension(text: &str) -> Result<(String, Params), NegotiationError> {
    let mut parts = split_outside_quotes(text, ';').into_iter();
    let name = parts.next().unwrap_or("").trim();
    if !is_token(name) {
        return Err(NegotiationError::Malformed);
    }
    let mut params = Vec::new();
    for part in parts {
        let (key, value) = match part.split_once('=') {
            Some((key, value)) => {
                let value = value.trim();
                let value = match value.strip_prefix('"') {
                    Some(rest) => rest.strip_suffix('"').ok_or(NegotiationError::Malformed)?,
                    None => value,
                };
                if !is_token(value) {
                    return Err(NegotiationError::Malformed);
                }
                (key.trim(), Some(value.to_owned()))
            }
            None => (part.trim(), None),
        };
        if !is_token(key) {
            return Err(NegotiationError::Malformed);
        }
        params.push((key.to_owned(), value));
    }
    Ok((name.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_answers_a_browser_offer_without_context_takeover() {
        let (agreed, answer) = Compression::default()
            .answer_offers(["permessage-deflate; client_max_window_bits"])
            .unwrap();
        assert_eq!(
            answer,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(agreed.own_window_bits, 15);
        assert!(!agreed.peer_context_takeover);
    }

    #[test]
    fn server_lowers_its_window_when_asked_and_declines_bad_offers() {
        let (agreed, answer) = Compression::default()
            .answer_offers(["x-foo, permessage-deflate; server_max_window_bits=10; foo, permessage-deflate; server_max_window_bits=\"10\""])
            .unwrap();
        assert_eq!(agreed.own_window_bits, 10);
        assert!(answer.ends_with("server_max_window_bits=10"), "{answer}");
        for bad in [
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; client_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(Compression::default().answer_offers([bad]), None, "{bad}");
        }
        assert_eq!(
            Compression::disabled().answer_offers(["permessage-deflate"]),
            None
        );
    }

    #[test]
    fn server_keeps_the_peers_context_only_when_configured() {
        let options = Compression {
            peer_context_takeover: true,
            ..Compression::default()
        };
        let (agreed, answer) = options.answer_offers(["permessage-deflate"]).unwrap();
        assert!(agreed.peer_context_takeover);
        assert_eq!(answer, "permessage-deflate; server_no_context_takeover");
        let (agreed, _) = options
            .answer_offers(["permessage-deflate; client_no_context_takeover"])
            .unwrap();
        assert!(!agreed.peer_context_takeover);
    }

    #[test]
    fn our_context_takeover_only_when_configured_and_allowed() {
        let keeping = Compression {
            context_takeover: true,
            ..Compression::default()
        };
        let (agreed, answer) = keeping.answer_offers(["permessage-deflate"]).unwrap();
        assert!(agreed.own_context_takeover);
        assert_eq!(answer, "permessage-deflate; client_no_context_takeover");
        let (agreed, answer) = keeping
            .answer_offers(["permessage-deflate; server_no_context_takeover"])
            .unwrap();
        assert!(!agreed.own_context_takeover);
        assert!(answer.contains("server_no_context_takeover"));
        let (agreed, _) = Compression::default()
            .answer_offers(["permessage-deflate"])
            .unwrap();
        assert!(!agreed.own_context_takeover);
        // A client.
        let offer = keeping.offer().unwrap();
        assert!(!offer.contains("client_no_context_takeover"), "{offer}");
        let agreed = keeping
            .read_answer(["permessage-deflate; server_no_context_takeover"])
            .unwrap()
            .unwrap();
        assert!(agreed.own_context_takeover);
        let agreed = keeping
            .read_answer([
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            ])
            .unwrap()
            .unwrap();
        assert!(!agreed.own_context_takeover);
    }

    #[test]
    fn client_reads_answers() {
        let options = Compression::default();
        assert!(options
            .offer()
            .unwrap()
            .contains("server_no_context_takeover"));
        let agreed = options
            .read_answer([
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=11",
            ])
            .unwrap()
            .unwrap();
        assert_eq!(agreed.own_window_bits, 11);
        assert_eq!(options.read_answer([]).unwrap(), None);
        for bad in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; bogus",
            "x-other",
            "permessage-deflate; server_no_context_takeover, permessage-deflate; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=7",
        ] {
            assert!(options.read_answer([bad]).is_err(), "{bad}");
        }
    }
}
