//! A certificate from an ACME CA (Let's Encrypt by default) for
//! `--acme-domain` names, proved with TLS-ALPN-01 (RFC 8737) on the server's
//! own port, so the one port stays the only one. `rustls-acme` does the
//! protocol, the cache and the renewal (a third of the lifetime before
//! expiry); this file wires it to the server's accept path and its logs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use futures_util::StreamExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ServerConfig};
use rustls::{ClientConfig, RootCertStore};
use rustls_acme::caches::DirCache;
use rustls_acme::{is_tls_alpn_challenge, AcmeConfig, AcmeState, EventError, EventOk};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::tls::provider;

/// Let's Encrypt's production directory, the default CA.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// What ACME needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names the certificate is for; each must resolve to this server,
    /// and the CA must reach it on port 443 (where it sends TLS-ALPN-01).
    pub domains: Vec<String>,
    /// The CA's directory URL.
    pub directory: String,
    /// Where the account key and the certificate are kept across restarts.
    pub cache: PathBuf,
    /// Contacts for the account, `mailto:` addresses.
    pub contacts: Vec<String>,
    /// The CA certificate (PEM) the directory's HTTPS certificate chains
    /// to, for a private ACME server; Mozilla's roots otherwise.
    pub directory_ca: Option<PathBuf>,
}

/// A running ACME client: the configurations connections are answered
/// with, and the task that obtains and renews the certificate (stopped
/// when this is dropped).
pub(crate) struct Acme {
    settings: AcmeSettings,
    config: Arc<ServerConfig>,
    challenge: Arc<ServerConfig>,
    task: JoinHandle<()>,
}

impl Drop for Acme {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Acme {
    /// Loads a cached certificate or orders one, in a task of its own.
    pub fn start(settings: AcmeSettings) -> anyhow::Result<Acme> {
        check(&settings)?;
        make_private_dir(&settings.cache)?;
        let mut acme = AcmeConfig::new_with_provider(&settings.domains, provider())
            .directory(&settings.directory)
            .contact(&settings.contacts);
        if let Some(ca) = &settings.directory_ca {
            acme = acme.client_tls_config(client_config(ca)?);
        }
        let state = acme.cache(DirCache::new(settings.cache.clone())).state();
        let challenge = state.challenge_rustls_config_with_provider(provider());
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(state.resolver());
        info!(domains = %settings.domains.join(","), directory = %settings.directory, "ACME: getting a certificate");
        Ok(Acme {
            task: tokio::spawn(drive(state, settings.domains.join(","))),
            settings,
            config: Arc::new(config),
            challenge,
        })
    }

    pub fn settings(&self) -> &AcmeSettings {
        &self.settings
    }

    /// The configuration for ordinary connections: the certificate from
    /// the CA (none yet: the handshake fails).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// The configuration that answers `hello` if it is the CA's
    /// TLS-ALPN-01 challenge (it offers only `acme-tls/1`).
    pub fn challenge_config(&self, hello: &ClientHello<'_>) -> Option<Arc<ServerConfig>> {
        is_tls_alpn_challenge(hello).then(|| self.challenge.clone())
    }
}

/// Drives the ACME state for the life of the process, logging what it did.
/// Failed orders are retried by `rustls-acme` with a growing pause.
async fn drive(mut state: AcmeState<std::io::Error>, domains: String) {
    while let Some(event) = state.next().await {
        match event {
            Ok(EventOk::DeployedNewCert) => {
                info!(%domains, "ACME: new certificate in use")
            }
            Ok(EventOk::DeployedCachedCert) => {
                info!(%domains, "ACME: certificate from the cache in use")
            }
            Ok(EventOk::CertCacheStore | EventOk::AccountCacheStore) => {}
            Err(err @ EventError::Order(_)) => {
                warn!(%domains, "ACME: {err}; trying again later")
            }
            // Cache trouble: the certificate works, but a restart would
            // order a new one.
            Err(err) => {
                warn!(%domains, "ACME: {err}; check that --acme-cache is a writable directory")
            }
        }
    }
}

/// Names and contacts a CA would refuse are refused here, where the
/// mistake can still be fixed before anything is sent.
fn check(settings: &AcmeSettings) -> anyhow::Result<()> {
    if settings.domains.is_empty() {
        return Err(anyhow!("ACME needs at least one --acme-domain"));
    }
    for name in &settings.domains {
        check_domain(name)?;
    }
    for contact in &settings.contacts {
        if !contact.starts_with("mailto:") || !contact.contains('@') {
            return Err(anyhow!(
                "ACME contact {contact:?} is not a mailto: address: write mailto:you@example.com"
            ));
        }
    }
    Ok(())
}

/// A DNS name a CA can validate with TLS-ALPN-01: no wildcard (that takes
/// DNS-01), no IP address.
pub(crate) fn check_domain(name: &str) -> anyhow::Result<()> {
    if name.contains('*') {
        return Err(anyhow!(
            "--acme-domain {name:?}: wildcards need DNS-01, which uptun does not do; list each name"
        ));
    }
    let valid = rustls::pki_types::DnsName::try_from(name).is_ok()
        && name.parse::<std::net::IpAddr>().is_err()
        && name.contains('.');
    match valid {
        true => Ok(()),
        false => Err(anyhow!(
            "--acme-domain {name:?} is not a DNS name such as tunnel.example.com"
        )),
    }
}

/// The cache holds the account key and the certificate's private key:
/// created readable by this user only.
fn make_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("could not create the ACME cache {}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir)
        .with_context(|| format!("could not read the ACME cache {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        warn!(cache = %dir.display(), "the ACME cache holds private keys but others may read it: chmod 700 it");
    }
    Ok(())
}

/// A client configuration trusting only the CA in `path`.
fn client_config(path: &Path) -> anyhow::Result<Arc<ClientConfig>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("could not read the ACME directory's CA {}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|err| anyhow!("{}: not PEM: {err}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("{}: not a CA certificate", path.display()))?;
    }
    if roots.is_empty() {
        return Err(anyhow!(
            "{}: no certificate (want PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_ca_would_refuse_are_refused_first() {
        assert!(check_domain("tunnel.example.com").is_ok());
        for bad in ["*.example.com", "localhost", "10.0.0.1", "exa mple.com", ""] {
            let err = check_domain(bad).unwrap_err().to_string();
            assert!(err.contains("--acme-domain"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_contact_must_be_a_mailto_address() {
        let settings = |contact: &str| AcmeSettings {
            domains: vec!["tunnel.example.com".into()],
            directory: LETS_ENCRYPT.into(),
            cache: PathBuf::from("/nonexistent"),
            contacts: vec![contact.into()],
            directory_ca: None,
        };
        assert!(check(&settings("mailto:ops@example.com")).is_ok());
        let err = check(&settings("ops@example.com")).unwrap_err().to_string();
        assert!(err.contains("mailto:you@example.com"), "{err}");
    }
}
