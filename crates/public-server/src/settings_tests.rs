//! Layering: flags over the file over the defaults; the example file; the
//! tokens never shown.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn resolved(args: &[&str]) -> Resolved {
    let mut all = vec!["public-server"];
    all.extend_from_slice(args);
    Settings::try_parse_from(all).unwrap().resolve().unwrap()
}

/// A config file in a fresh temporary directory.
fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uptun.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

#[test]
fn debug_of_flags_and_config_hides_every_token() {
    let args = [
        "public-server",
        "--agent-token",
        "agent-s3cret",
        "--client-token",
        "client-s3cret",
        "--admin-token",
        "admin-s3cret",
    ];
    let settings = Settings::try_parse_from(args).unwrap();
    let config = settings.resolve().unwrap().config;
    assert!(config.tokens.agents[0].token.matches("agent-s3cret"));
    for shown in [
        format!("{settings:?}"),
        format!("{config:?}"),
        format!("{config:#?}"),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[test]
fn tokens_repeat_and_split_at_semicolons() {
    let config = resolved(&[
        "--agent-token",
        "a",
        "--agent-token",
        "b:web,dev-*",
        "--client-token",
        "c:ssh;d",
    ])
    .config;
    let (agents, clients) = (&config.tokens.agents, &config.tokens.clients);
    assert_eq!((agents.len(), clients.len()), (2, 2));
    assert!(agents[1].token.matches("b") && agents[1].channels.allows("dev-1"));
    assert!(!agents[1].channels.allows("ssh"));
    assert!(clients[0].channels.allows("ssh") && !clients[0].channels.allows("web"));
    assert_eq!(clients[1].channels, crate::Channels::All);
}

#[test]
fn the_file_fills_what_flags_leave_and_flags_win() {
    let (_dir, path) = file(
        r#"
        listen = "127.0.0.1:9999"
        agent_tokens = ["from-file", { token = "scoped", channels = ["git-*"] }]
        connect_timeout = "3s"
        sniff_timeout = "2s"
        window = 1048576
        grace = "3s"
        [idle_timeout]
        ssh = "1m"
        [[route]]
        prefix = "PING"
        channel = "redis"
        "#,
    );
    let from_file = resolved(&["--config", &path]);
    assert_eq!(from_file.listen, "127.0.0.1:9999");
    assert_eq!(from_file.file_routes, Some(1));
    let (config, from_file) = (from_file.config, (from_file.grace,));
    assert_eq!(config.connect_timeout, Duration::from_secs(3));
    assert_eq!(config.mux.window, 1_048_576);
    assert_eq!(from_file.0, Duration::from_secs(3));
    assert_eq!(config.idle_timeout("ssh"), Some(Duration::from_secs(60)));
    assert!(config.tokens.agents[0].token.matches("from-file"));
    assert!(!config.tokens.agents[1].channels.allows("web"));
    assert_eq!(config.routes.len(), 1);

    let flags = resolved(&[
        "--config",
        &path,
        "--connect-timeout",
        "7s",
        "--agent-token",
        "from-flag",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(flags.listen, "127.0.0.1:0");
    assert_eq!(flags.config.connect_timeout, Duration::from_secs(7));
    assert_eq!(flags.config.tokens.agents.len(), 1);
    assert!(flags.config.tokens.agents[0].token.matches("from-flag"));
    // What the flags leave, the file still says.
    assert_eq!(flags.config.sniff_timeout, Duration::from_secs(2));
}

#[test]
fn without_routes_the_channel_settings_shape_the_defaults() {
    let (_dir, path) = file("http_channel = \"site\"\n");
    let config = resolved(&["--config", &path, "--ssh-channel", "shell"]).config;
    assert_eq!(
        config.routes,
        crate::route::default_rules("site", "shell", "tcp")
    );
    let none = resolved(&[]);
    assert_eq!(none.file_routes, None);
    assert!(none.config.tokens.agents.is_empty(), "main generates one");
}

fn error(text: &str) -> (ConfigError, String) {
    let (_dir, path) = file(text);
    let settings = Settings::try_parse_from(["public-server", "--config", &path]).unwrap();
    let err = settings.resolve().unwrap_err();
    let shown = err.to_string();
    assert!(shown.starts_with(&path), "{shown}");
    (err, shown)
}

#[test]
fn mistakes_name_their_line_and_what_is_wrong() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "listen = \"x\"\nconect_timeout = \"1s\"\n",
            2,
            "unknown field",
        ),
        ("sniff_timeout = \"2 weeks\"\n", 1, "unknown unit"),
        (
            "\n\n[[route]]\nregex = '(unclosed'\nchannel = \"x\"\n",
            4,
            "bad regex",
        ),
        (
            "[[route]]\nprefix = \"A\"\nchannel = \"a b\"\n",
            3,
            "not a channel name",
        ),
        (
            "[[route]]\nprefix = \"A\"\nchannel = \"git-$1\"\n",
            3,
            "no regex",
        ),
        (
            "[[route]]\nregex = 'a(b)'\nchannel = \"x-$2\"\n",
            3,
            "no such group",
        ),
        ("[[route]]\nprefix = \"A\"\n", 1, "no action"),
        (
            "[[route]]\nhttp = true\nclose = true\nchannel = \"x\"\n",
            3,
            "cannot go with",
        ),
        (
            "[[route]]\nhost = \"a\"\nsilent = true\nchannel = \"x\"\n",
            3,
            "cannot go with other",
        ),
        (
            "[[route]]\nhttp = true\nsniff_timeout = \"1s\"\nchannel = \"x\"\n",
            3,
            "silent = true",
        ),
        (
            "http_channel = \"w\"\n[[route]]\nchannel = \"x\"\n",
            1,
            "default routes",
        ),
        ("window = 12\n", 1, "out of range"),
        (
            "[[route]]\nmethod = \"post\"\nchannel = \"x\"\n",
            2,
            "capitals",
        ),
        ("agent_tokens = [\"s3cret:bad list\"]\n", 1, "invalid"),
        ("[idle_timeout]\nssh = \"0s\"\n", 2, "out of range"),
        ("\nadmin_token = \"\"\n", 2, "admin token is empty"),
    ];
    for (text, line, needle) in cases {
        let (err, shown) = error(text);
        assert_eq!(err.line, *line, "{shown}\nfor:\n{text}");
        assert!(shown.contains(needle), "{shown} lacks {needle:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

#[test]
fn an_unreadable_file_says_so() {
    let settings =
        Settings::try_parse_from(["public-server", "--config", "/nonexistent/uptun.toml"]).unwrap();
    let shown = settings.resolve().unwrap_err().to_string();
    assert!(
        shown.contains("/nonexistent/uptun.toml: cannot read"),
        "{shown}"
    );
}

#[test]
fn the_annotated_example_parses_and_routes_as_it_says() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/uptun.toml");
    let path = example.to_string_lossy().into_owned();
    let resolved = resolved(&["--config", &path]);
    assert_eq!(resolved.file_routes, Some(8));
    let config = resolved.config;
    assert_eq!(config.tokens.agents.len(), 2);
    assert!(config.tokens.clients[0].channels.allows("ssh"));
    use crate::route::{decide, Decision, Facts, Routed};
    let channel = |bytes: &[u8]| match decide(
        &config.routes,
        &Facts {
            bytes,
            complete: true,
            ..Facts::default()
        },
    ) {
        Decision::Act(Routed::Channel(to)) => to.channel,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        channel(b"0032git-upload-pack /alpha.git\0host=x\0"),
        "git-alpha"
    );
    assert_eq!(channel(b"SSH-2.0-OpenSSH"), "ssh");
    assert_eq!(channel(b"\x16\x03\x01"), "tcp");
}

#[test]
fn tls_comes_from_flags_or_the_file_beside_it() {
    use crate::tls::TlsSettings;
    let flags = resolved(&["--tls-cert", "/etc/c.pem", "--tls-key", "/etc/k.pem"]);
    let files = |cert: &str, key: &str| TlsSettings::Files {
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    };
    assert_eq!(flags.tls, files("/etc/c.pem", "/etc/k.pem"));
    assert_eq!(resolved(&[]).tls, TlsSettings::Off);

    // Relative paths in a file are the file's neighbours; a flag still wins.
    let (dir, path) = file("tls_cert = \"c.pem\"\ntls_key = \"/abs/k.pem\"\n");
    let from_file = resolved(&["--config", &path]).tls;
    let beside = dir.path().join("c.pem");
    assert_eq!(from_file, files(beside.to_str().unwrap(), "/abs/k.pem"));
    let mixed = resolved(&["--config", &path, "--tls-key", "flag.pem"]).tls;
    assert_eq!(mixed, files(beside.to_str().unwrap(), "flag.pem"));
}

#[test]
fn acme_settings_layer_like_the_rest() {
    let (_dir, path) = file(
        "acme_domains = [\"a.example.com\", \"b.example.com\"]\nacme_cache = \"/var/lib/uptun\"\nacme_contacts = [\"mailto:ops@example.com\"]\n",
    );
    let crate::tls::TlsSettings::Acme(acme) = resolved(&["--config", &path]).tls else {
        panic!("ACME settings from the file");
    };
    assert_eq!(acme.domains, ["a.example.com", "b.example.com"]);
    assert_eq!(acme.directory, crate::acme::LETS_ENCRYPT);
    assert_eq!(acme.cache, PathBuf::from("/var/lib/uptun"));
    assert_eq!(acme.contacts, ["mailto:ops@example.com"]);
    let flags = [
        "--config",
        &path,
        "--acme-domain",
        "c.example.com",
        "--acme-directory",
        "https://127.0.0.1:14000/dir",
    ];
    let crate::tls::TlsSettings::Acme(acme) = resolved(&flags).tls else {
        panic!("ACME settings from the flags");
    };
    assert_eq!(acme.domains, ["c.example.com"]);
    assert_eq!(acme.directory, "https://127.0.0.1:14000/dir");
}

#[test]
fn tls_mistakes_say_what_to_add_or_drop() {
    let refused = |args: &[&str]| {
        let mut all = vec!["public-server"];
        all.extend_from_slice(args);
        let settings = Settings::try_parse_from(all).unwrap();
        settings.resolve().unwrap_err().to_string()
    };
    let err = refused(&["--tls-cert", "c.pem"]);
    assert!(err.starts_with("--tls-cert needs --tls-key"), "{err}");
    let err = refused(&["--tls-key", "k.pem"]);
    assert!(err.contains("needs --tls-cert"), "{err}");
    let err = refused(&["--acme-domain", "a.example.com"]);
    assert!(err.contains("needs --acme-cache DIR"), "{err}");
    let both = [
        "--tls-cert",
        "c.pem",
        "--tls-key",
        "k.pem",
        "--acme-domain",
        "a.example.com",
    ];
    assert!(refused(&both).contains("not both"));

    let flag = Settings::try_parse_from(["public-server", "--acme-domain", "*.example.com"]);
    let err = flag.unwrap_err().to_string();
    assert!(err.contains("wildcards need DNS-01"), "{err}");
    let flag = Settings::try_parse_from(["public-server", "--acme-contact", "ops@example.com"]);
    assert!(flag
        .unwrap_err()
        .to_string()
        .contains("mailto:you@example.com"));

    let (err, shown) = error("\nacme_domains = [\"ok.example.com\", \"10.0.0.1\"]\n");
    assert_eq!(err.line, 2, "{shown}");
    assert!(shown.contains("not a DNS name"), "{shown}");
}
