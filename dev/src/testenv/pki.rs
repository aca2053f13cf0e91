//! The certificates of a throw-away cluster: a CA, the API server's serving certificate,
//! client certificates (CN = user, O = group) and the service-account signing key.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::TestEnvError;

/// The OID of `O` (organizationName), the attribute Kubernetes reads groups from.
const ORGANIZATION_OID: [u64; 4] = [2, 5, 4, 10];

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Everything a private control plane needs to serve TLS and authenticate clients.
pub struct Pki {
    ca: Issuer<'static, KeyPair>,
    pub ca_pem: String,
    pub serving: CertAndKey,
    pub admin: CertAndKey,
    /// PKCS#8 private key the API server signs ServiceAccount tokens with.
    pub service_account_key_pem: String,
    pub service_account_public_pem: String,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("ca_pem", &self.ca_pem)
            .field("serving", &self.serving)
            .field("admin", &self.admin)
            .field("service_account_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Pki {
    pub fn generate() -> Result<Self, TestEnvError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "dli-stop-operator test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate()?;
        let ca_pem = ca_params.self_signed(&ca_key)?.pem();
        let ca = Issuer::new(ca_params, ca_key);

        let mut serving_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        serving_params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving = sign(&ca, serving_params)?;

        let admin = client_certificate(&ca, "dli-test-admin", &["system:masters"])?;

        let service_account = KeyPair::generate()?;
        Ok(Self {
            ca,
            ca_pem,
            serving,
            admin,
            service_account_key_pem: service_account.serialize_pem(),
            service_account_public_pem: service_account.public_key_pem(),
        })
    }

    /// A client certificate the API server maps to `user` in `groups`.
    pub fn client(&self, user: &str, groups: &[&str]) -> Result<CertAndKey, TestEnvError> {
        client_certificate(&self.ca, user, groups)
    }
}

fn client_certificate(
    ca: &Issuer<'static, KeyPair>,
    user: &str,
    groups: &[&str],
) -> Result<CertAndKey, TestEnvError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, user);
    // rcgen keeps one value per attribute type, so the second group goes under a custom type
    // carrying the same OID: the certificate then holds two O attributes, both read as groups.
    let group_types = [
        DnType::OrganizationName,
        DnType::CustomDnType(ORGANIZATION_OID.to_vec()),
    ];
    if groups.len() > group_types.len() {
        return Err(TestEnvError::TooManyGroups(groups.len()));
    }
    for (ty, group) in group_types.into_iter().zip(groups) {
        params.distinguished_name.push(ty, *group);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    sign(ca, params)
}

fn sign(
    ca: &Issuer<'static, KeyPair>,
    params: CertificateParams,
) -> Result<CertAndKey, TestEnvError> {
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, ca)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_private_keys() {
        let pki = Pki::generate().unwrap();
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn keys_are_pem_the_api_server_can_parse() {
        let pki = Pki::generate().unwrap();
        assert!(
            pki.service_account_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            pki.service_account_public_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(
            pki.serving
                .cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }

    #[test]
    fn more_groups_than_a_certificate_can_carry_is_refused() {
        let pki = Pki::generate().unwrap();
        assert!(pki.client("alice", &["a", "b"]).is_ok());
        let err = pki.client("alice", &["a", "b", "c"]).unwrap_err();
        assert!(matches!(err, TestEnvError::TooManyGroups(3)), "{err}");
    }
}
