//! Throwaway TLS material for the encrypted systems: a CA of the run's own,
//! a certificate it signs for `localhost` and `127.0.0.1`, and (for
//! rathole, whose server reads only PKCS#12) the same key and certificate
//! as a password-protected `.pfx`. Everything lives in the run's temp folder.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// The names the certificate covers; clients dial one of them.
pub const NAMES: [&str; 2] = ["localhost", "127.0.0.1"];
/// Protects the `.pfx`; a throwaway for a throwaway key.
pub const PKCS12_PASSWORD: &str = "uptun-bench-pfx";

/// PEM files: what clients trust (`ca`), what servers present (`cert`, `key`).
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files in `dir`, made on the first call of a run and reused after,
    /// so every system of the run presents the same certificate.
    pub fn in_dir(dir: &Path) -> anyhow::Result<TlsFiles> {
        let files = TlsFiles {
            ca: dir.join("tls-ca.pem"),
            cert: dir.join("tls-cert.pem"),
            key: dir.join("tls-key.pem"),
        };
        // The key is written last, so its presence means all three are whole.
        if !files.key.exists() {
            files.generate()?;
        }
        Ok(files)
    }

    fn generate(&self) -> anyhow::Result<()> {
        let ca_key = KeyPair::generate().context("could not make the bench CA's key")?;
        let mut ca_params = CertificateParams::new(Vec::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "uptun-bench throwaway CA");
        let ca = ca_params
            .self_signed(&ca_key)
            .context("could not sign the bench CA")?;

        let leaf_key = KeyPair::generate().context("could not make the certificate's key")?;
        let names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
        let leaf = CertificateParams::new(names)?
            .signed_by(&leaf_key, &ca, &ca_key)
            .context("could not sign the bench certificate")?;

        write(&self.ca, &ca.pem())?;
        write(&self.cert, &leaf.pem())?;
        write(&self.key, &leaf_key.serialize_pem())
    }

    /// The certificate and key as PKCS#12 (`openssl pkcs12 -export`), made
    /// on the first call; protected by [`PKCS12_PASSWORD`].
    pub fn pkcs12(&self) -> anyhow::Result<PathBuf> {
        let pfx = self.cert.with_file_name("tls-identity.pfx");
        if pfx.exists() {
            return Ok(pfx);
        }
        let output = Command::new("openssl")
            .args(["pkcs12", "-export", "-in"])
            .arg(&self.cert)
            .arg("-inkey")
            .arg(&self.key)
            .arg("-out")
            .arg(&pfx)
            .arg("-passout")
            .arg(format!("pass:{PKCS12_PASSWORD}"))
            .output()
            .context("could not run openssl to make rathole's .pfx (apt-get install -y openssl)")?;
        if !output.status.success() {
            bail!(
                "openssl pkcs12 -export failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(pfx)
    }
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = TlsFiles::in_dir(dir.path()).unwrap();
        let cert = std::fs::read_to_string(&first.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let key = std::fs::read_to_string(&first.key).unwrap();
        assert!(key.contains("PRIVATE KEY"), "{key}");
        let again = TlsFiles::in_dir(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&again.cert).unwrap(), cert);
    }

    #[test]
    fn the_pkcs12_holds_the_same_certificate_under_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::in_dir(dir.path()).unwrap();
        let pfx = files.pkcs12().unwrap();
        let read_back = |password: &str| {
            Command::new("openssl")
                .args(["pkcs12", "-nokeys", "-clcerts", "-in"])
                .arg(&pfx)
                .arg("-passin")
                .arg(format!("pass:{password}"))
                .output()
                .unwrap()
        };
        let out = read_back(PKCS12_PASSWORD);
        assert!(out.status.success(), "{out:?}");
        let cert = std::fs::read_to_string(&files.cert).unwrap();
        let body = |pem: &str| {
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
        };
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(body(&text).contains(&body(&cert)), "{text}");
        assert!(!read_back("wrong").status.success());
    }
}
