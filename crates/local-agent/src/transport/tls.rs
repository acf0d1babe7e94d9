//! TLS to the server: `https://` here, and `wss://` through [`wrap`].
//! rustls on the ring provider (no OpenSSL), trusting Mozilla's roots
//! (`webpki-roots`), this system's store (`rustls-native-certs`, which
//! honours `SSL_CERT_FILE`) and the CA certificates of `--ca FILE`; or,
//! under `--insecure`, nothing at all, said on every dial.
//!
//! A certificate problem comes back as one line saying what is wrong and
//! what to pass; [`is_certificate_problem`] tells the dialer not to retry it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ServerUrl;

mod der;
mod explain;
mod verify;

/// How agents and clients check the server's certificate. `Default` trusts
/// Mozilla's roots and this system's store.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// `--ca FILE` and the certificates read from it.
    ca: Option<(PathBuf, Arc<[CertificateDer<'static>]>)>,
    insecure: bool,
    /// Built on the first TLS dial, then shared by every clone: reading the
    /// system store takes tens of milliseconds, and plain `http://` never
    /// needs it.
    config: Arc<OnceLock<Arc<ClientConfig>>>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca", &self.ca.as_ref().map(|(path, _)| path))
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsOptions {
    /// Also trusts the CA certificates in `path` (PEM), besides Mozilla's
    /// roots and the system's. The file is read now, so a bad one is said
    /// before any dial.
    pub fn with_ca_file(mut self, path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .map_err(|err| format!("--ca {shown}: cannot read its certificates: {err}"))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca {shown} holds no certificate: give a PEM file with a \
                 -----BEGIN CERTIFICATE----- block (the CA's, not the server's key)"
            ));
        }
        let mut check = RootCertStore::empty();
        let (_, unusable) = check.add_parsable_certificates(certs.iter().cloned());
        if unusable > 0 {
            return Err(format!(
                "--ca {shown}: {unusable} of its {} certificates cannot be read as X.509",
                certs.len()
            ));
        }
        self.ca = Some((path.to_path_buf(), certs.into()));
        self.config = Arc::default();
        Ok(self)
    }

    /// Skips checking the server's certificate altogether (`--insecure`).
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self.config = Arc::default();
        self
    }

    /// Whether `--insecure` is in force.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    fn client_config(&self) -> Arc<ClientConfig> {
        self.config.get_or_init(|| Arc::new(self.build())).clone()
    }

    fn build(&self) -> ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .dangerous();
        let builder = if self.insecure {
            builder.with_custom_certificate_verifier(Arc::new(verify::Unchecked(provider)))
        } else {
            let roots = Arc::new(self.roots());
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .expect("Mozilla's roots are never empty");
            builder.with_custom_certificate_verifier(Arc::new(verify::Checked(webpki)))
        };
        builder.with_no_client_auth()
    }

    /// Mozilla's roots, the system's store, and `--ca`.
    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let system = rustls_native_certs::load_native_certs();
        for err in &system.errors {
            tracing::debug!(%err, "skipped part of the system's certificate store");
        }
        let (added, ignored) = roots.add_parsable_certificates(system.certs);
        tracing::debug!(added, ignored, "trusting the system's certificate store");
        if let Some((_, certs)) = &self.ca {
            roots.add_parsable_certificates(certs.iter().cloned());
        }
        roots
    }
}

/// TLS over an already connected stream to `url`'s server (the WebSocket
/// transport's `wss://`, a tunnel through a proxy): the handshake, with
/// SNI and the certificate check against `url`'s host name.
pub(crate) async fn wrap<S>(
    io: S,
    url: &ServerUrl,
    options: &TlsOptions,
) -> io::Result<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = host_name(&url.host);
    let name = ServerName::try_from(host.to_string()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{host:?} is not a host name TLS can check a certificate against"),
        )
    })?;
    if options.insecure {
        tracing::warn!(
            server = %url,
            "--insecure: NOT checking the server's certificate; anyone on the path could \
             read the token and every stream"
        );
    }
    TlsConnector::from(options.client_config())
        .connect(name, io)
        .await
        .map_err(|err| explained(err, host))
}

/// The host of `host[:port]` or `[v6]:port`, without brackets: the name
/// sent as SNI and checked against the certificate.
fn host_name(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => authority,
    }
}

/// A certificate the person must fix: said in one line, not retried.
#[derive(Debug)]
pub(crate) struct CertificateProblem(String);

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CertificateProblem {}

/// Whether a dial failed on the server's certificate.
pub(crate) fn is_certificate_problem(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(|inner| inner.is::<CertificateProblem>())
}

/// rustls's handshake error in words (see `explain`); other I/O errors as
/// they are.
fn explained(err: io::Error, host: &str) -> io::Error {
    let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return err;
    };
    match explain::explain(tls, host) {
        Some(e) if e.certificate => io::Error::new(err.kind(), CertificateProblem(e.text)),
        Some(e) => io::Error::new(err.kind(), e.text),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_is_the_host_without_port_or_brackets() {
        assert_eq!(host_name("tunnel.example.com:8443"), "tunnel.example.com");
        assert_eq!(host_name("tunnel.example.com"), "tunnel.example.com");
        assert_eq!(host_name("[::1]:443"), "::1");
        assert_eq!(host_name("127.0.0.1:443"), "127.0.0.1");
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_what_to_give() {
        let dir = std::env::temp_dir().join(format!("uptun-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("key.pem");
        std::fs::write(
            &empty,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = TlsOptions::default().with_ca_file(&empty).unwrap_err();
        assert!(
            err.contains("holds no certificate") && err.contains("BEGIN CERTIFICATE"),
            "{err}"
        );
        let err = TlsOptions::default()
            .with_ca_file(&dir.join("missing.pem"))
            .unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_config_is_built_once_and_shared_by_clones() {
        let options = TlsOptions::default().insecure(true);
        let clone = options.clone();
        assert!(Arc::ptr_eq(
            &options.client_config(),
            &clone.client_config()
        ));
    }

    #[test]
    fn an_explained_certificate_error_is_marked_so_and_others_are_not() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked);
        let err = explained(io::Error::new(io::ErrorKind::InvalidData, tls), "h");
        assert!(is_certificate_problem(&err));
        assert!(
            err.to_string()
                .contains("certificate for h has been revoked"),
            "{err}"
        );
        let plain = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(!is_certificate_problem(&explained(plain, "h")));
    }
}
