//! Throwaway certificates for servers under test: a CA of the test's own
//! and certificates it signs, written as PEM files for `--tls-cert`,
//! `curl --cacert` and pebble.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA whose certificate is at [`Ca::cert`].
pub struct Ca {
    /// The CA's certificate (PEM): what a client trusts.
    pub cert: PathBuf,
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    /// A fresh CA named `label`, its certificate written into `dir`.
    pub fn new(dir: &Path, label: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a client trusting another test CA finds no
        // issuer, rather than a bad signature.
        params
            .distinguished_name
            .push(DnType::CommonName, format!("uptun test CA {label}"));
        let issuer = params.self_signed(&key).unwrap();
        let cert = dir.join(format!("{label}-ca.pem"));
        std::fs::write(&cert, issuer.pem()).unwrap();
        Ca { cert, issuer, key }
    }

    /// A certificate for `names` (DNS names or IP addresses) and its key,
    /// written to `cert` and `key`.
    pub fn issue(&self, names: &[&str], cert: &Path, key: &Path) {
        self.issue_with(names, cert, key, |_| ());
    }

    /// Like [`Ca::issue`], for a certificate that expired in 2001.
    pub fn issue_expired(&self, names: &[&str], cert: &Path, key: &Path) {
        self.issue_with(names, cert, key, |params| {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
    }

    fn issue_with(
        &self,
        names: &[&str],
        cert: &Path,
        key: &Path,
        adjust: impl FnOnce(&mut CertificateParams),
    ) {
        let leaf_key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        adjust(&mut params);
        let leaf = params
            .signed_by(&leaf_key, &self.issuer, &self.key)
            .unwrap();
        std::fs::write(cert, leaf.pem()).unwrap();
        std::fs::write(key, leaf_key.serialize_pem()).unwrap();
    }
}
