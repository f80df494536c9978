//! From the common client flags to [`ClientOptions`]: headers, basic auth
//! and the TLS trust (`--cacert`, `--insecure`).

use std::sync::Arc;

use juggler_tokio::ClientOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::cli::ClientArgs;
use crate::exit::CliError;

/// The client options the flags ask for.
pub fn client_options(args: &ClientArgs) -> Result<ClientOptions, CliError> {
    let mut options = ClientOptions::default();
    for (name, value) in &args.headers {
        options = options.header(name.clone(), value.clone());
    }
    if let Some((user, password)) = &args.user {
        options = options
            .basic_auth(user, password)
            .map_err(|err| CliError::Usage(format!("invalid value for '--user': {err}")))?;
    }
    if let Some(path) = &args.cacert {
        options = options.trust_pem_file(path).map_err(|err| {
            CliError::Usage(format!(
                "invalid value '{}' for '--cacert <FILE>': {err}",
                path.display()
            ))
        })?;
    }
    if args.insecure {
        options = options.tls_config(insecure_config()?);
    }
    Ok(options)
}

/// A TLS configuration that accepts any server certificate, as the
/// Python client does with `ssl_ctx=None`. Signatures are still checked,
/// so the session is encrypted; only who holds the key is not.
fn insecure_config() -> Result<Arc<rustls::ClientConfig>, CliError> {
    let provider = juggler_tokio::crypto_provider()
        .map_err(|err| CliError::Usage(format!("--insecure: {err}")))?;
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| CliError::Usage(format!("--insecure: {err}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts every certificate; checks the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
