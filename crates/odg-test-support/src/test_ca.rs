//! `TestCa`: a certificate authority made in the test (the "organisation's own CA" of an on-prem
//! registry), and server certificates it signs, as PEM files for the registry and the client.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A CA whose certificate is in no trust store: clients trust it only when told to.
pub struct TestCa {
    certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A server certificate and its key, written as PEM files in a temp dir that lives as long as this.
#[derive(Debug)]
pub struct ServerCertificate {
    directory: tempfile::TempDir,
}

impl ServerCertificate {
    /// The certificate (PEM).
    pub fn certificate_path(&self) -> PathBuf {
        self.directory.path().join("server.crt")
    }

    /// The private key (PEM, PKCS#8).
    pub fn key_path(&self) -> PathBuf {
        self.directory.path().join("server.key")
    }
}

impl TestCa {
    /// A new CA named `name` (its common name, so errors and logs show which one).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().expect("generate the CA key");
        let certificate = params.self_signed(&key).expect("self-sign the CA");
        TestCa {
            certificate_pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate (PEM), what a client is told to trust.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// Writes the CA certificate to `path` (for `--registry-ca-file` or `SSL_CERT_FILE`).
    pub fn write_certificate(&self, path: &Path) {
        std::fs::write(path, &self.certificate_pem).expect("write the CA certificate");
    }

    /// A server certificate for `names` (DNS names or IP addresses, e.g. `127.0.0.1`), signed by this CA.
    pub fn server_certificate(&self, names: &[&str]) -> ServerCertificate {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server parameters");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("generate the server key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");
        let directory = tempfile::Builder::new()
            .prefix("odg-test-cert-")
            .tempdir()
            .expect("create a temp dir for the certificate");
        let files = ServerCertificate { directory };
        std::fs::write(files.certificate_path(), certificate.pem()).expect("write the certificate");
        std::fs::write(files.key_path(), key.serialize_pem()).expect("write the key");
        files
    }
}
