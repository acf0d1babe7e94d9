//! A real TLS target: `openssl s_server -WWW` with a fresh self-signed
//! certificate for one name, serving the files of its own directory; and a
//! throwaway CA with a leaf certificate, for TLS servers in front of ours.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::procs::{have, run_bounded, skip, tempdir};
use crate::{wait_for, WAIT};

pub struct TlsTarget {
    pub addr: SocketAddr,
    /// The certificate, which is its own CA (`curl --cacert`).
    pub cert: PathBuf,
    pub dir: tempdir::Dir,
    child: Child,
}

/// A target whose certificate names `name` (`*.example.com` works); `None`
/// (after saying why) when openssl is not installed.
pub async fn start(name: &str) -> Option<TlsTarget> {
    if !have("openssl") {
        skip("openssl is not installed; .ci/run installs it");
        return None;
    }
    let dir = tempdir::Dir::new();
    let out = run_bounded(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-keyout", "key.pem", "-out", "cert.pem", "-subj"])
            .arg(format!("/CN={name}"))
            .arg("-addext")
            .arg(format!("subjectAltName=DNS:{name}"))
            .current_dir(dir.path()),
        WAIT,
    );
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = dir.path().join("s_server.out");
    let child = Command::new("openssl")
        .args(["s_server", "-accept", "127.0.0.1:0", "-WWW"])
        .args(["-cert", "cert.pem", "-key", "key.pem"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    // Port 0 is fine for s_server: it prints `ACCEPT 127.0.0.1:PORT`.
    let addr = wait_for("openssl s_server to listen", WAIT, || async {
        let printed = std::fs::read_to_string(&stdout).ok()?;
        let line = printed.lines().find_map(|l| l.strip_prefix("ACCEPT "))?;
        line.trim().parse().ok()
    })
    .await;
    Some(TlsTarget {
        addr,
        cert: dir.path().join("cert.pem"),
        dir,
        child,
    })
}

impl TlsTarget {
    /// Serves `bytes` at `/NAME`.
    pub fn put(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`make_ca_and_leaf`] and [`make_self_signed`] write into their
/// directory: the server's certificate and key, and the certificate a
/// client passes as `--ca` to trust it (the CA, or the self-signed leaf).
pub const LEAF: &str = "leaf.pem";
pub const LEAF_KEY: &str = "leaf.key";
pub const TRUST: &str = "trust.pem";
/// The CA's common name, which an agent that does not trust it names.
pub const CA_NAME: &str = "uptun test CA";

/// Runs `openssl ARGS` in `dir`; panics with its stderr if it fails. The
/// caller checks that openssl is installed.
fn openssl(dir: &Path, args: &[&str]) {
    let out = run_bounded(Command::new("openssl").args(args).current_dir(dir), WAIT);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// What a real server's certificate has: the name in subjectAltName, not
/// a CA, for TLS servers.
fn leaf_extensions(name: &str) -> String {
    format!(
        "subjectAltName=DNS:{name}\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
}

/// A throwaway CA named [`CA_NAME`] (`trust.pem`) and a leaf for `name`
/// signed by it (`leaf.pem`, `leaf.key`), in `dir`.
pub fn make_ca_and_leaf(dir: &Path, name: &str) {
    let ca_subject = format!("/CN={CA_NAME}");
    let ca_out = [
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        TRUST,
        "-subj",
        &ca_subject,
    ];
    openssl(dir, &[&["req", "-x509"], &EC[..], &ca_out[..]].concat());
    let leaf_subject = format!("/CN={name}");
    let leaf_out = [
        "-keyout",
        LEAF_KEY,
        "-out",
        "leaf.csr",
        "-subj",
        &leaf_subject,
    ];
    openssl(dir, &[&["req"], &EC[..], &leaf_out[..]].concat());
    std::fs::write(dir.join("leaf.ext"), leaf_extensions(name)).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            TRUST,
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            LEAF,
        ],
    );
}

/// A self-signed leaf for `name` (`leaf.pem`, `leaf.key`, and `trust.pem`,
/// the same certificate), made the way that works with `--ca`:
/// `basicConstraints=critical,CA:FALSE`.
pub fn make_self_signed(dir: &Path, name: &str) {
    let subject = format!("/CN={name}");
    let out = [
        "-days", "2", "-keyout", LEAF_KEY, "-out", LEAF, "-subj", &subject,
    ];
    let mut args = [&["req", "-x509"], &EC[..], &out[..]].concat();
    let extensions: Vec<String> = leaf_extensions(name).lines().map(str::to_string).collect();
    for extension in &extensions {
        args.extend(["-addext", extension.as_str()]);
    }
    openssl(dir, &args);
    std::fs::copy(dir.join(LEAF), dir.join(TRUST)).unwrap();
}
