//! TLS for DLI and IAM: always verified, against the public roots plus an optional private CA.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the CA bundle is not valid PEM: {0}")]
    Pem(String),
    #[error("the CA bundle holds no certificate")]
    NoCertificate,
    #[error("the CA bundle's certificate number {index} is not a usable CA certificate: {reason}")]
    BadCertificate { index: usize, reason: String },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// The certificates of a PEM bundle; other PEM sections (keys, comments) are ignored.
pub fn parse_ca_bundle(pem: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem(error.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certificates)
}

/// The trust anchors: webpki's public roots and the bundle's certificates.
pub fn root_store(ca_bundle: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = ca_bundle {
        for (index, certificate) in parse_ca_bundle(pem)?.into_iter().enumerate() {
            roots
                .add(certificate)
                .map_err(|error| TlsError::BadCertificate {
                    index: index + 1,
                    reason: error.to_string(),
                })?;
        }
    }
    Ok(roots)
}

/// A rustls client configuration with the ring provider and the given roots.
pub fn client_config(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?
        .with_root_certificates(root_store(ca_bundle)?)
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("certificate").pem()
    }

    #[test]
    fn a_private_ca_is_added_to_the_public_roots() {
        let public = root_store(None).expect("public roots").len();
        let with_ca = root_store(Some(&ca_pem())).expect("roots with CA").len();
        assert_eq!(with_ca, public + 1);
    }

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        assert!(matches!(
            parse_ca_bundle("not pem at all"),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            parse_ca_bundle("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(TlsError::Pem(_) | TlsError::NoCertificate)
        ));
    }

    #[test]
    fn the_config_builds_with_and_without_a_bundle() {
        assert!(client_config(None).is_ok());
        assert!(client_config(Some(&ca_pem())).is_ok());
    }
}
