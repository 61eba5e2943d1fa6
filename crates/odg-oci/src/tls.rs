//! Which certificate authorities registry connections trust, and which TLS failures are final.
//!
//! Trusted: Mozilla's roots (built in, so a container without a CA store still reaches public
//! registries), the system store — or, as OpenSSL does, `SSL_CERT_FILE` / `SSL_CERT_DIR` instead
//! of it (rustls-native-certs reads them) — plus the CA files of the configuration: global ones for
//! every host, per-host ones only for that host (each such host gets its own HTTP client).
//! A certificate the client does not trust stays untrusted on every retry, so such failures end
//! the request at once with kind `Tls` instead of spending the retry budget.

use std::path::Path;

use crate::error::OciError;

/// The CA certificates of one PEM file; a file with none is an error (a wrong path or format
/// would otherwise silently trust nothing new).
pub(crate) fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, OciError> {
    let pem = std::fs::read(path)
        .map_err(|error| OciError::io(format!("reading CA file {}", path.display()), error))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| OciError::protocol(format!("CA file {}: {error}", path.display())))?;
    if certificates.is_empty() {
        return Err(OciError::protocol(format!(
            "CA file {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certificates)
}

/// Warns when `SSL_CERT_FILE` or `SSL_CERT_DIR` name nothing readable: as with OpenSSL, setting
/// either replaces the system store, so a typo would silently leave only the built-in roots.
pub(crate) fn warn_about_unusable_certificate_variables() {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        if std::fs::File::open(&file).is_err() {
            tracing::warn!(
                path = %Path::new(&file).display(),
                "SSL_CERT_FILE cannot be read: the system CA store is not used either"
            );
        }
    }
    if let Some(directories) = std::env::var_os("SSL_CERT_DIR") {
        for directory in std::env::split_paths(&directories) {
            if std::fs::read_dir(&directory).is_err() {
                tracing::warn!(
                    path = %directory.display(),
                    "SSL_CERT_DIR entry cannot be read: the system CA store is not used either"
                );
            }
        }
    }
}

/// The TLS failure behind a request error when retrying cannot change it: an untrusted, expired or
/// mismatched certificate, a peer without a common protocol version or cipher, or TLS spoken to a
/// plain-HTTP port. Connection resets and timeouts during a handshake are not among them.
pub(crate) fn permanent_tls_failure(error: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = as_rustls_error(current) {
            return is_permanent(tls).then(|| tls.to_string());
        }
        cause = current.source();
    }
    None
}

/// rustls errors reach reqwest wrapped in `io::Error`s (two deep: the TLS stream's, then the
/// connector's), and `io::Error::source()` skips the error it wraps, so unwrap them by hand.
fn as_rustls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = error;
    loop {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let inner = current.downcast_ref::<std::io::Error>()?.get_ref()?;
        current = inner;
    }
}

fn is_permanent(error: &rustls::Error) -> bool {
    use rustls::Error;
    match error {
        Error::InvalidCertificate(_)
        | Error::NoCertificatesPresented
        | Error::UnsupportedNameType
        | Error::PeerIncompatible(_)
        | Error::InvalidCertRevocationList(_) => true,
        // A plain-HTTP server answering a ClientHello: garbage that will not change either.
        Error::InvalidMessage(_) => true,
        // The server refused our certificate-less or version-mismatched hello.
        Error::AlertReceived(alert) => matches!(
            alert,
            rustls::AlertDescription::HandshakeFailure
                | rustls::AlertDescription::ProtocolVersion
                | rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::UnsupportedCertificate
                | rustls::AlertDescription::CertificateRequired
                | rustls::AlertDescription::UnknownCA
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_are_permanent_and_the_rest_is_not() {
        assert!(is_permanent(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer
        )));
        assert!(is_permanent(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired
        )));
        assert!(is_permanent(&rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure
        )));
        assert!(!is_permanent(&rustls::Error::AlertReceived(
            rustls::AlertDescription::InternalError
        )));
        assert!(!is_permanent(&rustls::Error::FailedToGetCurrentTime));
    }

    #[test]
    fn wrapped_errors_are_found() {
        let stream = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let connector = std::io::Error::other(stream);
        let found = as_rustls_error(&connector).unwrap();
        assert!(is_permanent(found));
        assert!(found.to_string().contains("UnknownIssuer"), "{found}");
    }

    #[test]
    fn ca_files_must_hold_certificates() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(read_ca_file(&path)
            .unwrap_err()
            .to_string()
            .contains("no PEM certificate"));
        assert!(read_ca_file(&directory.path().join("missing.pem")).is_err());
    }
}
