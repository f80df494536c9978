//! HTTP basic auth against an htpasswd file, as hat-juggler 0.7's
//! `htpasswd_file` (SPEC-0.7 §9), plus the bcrypt hashes Apache's
//! `htpasswd` writes by default.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{Error, Runtime};

/// The users of an htpasswd file, read once, and the check of a request's
/// `Authorization` header against them.
///
/// Lines are `user:hash`, stripped, blank ones skipped. Hashes are `$apr1$`
/// (Apache MD5, the reference's only one) or bcrypt `$2y$`/`$2b$`/`$2a$`;
/// any other makes loading fail, as a line without `:` does. The header is
/// decoded as the reference does: scheme `basic` in any case, strict
/// base64, the bytes read as latin-1 and split at the first `:`; the
/// password is hashed as UTF-8 of that text.
#[derive(Clone)]
pub struct Htpasswd {
    users: Arc<HashMap<String, String>>,
    /// A digest of each password already checked good, so that a bcrypt
    /// check runs once per user and password, not per request. Digests,
    /// keyed by [`Htpasswd::key`], not the passwords: memory holds no
    /// password a dump could read back.
    verified: Arc<Mutex<HashMap<String, [u8; 32]>>>,
    /// A random key of this process's, mixed into every digest.
    key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Htpasswd")
            .field("users", &self.users.len())
            .finish()
    }
}

/// The answer to a request that fails the check: 401 with the reference's
/// empty realm.
pub fn unauthorized() -> Response<String> {
    let mut response = Response::new("401: Unauthorized\n".to_owned());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"\""),
    );
    response
}

impl Htpasswd {
    /// Reads an htpasswd file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text).map_err(|why| Error::Config(format!("{}: {why}", path.display())))
    }

    /// Parses htpasswd text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = HashMap::new();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| format!("a line without ':': {line:?}"))?;
            if !(is_apr1(hash) || is_bcrypt(hash)) {
                return Err(format!(
                    "user {user:?}: unsupported password encoding (only $apr1$ and bcrypt)"
                ));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(Htpasswd {
            users: Arc::new(users),
            verified: Arc::default(),
            key: Arc::new(random_key()?),
        })
    }

    /// Whether the request's `Authorization` header names a user with the
    /// right password. A bcrypt check, slow on purpose, runs on `runtime`'s
    /// blocking threads.
    pub async fn check(&self, headers: &HeaderMap, runtime: &dyn Runtime) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let Some(hash) = self.users.get(&user).cloned() else {
            return false;
        };
        let digest = self.digest(&user, &password);
        if self
            .verified()
            .get(&user)
            .is_some_and(|verified| bool::from(verified.ct_eq(&digest)))
        {
            return true;
        }
        let good = if is_bcrypt(&hash) {
            let password = password.clone();
            crate::runtime::unblock(runtime, move || bcrypt::verify(password.as_bytes(), &hash))
                .await
                .is_some_and(|verified| verified.unwrap_or(false))
        } else {
            verify_apr1(password.as_bytes(), &hash)
        };
        if good {
            self.verified().insert(user, digest);
        }
        good
    }

    /// What the cache keeps of a good password: SHA-256 of the process
    /// key, the user and the password.
    fn digest(&self, user: &str, password: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(&self.key[..]);
        hasher.update((user.len() as u64).to_be_bytes());
        hasher.update(user.as_bytes());
        hasher.update(password.as_bytes());
        hasher.finalize().into()
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 32]>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn is_apr1(hash: &str) -> bool {
    hash.starts_with("$apr1$")
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2b$", "$2a$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// The user and password of a basic `Authorization` header, decoded as
/// the reference does (latin-1).
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|byte| *byte == b' ')?;
    let (scheme, encoded) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded[1..].trim_ascii())
        .ok()?;
    let text: String = decoded.iter().map(|byte| char::from(*byte)).collect();
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Whether `password` hashes to `hash`, an `$apr1$salt$digest`.
fn verify_apr1(password: &[u8], hash: &str) -> bool {
    let Some(salt) = hash
        .strip_prefix("$apr1$")
        .and_then(|rest| rest.split('$').next())
    else {
        return false;
    };
    bool::from(
        apr1(password, salt.as_bytes())
            .as_bytes()
            .ct_eq(hash.as_bytes()),
    )
}

/// 32 bytes from the crypto provider's secure random source.
fn random_key() -> Result<[u8; 32], String> {
    let mut key = [0; 32];
    crate::crypto_provider()
        .map_err(|err| err.to_string())?
        .secure_random
        .fill(&mut key)
        .map_err(|_| "no secure random source".to_string())?;
    Ok(key)
}

/// Apache's MD5-based crypt (`$apr1$`), the FreeBSD md5crypt with another
/// magic string.
fn apr1(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let salt = &salt[..salt.len().min(8)];
    let mut alternate = Md5::new();
    alternate.update(password);
    alternate.update(salt);
    alternate.update(password);
    let alternate = alternate.finalize();

    let mut context = Md5::new();
    context.update(password);
    context.update(MAGIC);
    context.update(salt);
    let mut left = password.len();
    while left > 0 {
        let take = left.min(16);
        context.update(&alternate[..take]);
        left -= take;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut digest = context.finalize();

    for round in 0..1000 {
        let mut step = Md5::new();
        if round & 1 == 1 {
            step.update(password);
        } else {
            step.update(digest);
        }
        if round % 3 != 0 {
            step.update(salt);
        }
        if round % 7 != 0 {
            step.update(password);
        }
        if round & 1 == 1 {
            step.update(digest);
        } else {
            step.update(password);
        }
        digest = step.finalize();
    }

    const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut encoded = String::with_capacity(22);
    let mut push = |value: u32, chars: usize| {
        let mut value = value;
        for _ in 0..chars {
            encoded.push(char::from(ALPHABET[(value & 0x3f) as usize]));
            value >>= 6;
        }
    };
    let d = |i: usize| u32::from(digest[i]);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        push((d(a) << 16) | (d(b) << 8) | d(c), 4);
    }
    push(d(11), 2);
    format!("$apr1${}${encoded}", String::from_utf8_lossy(salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apr1_matches_the_spec_vectors() {
        for hash in [
            "$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00",
            "$apr1$yOX8egIV$BkmIBmiCafoKNXfrW/PRC/",
        ] {
            assert!(verify_apr1(b"password", hash), "{hash}");
            assert!(!verify_apr1(b"Password", hash), "{hash}");
        }
    }

    #[test]
    fn the_cache_keeps_no_password() {
        let htpasswd = Htpasswd::parse("alice:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00").unwrap();
        let other = Htpasswd::parse("").unwrap();
        let digest = htpasswd.digest("alice", "password");
        assert!(!digest.windows(8).any(|window| window == b"password"));
        assert_ne!(digest, htpasswd.digest("alice", "Password"));
        assert_ne!(digest, htpasswd.digest("alicep", "assword"));
        // Each process (each file read) has its own key.
        assert_ne!(digest, other.digest("alice", "password"));
    }

    #[test]
    fn parsing_refuses_what_the_reference_refuses() {
        assert!(Htpasswd::parse("\n  alice:$apr1$lZL6V/ci$eIMz/iKDkbtys/uU7LEK00  \n\n").is_ok());
        assert!(Htpasswd::parse("# a comment").is_err());
        assert!(Htpasswd::parse("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=").is_err());
        assert!(Htpasswd::parse("alice:plaintext").is_err());
    }

    fn authorization(raw: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_bytes(raw).unwrap());
        headers
    }

    #[test]
    fn credentials_are_decoded_like_the_reference() {
        let b64 = |text: &[u8]| base64::engine::general_purpose::STANDARD.encode(text);
        assert_eq!(
            credentials(&authorization(
                format!("bAsIc {}", b64(b"al:ice:pw")).as_bytes()
            )),
            Some(("al".into(), "ice:pw".into()))
        );
        // Latin-1 bytes, as aiohttp sends them.
        assert_eq!(
            credentials(&authorization(
                format!("Basic {}", b64(b"u:p\xe4ss")).as_bytes()
            )),
            Some(("u".into(), "päss".into()))
        );
        for bad in [
            &b"Bearer abc"[..],
            b"Basic !!!",
            b"Basic",
            b"Basic dXNlcg==",
        ] {
            assert_eq!(credentials(&authorization(bad)), None, "{bad:?}");
        }
    }
}
