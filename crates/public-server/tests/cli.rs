//! The command line as a person meets it: help with examples, version, and
//! a clear line when the port is taken.

use std::process::Command;

fn server(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_public-server"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_shows_examples_and_every_flag() {
    let out = server(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Examples:",
        "--listen",
        "--agent-token",
        "--client-token",
        "--admin-token",
        "UPTUN_ADMIN_TOKEN",
        "--ping-misses",
        "--http-channel",
        "--tcp-channel",
        "UPTUN_AGENT_TOKEN",
        "PORT",
        "KEYS_<NAME>=KEY",
        "docs/rhost-compat.md",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn version_is_printed() {
    let out = server(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("public-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = server(&["--listen", &addr, "--agent-token", "t"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("could not listen on {addr}")) && err.contains("in use"),
        "{err}"
    );
}

/// Bad values exit 2 before anything is bound, with the range in the message.
/// `--ping-interval 0` used to be accepted and panic every link's ping task.
#[test]
fn out_of_range_flags_exit_2_with_the_range() {
    for (flag, value, needle) in [
        ("--ping-interval", "0", "use 100ms to 50s"),
        ("--ping-interval", "60s", "use 100ms to 50s"),
        ("--ping-interval", "99999999999999999999999h", "too long"),
        ("--ping-misses", "0", "2..=10"),
        ("--ping-misses", "11", "2..=10"),
        ("--window", "1", "16384..=67108864"),
        ("--sniff-timeout", "0", "use 10ms to 60s"),
        ("--header-timeout", "0ms", "use 100ms to 600s"),
        ("--connect-timeout", "0", "use 100ms to 600s"),
        ("--idle-timeout", "ssh", "CHANNEL=DURATION"),
        ("--idle-timeout", "ssh=0", "use 1s to"),
        ("--idle-timeout", "a b=5s", "not a channel name"),
        ("--max-unclassified", "0", "1..=1000000"),
        ("--max-unclassified-per-source", "0", "1..=1000000"),
    ] {
        let out = server(&["--listen", "127.0.0.1:0", "--agent-token", "t", flag, value]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(needle),
            "{flag} {value}: {err}"
        );
    }
}

#[test]
fn check_config_accepts_the_example_and_names_the_line_of_a_mistake() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/uptun.toml");
    let out = server(&["--config", example, "--check-config"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("uptun.toml: ok (8 routes)"), "{said}");

    let dir = std::env::temp_dir().join(format!("uptun-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "agent_tokens = [\"s3cret\"]\n\n[[route]]\nregex = 'git-([a-z]+'\nchannel = \"git-$1\"\n",
    )
    .unwrap();
    let out = server(&["--config", broken.to_str().unwrap(), "--check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("broken.toml:4:"), "{err}");
    assert!(err.contains("route 1: bad regex"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    // Without a file there is nothing to check: clap says what is missing.
    let out = server(&["--check-config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn the_environment_overrides_the_config_file() {
    let dir = std::env::temp_dir().join(format!("uptun-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("uptun.toml");
    // A listen address that cannot be bound here: only the environment's
    // may win, and then the server starts and says where it listens.
    std::fs::write(&file, "listen = \"192.0.2.1:1\"\nagent_tokens = [\"t\"]\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_public-server"))
        .args(["--config", file.to_str().unwrap()])
        .env("UPTUN_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    // Lines until the listening one, or until the server exits (EOF).
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        if n == 0 || line.contains("listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(line.contains("listening addr=127.0.0.1:"), "{line}");
}

/// A certificate that does not load stops the server before it serves
/// anyone, with one line naming the files; `--check-config` says so too.
#[test]
fn a_certificate_that_does_not_load_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let tls = ["--tls-cert", cert, "--tls-key", key];
    let out = server(&[&["--listen", "127.0.0.1:0", "--agent-token", "t"][..], &tls].concat());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no certificate in the certificate file") && err.contains(cert),
        "{err}"
    );
    let config = dir.path().join("uptun.toml");
    std::fs::write(&config, "").unwrap();
    let config = config.to_str().unwrap();
    let checked = server(&[&["--config", config, "--check-config"][..], &tls].concat());
    assert_eq!(checked.status.code(), Some(2));
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(
        err.contains("no certificate in the certificate file"),
        "{err}"
    );
}

/// A bad `KEYS_*` variable stops the server before it binds, exit 2, with
/// the variable named and its value never shown.
#[test]
fn a_bad_legacy_key_variable_exits_2_naming_it() {
    for (name, value, needle) in [
        ("KEYS_SSH", "", "KEYS_SSH is empty, which would let anyone"),
        (
            "KEYS_bad/name",
            "v4lue-s3cret",
            "KEYS_bad/name does not name a legacy channel",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_public-server"))
            .args(["--listen", "127.0.0.1:0", "--agent-token", "t"])
            .env(name, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}

/// The server says which legacy channels it serves (paths, never keys) at
/// start, and again when `HUP` changes them: the keys come from the file
/// and the environment each time the settings are read.
#[test]
fn legacy_channels_are_logged_at_start_and_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uptun.toml");
    let write = |keys: &str| {
        let text = format!(
            "listen = \"127.0.0.1:0\"\nagent_tokens = [\"t\"]\n[legacy]\nkeys = {{ {keys} }}\n"
        );
        std::fs::write(&file, text).unwrap();
    };
    write("\"/\" = \"file-s3cret\"");
    let mut child = Command::new(env!("CARGO_BIN_EXE_public-server"))
        .args(["--config", file.to_str().unwrap()])
        .env("KEYS_SSH", "env-s3cret")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = Log::of(child.stderr.take().unwrap());
    log.wait_for("rhost legacy links on for /, /ssh");
    write("\"/\" = \"file-s3cret\", \"/git\" = \"git-s3cret\"");
    hup(&child);
    log.wait_for("HUP: rhost legacy links now on for /, /git, /ssh");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nagent_tokens = [\"t\"]\n").unwrap();
    hup(&child);
    // The environment's key stays when the file drops its own.
    log.wait_for("HUP: rhost legacy links now on for /ssh");
    let _ = child.kill();
    let _ = child.wait();
    let all = log.rest();
    assert!(!all.contains("s3cret"), "{all}");
}

fn hup(child: &std::process::Child) {
    let pid = child.id().to_string();
    let status = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(status.success());
}

/// A child's stderr, read by a thread, so a wait can give up.
struct Log {
    lines: std::sync::mpsc::Receiver<String>,
    seen: std::cell::RefCell<String>,
}

impl Log {
    fn of(stderr: std::process::ChildStderr) -> Log {
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Log {
            lines,
            seen: Default::default(),
        }
    }

    /// Waits up to 10 s for a line holding `needle`.
    fn wait_for(&self, needle: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.borrow_mut().push_str(&(line + "\n"));
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no line with {needle:?} in:\n{}", self.seen.borrow()),
            }
        }
    }

    /// Everything read so far and whatever is left once the child is gone.
    fn rest(&self) -> String {
        let timeout = std::time::Duration::from_secs(10);
        while let Ok(line) = self.lines.recv_timeout(timeout) {
            self.seen.borrow_mut().push_str(&(line + "\n"));
        }
        self.seen.borrow().clone()
    }
}
