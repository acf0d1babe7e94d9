//! The two ways the server's certificate is checked: rustls's WebPKI
//! verifier, with an untrusted issuer named in its error; or, under
//! `--insecure`, not at all.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};

use super::der;

/// Why a chain is untrusted, for the message: rustls says only
/// "UnknownIssuer", and "pass --ca" is no help without knowing which CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Untrusted {
    /// The certificate issued itself: only trusting it directly helps.
    SelfSigned,
    /// Issued by this CA (its common name), which no trusted root vouches for.
    Issuer(Option<String>),
    /// The server's own certificate is marked as a CA (basicConstraints
    /// CA:TRUE), which WebPKI refuses even when trusted; `openssl req -x509`
    /// makes such self-signed certificates by default.
    CaAsLeaf { self_signed: bool },
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::SelfSigned => write!(f, "self-signed certificate"),
            Untrusted::Issuer(Some(name)) => write!(f, "unknown issuer {name:?}"),
            Untrusted::Issuer(None) => write!(f, "unknown issuer"),
            Untrusted::CaAsLeaf { .. } => write!(f, "a CA certificate as the server's own"),
        }
    }
}

impl std::error::Error for Untrusted {}

/// The WebPKI verifier, telling a self-signed certificate from one by an
/// unknown CA.
#[derive(Debug)]
pub(super) struct Checked(pub Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|err| match why_untrusted(&err, end_entity, intermediates) {
                Some(why) => {
                    Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(why))))
                }
                None => err,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// What rustls's error means for a chain nobody trusts, if that is what it
/// is about: a self-signed leaf alone, or the issuer of the last
/// certificate sent (the one a trusted root should have signed).
fn why_untrusted(
    err: &Error,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Option<Untrusted> {
    let Error::InvalidCertificate(err) = err else {
        return None;
    };
    let self_signed = intermediates.is_empty() && der::self_signed(end_entity);
    match err {
        // webpki's own errors reach us boxed, shown by their variant's
        // name; a rename only costs the plainer message.
        CertificateError::Other(other) if other.0.to_string() == "CaUsedAsEndEntity" => {
            Some(Untrusted::CaAsLeaf { self_signed })
        }
        CertificateError::UnknownIssuer if self_signed => Some(Untrusted::SelfSigned),
        CertificateError::UnknownIssuer => {
            let top = intermediates.last().unwrap_or(end_entity);
            Some(Untrusted::Issuer(der::issuer_name(top)))
        }
        // A self-signed leaf that no root vouched for, though one with its
        // name was tried (Debian's snakeoil certificate names the host):
        // the failed signature check is about that other root.
        CertificateError::BadSignature
        | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            if self_signed =>
        {
            Some(Untrusted::SelfSigned)
        }
        _ => None,
    }
}

/// `--insecure`: any certificate is accepted for any name. The handshake's
/// signatures are still checked against the certificate presented, so the
/// connection is at least with whoever holds that certificate's key.
#[derive(Debug)]
pub(super) struct Unchecked(pub Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
