//! Certificates for tests (feature `testing`): a throwaway CA that issues server and client
//! certificates, written as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

/// A CA made for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's certificate, PEM.
    pub pem: String,
}

impl TestCa {
    /// A new CA named `name`. Panics only on rcgen failing, which a test should see.
    #[allow(clippy::unwrap_used)]
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `common_name` with the subject alternative names `sans` (IP
    /// addresses or DNS names), for servers and clients alike: `(cert PEM, key PEM)`.
    #[allow(clippy::unwrap_used)]
    pub fn issue(&self, common_name: &str, sans: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes the CA to `dir/ca.crt`.
    #[allow(clippy::unwrap_used)]
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.crt");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// Issues and writes `dir/NAME.crt` and `dir/NAME.key`, replacing them atomically (by
    /// renaming, as a Secret mount swaps its files).
    #[allow(clippy::unwrap_used)]
    pub fn write(&self, dir: &Path, name: &str, sans: &[&str]) -> (PathBuf, PathBuf) {
        let (cert, key) = self.issue(name, sans);
        let (cert_path, key_path) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        for (path, text) in [(&cert_path, cert), (&key_path, key)] {
            let staged = path.with_extension("new");
            std::fs::write(&staged, text).unwrap();
            std::fs::rename(&staged, path).unwrap();
        }
        (cert_path, key_path)
    }
}

/// A fresh temporary directory for a test's files, under the system's temporary directory.
#[allow(clippy::unwrap_used)]
pub fn temp_dir(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "edgeplane-tls-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
