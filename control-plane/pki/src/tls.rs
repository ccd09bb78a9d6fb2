//! rustls configurations for kc's mutual TLS, shared by every listener and
//! dialer: QUIC between members and nodes, and HTTPS to the API server.
//!
//! Servers present a certificate from the cluster CA; clients are verified
//! against the same CA. The API server accepts connections without a client
//! certificate too (bearer tokens), and answers 401 itself to requests with
//! neither; QUIC peers must always present one.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::{IssuedCert, PkiError};

/// Whether a server insists on a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// QUIC peers: no certificate, no connection.
    Required,
    /// HTTPS API: a certificate identifies the client if present; otherwise
    /// the request must carry a bearer token.
    Optional,
}

/// Installs the ring crypto provider as the process default (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A trust store holding just the cluster CA.
pub fn root_store(ca_pem: &str) -> Result<RootCertStore, PkiError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| bad_pem("CA certificate", e))?;
        roots
            .add(cert)
            .map_err(|e| PkiError::Tls(format!("CA certificate rejected: {e}")))?;
    }
    if roots.is_empty() {
        return Err(PkiError::Tls("no CA certificate given".into()));
    }
    Ok(roots)
}

/// A server configuration presenting `server` and verifying clients
/// against the cluster CA.
pub fn server_config(
    ca_pem: &str,
    server: &IssuedCert,
    client_auth: ClientAuth,
    alpn: &[&[u8]],
) -> Result<ServerConfig, PkiError> {
    install_crypto_provider();
    let builder = WebPkiClientVerifier::builder(Arc::new(root_store(ca_pem)?));
    let verifier = match client_auth {
        ClientAuth::Required => builder.build(),
        ClientAuth::Optional => builder.allow_unauthenticated().build(),
    }
    .map_err(|e| PkiError::Tls(e.to_string()))?;
    let (chain, key) = cert_and_key(server)?;
    let mut config = ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| PkiError::Tls(e.to_string()))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A client configuration trusting only the cluster CA and presenting
/// `client` if given.
pub fn client_config(
    ca_pem: &str,
    client: Option<&IssuedCert>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, PkiError> {
    install_crypto_provider();
    let builder = ClientConfig::builder().with_root_certificates(root_store(ca_pem)?);
    let mut config = match client {
        Some(cert) => {
            let (chain, key) = cert_and_key(cert)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| PkiError::Tls(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Accepts any server certificate (the handshake's signatures are still
/// checked): see [`unverified_client_config`].
#[derive(Debug)]
struct AcceptAnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
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

/// A client configuration that trusts any server: for fetching a CA whose
/// hash the caller checks next (joining), and where a user asked for no
/// verification (an APIService's `insecureSkipTLSVerify`).
pub fn unverified_client_config() -> ClientConfig {
    install_crypto_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider)))
        .with_no_client_auth()
}

/// The DER certificate chain and private key of an issued certificate.
pub fn cert_and_key(
    cert: &IssuedCert,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PkiError> {
    let chain = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem("certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes())
        .map_err(|e| bad_pem("private key", e))?;
    Ok((chain, key))
}

fn bad_pem(what: &str, e: rustls::pki_types::pem::Error) -> PkiError {
    PkiError::BadPem {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertRequest, ClusterCa};

    #[test]
    fn configs_build_from_issued_certificates() {
        let ca = ClusterCa::generate("test").unwrap();
        let server = ca
            .issue(&CertRequest::node("cp-1", &["localhost".into()], &[]))
            .unwrap();
        server_config(ca.cert_pem(), &server, ClientAuth::Required, &[b"kc"]).unwrap();
        server_config(ca.cert_pem(), &server, ClientAuth::Optional, &[]).unwrap();
        client_config(ca.cert_pem(), Some(&server), &[b"kc"]).unwrap();
        client_config(ca.cert_pem(), None, &[]).unwrap();
    }

    #[test]
    fn empty_ca_is_refused() {
        assert!(root_store("").is_err());
    }
}
