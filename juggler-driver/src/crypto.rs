//! The rustls crypto provider of the TLS configurations this crate builds
//! (from a PEM file, for a client's roots), chosen by Cargo feature.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::Error;

/// The crypto provider juggler-rs builds its own TLS configurations with:
/// the process default if the application installed one
/// (`CryptoProvider::install_default`), else the one the Cargo features
/// choose: `ring` (the default feature) or, with
/// `default-features = false, features = ["aws-lc-rs"]`, aws-lc-rs. With
/// both features on, `ring`.
///
/// Fails with [`Error::Tls`] when neither feature is on and no default is
/// installed. A configuration passed whole (`ServerOptions::tls_config`,
/// `ClientOptions::tls_config`) uses the provider it was built with.
///
/// ```
/// let provider = juggler_driver::crypto_provider()?;
/// assert!(!provider.cipher_suites.is_empty());
/// # Ok::<(), juggler_driver::Error>(())
/// ```
pub fn crypto_provider() -> Result<Arc<CryptoProvider>, Error> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Ok(installed.clone());
    }
    feature_provider().map(Arc::new).ok_or_else(|| {
        Error::Tls(
            "no rustls crypto provider: enable the `ring` or the `aws-lc-rs` feature, \
             or install a process default"
                .into(),
        )
    })
}

#[cfg(feature = "ring")]
fn feature_provider() -> Option<CryptoProvider> {
    Some(rustls::crypto::ring::default_provider())
}

#[cfg(all(feature = "aws-lc-rs", not(feature = "ring")))]
fn feature_provider() -> Option<CryptoProvider> {
    Some(rustls::crypto::aws_lc_rs::default_provider())
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
fn feature_provider() -> Option<CryptoProvider> {
    None
}
