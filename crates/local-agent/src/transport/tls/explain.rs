//! What a failed TLS handshake means to the person running the agent: one
//! line saying what is wrong and what to pass, instead of rustls's
//! "invalid peer certificate: UnknownIssuer".

use rustls::pki_types::UnixTime;
use rustls::{CertificateError, Error};

use super::verify::Untrusted;

/// A handshake failure put into words.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Explained {
    pub text: String,
    /// A certificate problem: a mistake to fix, not something a retry
    /// will get past.
    pub certificate: bool,
}

const LAST_RESORT: &str =
    "--insecure skips the check, as a last resort: anyone on the path could then read the token";

/// Explains `err` from a handshake with `host` (the name checked against
/// the certificate); `None` when there is nothing to add to rustls's words.
pub(super) fn explain(err: &Error, host: &str) -> Option<Explained> {
    let certificate = |text: String| {
        Some(Explained {
            text,
            certificate: true,
        })
    };
    match err {
        Error::InvalidCertificate(cert) => certificate(certificate_problem(cert, host)),
        Error::InvalidMessage(_) => Some(Explained {
            text: format!(
                "{host} did not answer in TLS ({err}): if the server speaks plain HTTP on \
                 that port, use http:// instead of https://"
            ),
            certificate: false,
        }),
        _ => None,
    }
}

fn certificate_problem(err: &CertificateError, host: &str) -> String {
    let ours = format!("the server's certificate for {host}");
    match err {
        CertificateError::UnknownIssuer => untrusted(&ours, &Untrusted::Issuer(None)),
        CertificateError::Other(other) => match other.0.downcast_ref::<Untrusted>() {
            Some(why) => untrusted(&ours, why),
            None => rejected(&ours, err),
        },
        CertificateError::NotValidForNameContext { presented, .. } => wrong_name(host, presented),
        CertificateError::NotValidForName => wrong_name(host, &[]),
        CertificateError::ExpiredContext { time, not_after } => format!(
            "{ours} expired on {} (this machine's clock says {}): the server needs a renewed \
             certificate, or, if this clock is wrong, fix it",
            utc(*not_after),
            utc(*time)
        ),
        CertificateError::Expired => format!(
            "{ours} has expired: the server needs a renewed certificate, or, if this \
             machine's clock is wrong, fix it"
        ),
        CertificateError::NotValidYetContext { time, not_before } => format!(
            "{ours} is not valid until {} (this machine's clock says {}): if this clock is \
             behind, fix it; otherwise the certificate's start date is wrong",
            utc(*not_before),
            utc(*time)
        ),
        CertificateError::NotValidYet => format!(
            "{ours} is not valid yet: if this machine's clock is behind, fix it; otherwise \
             the certificate's start date is wrong"
        ),
        CertificateError::Revoked => {
            format!("{ours} has been revoked: the server needs a new certificate")
        }
        other => rejected(&ours, other),
    }
}

fn untrusted(ours: &str, why: &Untrusted) -> String {
    match why {
        Untrusted::SelfSigned => format!(
            "{ours} is self-signed, so nothing this machine trusts vouches for it: pass \
             --ca FILE with that certificate (PEM) to trust it; {LAST_RESORT}"
        ),
        Untrusted::Issuer(name) => {
            let by = match name {
                Some(name) => format!("{name:?}, a CA"),
                None => "a CA".to_string(),
            };
            format!(
                "{ours} is issued by {by} this machine does not trust: pass --ca FILE with \
                 that CA's certificate (PEM); {LAST_RESORT}"
            )
        }
        Untrusted::CaAsLeaf { self_signed } => {
            let what = match self_signed {
                true => "is self-signed and marked as a CA",
                false => "is marked as a CA",
            };
            format!(
                "{ours} {what} (basicConstraints CA:TRUE, as `openssl req -x509` makes by \
                 default), which is refused as a server's own even with --ca: give the server \
                 a certificate made with -addext basicConstraints=critical,CA:FALSE and pass \
                 that with --ca FILE, or one signed by a CA you pass with --ca FILE; \
                 {LAST_RESORT}"
            )
        }
    }
}

fn wrong_name(host: &str, presented: &[String]) -> String {
    const SHOWN: usize = 5;
    let plain: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
    let names = match plain.len() {
        0 => "no host name".to_string(),
        n if n <= SHOWN => plain.join(", "),
        n => format!("{} and {} more", plain[..SHOWN].join(", "), n - SHOWN),
    };
    format!(
        "the server's certificate is not valid for {host} (it names {names}): put the name \
         it was issued for in --server (as in https://NAME:PORT), or give the server a \
         certificate for {host}"
    )
}

/// A subject name as webpki presents it (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`), without the wrapping.
fn plain_name(presented: &str) -> &str {
    let inner = presented
        .strip_prefix("DnsName(")
        .or_else(|| presented.strip_prefix("IpAddress("))
        .and_then(|rest| rest.strip_suffix(')'));
    match inner {
        Some(name) => name.trim_matches('"'),
        None => presented,
    }
}

fn rejected(ours: &str, err: &CertificateError) -> String {
    format!(
        "{ours} was rejected ({err}): the server needs a certificate this machine can check; \
         {LAST_RESORT}"
    )
}

/// `2025-03-01 12:00:00 UTC` (the civil-from-days algorithm of
/// <http://howardhinnant.github.io/date_algorithms.html>).
fn utc(time: UnixTime) -> String {
    let secs = time.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::ServerName;
    use rustls::OtherError;

    use super::*;

    fn text(err: CertificateError) -> String {
        let explained = explain(&Error::InvalidCertificate(err), "tunnel.example.com").unwrap();
        assert!(explained.certificate);
        assert!(
            !explained.text.contains('\n'),
            "one line: {}",
            explained.text
        );
        explained.text
    }

    fn other(err: impl std::error::Error + Send + Sync + 'static) -> CertificateError {
        CertificateError::Other(OtherError(Arc::new(err)))
    }

    #[test]
    fn an_unknown_ca_names_it_and_asks_for_ca() {
        let t = text(other(Untrusted::Issuer(Some("uptun test CA".into()))));
        assert!(t.contains("issued by \"uptun test CA\", a CA this machine does not trust"));
        assert!(t.contains("--ca FILE") && t.contains("--insecure"), "{t}");
        let t = text(CertificateError::UnknownIssuer);
        assert!(
            t.contains("issued by a CA this machine") && t.contains("--ca"),
            "{t}"
        );
    }

    #[test]
    fn a_self_signed_certificate_is_called_that() {
        let t = text(other(Untrusted::SelfSigned));
        assert!(t.contains("for tunnel.example.com is self-signed"), "{t}");
        assert!(t.contains("--ca FILE with that certificate"), "{t}");
    }

    #[test]
    fn a_ca_certificate_as_the_servers_own_says_how_to_make_a_leaf() {
        let t = text(other(Untrusted::CaAsLeaf { self_signed: true }));
        assert!(t.contains("is self-signed and marked as a CA"), "{t}");
        assert!(t.contains("basicConstraints=critical,CA:FALSE"), "{t}");
        let t = text(other(Untrusted::CaAsLeaf { self_signed: false }));
        assert!(
            t.contains("for tunnel.example.com is marked as a CA"),
            "{t}"
        );
    }

    #[test]
    fn a_wrong_name_lists_the_names_it_has() {
        let t = text(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("tunnel.example.com").unwrap(),
            presented: vec![
                "DnsName(\"localhost\")".into(),
                "IpAddress(127.0.0.1)".into(),
                "UniformResourceIdentifier(\"x:y\")".into(),
            ],
        });
        assert!(
            t.contains(
                "not valid for tunnel.example.com (it names localhost, 127.0.0.1, \
                 UniformResourceIdentifier(\"x:y\"))"
            ),
            "{t}"
        );
        assert!(t.contains("--server"), "{t}");
        let many: Vec<String> = (0..8).map(|i| format!("n{i}.example")).collect();
        let t = text(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("x.example").unwrap(),
            presented: many,
        });
        assert!(t.contains("n4.example and 3 more"), "{t}");
        assert!(text(CertificateError::NotValidForName).contains("no host name"));
    }

    #[test]
    fn expiry_shows_both_dates_and_both_fixes() {
        let t = text(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_740_830_400)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(951_782_399)),
        });
        assert!(t.contains("expired on 2000-02-28 23:59:59 UTC"), "{t}");
        assert!(t.contains("clock says 2025-03-01 12:00:00 UTC"), "{t}");
        assert!(
            t.contains("renewed certificate") && t.contains("fix it"),
            "{t}"
        );
        let t = text(CertificateError::NotValidYetContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(0)),
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(951_868_800)),
        });
        assert!(t.contains("not valid until 2000-03-01 00:00:00 UTC"), "{t}");
        assert!(t.contains("1970-01-01 00:00:00 UTC"), "{t}");
    }

    #[test]
    fn other_rejections_keep_rustls_words_and_offer_the_last_resort() {
        let t = text(CertificateError::BadSignature);
        assert!(t.contains("rejected (") && t.contains("--insecure"), "{t}");
        let t = text(CertificateError::Revoked);
        assert!(t.contains("revoked"), "{t}");
    }

    #[test]
    fn plain_http_on_a_tls_url_is_not_a_certificate_problem() {
        let err = Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let explained = explain(&err, "localhost").unwrap();
        assert!(!explained.certificate);
        assert!(explained.text.contains("use http://"), "{}", explained.text);
        assert_eq!(explain(&Error::HandshakeNotComplete, "localhost"), None);
    }
}
