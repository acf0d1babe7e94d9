//! Loading certificates: mistakes name the file and what is wrong (never
//! the key), and `HUP` keeps the old certificate when the new one is bad.

use std::path::Path;

use super::*;

/// A self-signed certificate for `name` and its key, as PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes `cert.pem` and `key.pem` into `dir`; returns their paths.
fn write(dir: &Path, cert: &str, key: &str) -> TlsSettings {
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    TlsSettings::Files {
        cert: cert_path,
        key: key_path,
    }
}

fn load_error(settings: &TlsSettings) -> String {
    format!("{:#}", settings.load().unwrap_err())
}

#[test]
fn a_good_pair_loads_and_shows_only_its_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("tunnel.example.com");
    let settings = write(dir.path(), &cert, &key);
    let tls = settings.load().unwrap().expect("TLS on");
    assert_eq!(tls.settings(), settings);
    let shown = format!("{tls:?}");
    assert!(
        shown.contains("cert.pem") && !shown.contains("PRIVATE"),
        "{shown}"
    );
}

#[test]
fn each_mistake_names_its_file_and_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("tunnel.example.com");
    let (_, other_key) = self_signed("tunnel.example.com");
    let key_body = key.lines().nth(1).unwrap().to_string();
    let cases = [
        (
            cert.as_str(),
            other_key.as_str(),
            "does not fit the certificate",
        ),
        ("", key.as_str(), "no certificate in the certificate file"),
        (
            key.as_str(),
            key.as_str(),
            "no certificate in the certificate file",
        ),
        (
            cert.as_str(),
            "not a key\n",
            "no private key in the key file",
        ),
        (
            cert.as_str(),
            cert.as_str(),
            "no private key in the key file",
        ),
    ];
    for (cert_text, key_text, wanted) in cases {
        let err = load_error(&write(dir.path(), cert_text, key_text));
        assert!(err.contains(wanted), "wanted {wanted:?} in: {err}");
        assert!(err.contains("cert.pem") && err.contains("key.pem"), "{err}");
        assert!(!err.contains(&key_body), "the key leaked: {err}");
    }
    let missing = TlsSettings::Files {
        cert: dir.path().join("nowhere.pem"),
        key: dir.path().join("key.pem"),
    };
    let err = load_error(&missing);
    assert!(
        err.contains("could not read the TLS certificate") && err.contains("nowhere.pem"),
        "{err}"
    );
}

#[test]
fn hup_takes_a_good_new_pair_and_keeps_the_old_one_over_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("old.example.com");
    let settings = write(dir.path(), &cert, &key);
    let old = settings.load().unwrap().unwrap();

    // A half-written renewal: the certificate is there, the key is not yet.
    std::fs::write(dir.path().join("key.pem"), "").unwrap();
    let kept = reload(Some(&old), &settings).expect("still TLS");
    assert!(Arc::ptr_eq(&kept.0, &old.0), "the old certificate stays");

    let (cert, key) = self_signed("new.example.com");
    write(dir.path(), &cert, &key);
    let new = reload(Some(&old), &settings).expect("still TLS");
    assert!(
        !Arc::ptr_eq(&new.0, &old.0),
        "the new certificate is in force"
    );

    // Turning TLS off (or on) takes a restart.
    let still = reload(Some(&old), &TlsSettings::Off).expect("still TLS");
    assert!(Arc::ptr_eq(&still.0, &old.0));
    assert!(reload(None, &settings).is_none());
}
