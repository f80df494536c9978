//! TLS: the configuration from a PEM file, and the handshake of an
//! accepted socket with its timeout.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use std::net::SocketAddr;
use std::pin::pin;

use futures_util::future::{select, Either};

use super::HttpTimeouts;
use crate::runtime::{Io, Runtime};
use crate::{Error, PeerCertificates};

/// Loads the certificate chain and private key of one PEM file into a
/// TLS server configuration (HTTP/1.1 over TLS).
pub fn server_tls_config(pem_file: &Path) -> Result<Arc<rustls::ServerConfig>, Error> {
    let pem = std::fs::read(pem_file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| Error::Tls(format!("{}: bad certificate: {err}", pem_file.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate",
            pem_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|err| {
        Error::Tls(format!(
            "{}: no usable private key: {err}",
            pem_file.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::crypto_provider()?)
        .with_safe_default_protocol_versions()
        .map_err(|err| Error::Tls(format!("crypto provider: {err}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| Error::Tls(format!("{}: {err}", pem_file.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS handshake of an accepted socket, bounded by the handshake
/// timeout: the stream and the client's certificates, or `None` (logged)
/// when it failed or took too long.
pub(super) async fn handshake(
    tls: &futures_rustls::TlsAcceptor,
    io: Box<dyn Io>,
    peer: SocketAddr,
    timeouts: HttpTimeouts,
    runtime: &dyn Runtime,
) -> Option<(Box<dyn Io>, Option<PeerCertificates>)> {
    let expired = super::serve::after(runtime, timeouts.tls_handshake);
    match select(pin!(tls.accept(io)), expired).await {
        Either::Left((Ok(stream), _)) => {
            let certificates = PeerCertificates::of(stream.get_ref().1);
            Some((Box::new(stream), certificates))
        }
        Either::Left((Err(err), _)) => {
            tracing::debug!(%peer, %err, "TLS handshake failed");
            None
        }
        Either::Right(((), _)) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_key_or_cert_is_a_tls_error() {
        let path = std::env::temp_dir().join(format!("juggler-bad-{}.pem", std::process::id()));
        std::fs::write(&path, "not a pem").unwrap();
        assert!(matches!(server_tls_config(&path), Err(Error::Tls(_))));
        std::fs::remove_file(&path).unwrap();
    }
}
