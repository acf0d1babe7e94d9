//! The server's own TLS, for a VPS without a proxy in front: a certificate
//! and key from PEM files (`--tls-cert`, `--tls-key`, reloaded on `HUP`), or
//! one obtained from an ACME CA (`acme.rs`). TLS shares the one port with
//! everything else: a connection whose first byte starts a TLS handshake
//! record (0x16) is terminated here and classified by what comes inside;
//! any other first byte is served as plain bytes as before, so ssh, an
//! agent on `http://` and the health check keep working on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, ServerConfig};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::LazyConfigAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::acme::{Acme, AcmeSettings};
use crate::config::Config;
use crate::socket::{Socket, Tls};

/// The first byte of a TLS record carrying a handshake (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Where the server's certificate comes from, as the settings say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsSettings {
    /// Plain TCP only (a proxy in front terminates TLS, or nothing does).
    #[default]
    Off,
    /// PEM files: the certificate chain, leaf first, and its private key.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate from an ACME CA, for these names.
    Acme(AcmeSettings),
}

impl TlsSettings {
    /// Loads the certificate (or starts ACME, which needs a tokio runtime);
    /// `None` when TLS is off.
    pub fn load(&self) -> anyhow::Result<Option<ServerTls>> {
        match self {
            TlsSettings::Off => Ok(None),
            TlsSettings::Files { cert, key } => ServerTls::from_pem_files(cert, key).map(Some),
            TlsSettings::Acme(acme) => ServerTls::acme(acme.clone()).map(Some),
        }
    }
}

/// The server's TLS: what a connection starting with a TLS handshake is
/// answered with. Clones share it; dropping the last one stops ACME renewal.
#[derive(Clone)]
pub struct ServerTls(Arc<Kind>);

enum Kind {
    Files {
        config: Arc<ServerConfig>,
        settings: TlsSettings,
    },
    Acme(Acme),
}

/// Paths and names only: a key never reaches a log line.
impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ServerTls").field(&self.settings()).finish()
    }
}

impl ServerTls {
    /// TLS with the certificate chain in `cert` and the private key in
    /// `key` (PEM). Errors name the file and what is wrong, never the key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<ServerTls> {
        let read = |path: &Path, what: &str| {
            std::fs::read(path)
                .with_context(|| format!("could not read the TLS {what} {}", path.display()))
        };
        let config = server_config(&read(cert, "certificate")?, &read(key, "key")?)
            .with_context(|| format!("{} and {}", cert.display(), key.display()))?;
        let settings = TlsSettings::Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        };
        Ok(ServerTls(Arc::new(Kind::Files { config, settings })))
    }

    /// TLS with a certificate from an ACME CA, answering its TLS-ALPN-01
    /// challenges on the server's port; renewed before it expires. Until
    /// the first certificate arrives, TLS handshakes fail (plain
    /// connections are served as ever). Needs a tokio runtime.
    pub fn acme(settings: AcmeSettings) -> anyhow::Result<ServerTls> {
        Ok(ServerTls(Arc::new(Kind::Acme(Acme::start(settings)?))))
    }

    /// The settings this TLS was made from.
    pub fn settings(&self) -> TlsSettings {
        match &*self.0 {
            Kind::Files { settings, .. } => settings.clone(),
            Kind::Acme(acme) => TlsSettings::Acme(acme.settings().clone()),
        }
    }

    /// Completes the TLS handshake of a connection whose first byte starts
    /// one; `None` when the connection was an ACME challenge, now answered.
    async fn accept(&self, tcp: TcpStream) -> std::io::Result<Option<Tls>> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
        let config = match &*self.0 {
            Kind::Files { config, .. } => config.clone(),
            Kind::Acme(acme) => match acme.challenge_config(&start.client_hello()) {
                Some(challenge) => {
                    let mut answered = start.into_stream(challenge).await?;
                    debug!("answered an ACME TLS-ALPN-01 challenge");
                    let _ = answered.shutdown().await;
                    return Ok(None);
                }
                None => acme.config(),
            },
        };
        start.into_stream(config).await.map(Some)
    }
}

/// A server configuration for one certificate chain and key, with the
/// `ring` provider. No ALPN: what comes inside is classified by its bytes,
/// and a client offering `h2` must fall back to HTTP/1.1, which it does
/// when the server names no protocol.
pub(crate) fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow!("the certificate file is not PEM: {err}"))?;
    if chain.is_empty() {
        return Err(anyhow!(
            "no certificate in the certificate file (want PEM: -----BEGIN CERTIFICATE-----)"
        ));
    }
    // The parser's error describes the PEM, not the key's bytes.
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| {
        anyhow!("no private key in the key file (want PEM: -----BEGIN PRIVATE KEY-----): {err}")
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|err| anyhow!("the key does not fit the certificate: {err}"))?;
    Ok(Arc::new(config))
}

/// The one crypto provider uptun builds.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What a connection on a TLS port turned out to be, before classifying.
pub(crate) enum Opened {
    /// A connection to classify: plain bytes, or what comes inside TLS.
    Socket(Socket),
    /// Nothing within the sniff timeout: a silent plain user.
    Silent(TcpStream),
    /// Nothing left to do: an ACME challenge answered, or the server's
    /// grace ran out.
    Done,
    /// The TLS handshake failed or took too long (already logged).
    Failed,
}

/// Looks at a connection's first byte (without taking it) and completes
/// the TLS handshake if it starts one. The wait for that byte is the sniff
/// timeout, as for any first bytes; the handshake gets the header timeout,
/// the bound on how long a request head may take.
pub(crate) async fn open(
    tcp: TcpStream,
    tls: &ServerTls,
    config: &Config,
    peer: SocketAddr,
    cut: &CancellationToken,
) -> Opened {
    let sniff = crate::route::sniff_timeout(&config.routes, 0, config.sniff_timeout);
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        peeked = timeout(sniff, tcp.peek(&mut first)) => peeked,
        _ = cut.cancelled() => {
            uptun_protocol::abort_tcp(tcp);
            return Opened::Done;
        }
    };
    match peeked {
        Err(_) => return Opened::Silent(tcp),
        // EOF and errors are the classifier's to see and count.
        Ok(Ok(0)) | Ok(Err(_)) => return Opened::Socket(Either::Left(tcp)),
        Ok(Ok(_)) if first[0] != HANDSHAKE_RECORD => return Opened::Socket(Either::Left(tcp)),
        Ok(Ok(_)) => {}
    }
    let limit = config.header_timeout;
    let accepted = tokio::select! {
        accepted = timeout(limit, tls.accept(tcp)) => accepted,
        _ = cut.cancelled() => return Opened::Done,
    };
    match accepted {
        Ok(Ok(Some(tls))) => Opened::Socket(Either::Right(Box::new(tls))),
        Ok(Ok(None)) => Opened::Done,
        Ok(Err(err)) => {
            debug!(%peer, %err, "TLS handshake failed");
            Opened::Failed
        }
        Err(_) => {
            debug!(%peer, "TLS handshake not complete within {}", seconds(limit));
            Opened::Failed
        }
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// What a `HUP` puts in force: the certificate files read again (a bad
/// file is logged and the old certificate stays). Turning TLS on or off,
/// or changing ACME's settings, takes a restart: ACME's state and renewal
/// live as long as the process.
pub fn reload(old: Option<&ServerTls>, now: &TlsSettings) -> Option<ServerTls> {
    let was = old.map(ServerTls::settings).unwrap_or_default();
    match (&was, now) {
        (TlsSettings::Files { .. }, TlsSettings::Files { cert, key }) => {
            match ServerTls::from_pem_files(cert, key) {
                Ok(tls) => {
                    tracing::info!(cert = %cert.display(), "HUP: TLS certificate reloaded");
                    Some(tls)
                }
                Err(err) => {
                    tracing::error!(
                        "HUP: TLS certificate not reloaded, the old one stays in force: {err:#}"
                    );
                    old.cloned()
                }
            }
        }
        (was, now) if was == now => old.cloned(),
        _ => {
            tracing::warn!("HUP: TLS turned on or off, or ACME settings changed: that takes effect only at restart");
            old.cloned()
        }
    }
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
