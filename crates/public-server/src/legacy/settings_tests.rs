//! The legacy settings: `KEYS_*` as rhost read them, the `[legacy]` table,
//! their layering, and keys never shown.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config_file::ConfigError;
use crate::legacy::{LegacyConfig, LegacyPath};
use crate::settings::Settings;

fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    let pairs = pairs.iter().map(|(n, v)| (n.into(), v.into()));
    pairs.collect()
}

fn resolve(args: &[&str], vars: &[(&str, &str)]) -> Result<LegacyConfig, ConfigError> {
    let all = [&["public-server"], args].concat();
    let settings = Settings::try_parse_from(all).unwrap();
    settings
        .resolve_with_env(env(vars))
        .map(|r| r.config.legacy)
}

/// A config file in a fresh temporary directory.
fn file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("uptun.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_string_lossy().into_owned())
}

fn named(name: &str) -> LegacyPath {
    LegacyPath::Named(name.into())
}

/// Whether `config` holds exactly `key` for `path`.
fn has(config: &LegacyConfig, path: &LegacyPath, key: &str) -> bool {
    config.key(path).is_some_and(|k| k.matches(key))
}

#[test]
fn keys_variables_name_their_channels_lower_cased() {
    let config = resolve(
        &[],
        &[
            ("PATH", "/usr/bin"),
            ("KEYS_", "root-key"),
            ("KEYS_SSH", "admin"),
            ("KEYS_Dev-1", "dev-key"),
            // Not ours: the prefix is KEYS_, in capitals, as rhost read it.
            ("keys_web", "ignored"),
            ("KEYSWEB", "ignored"),
        ],
    )
    .unwrap();
    assert!(config.enabled());
    assert!(has(&config, &LegacyPath::Root, "root-key"));
    assert!(has(&config, &named("ssh"), "admin"));
    assert!(has(&config, &named("dev-1"), "dev-key"));
    assert_eq!(config.keys.len(), 3);
    assert_eq!(config.paths(), "/, /dev-1, /ssh");
}

#[test]
fn without_keys_legacy_is_off_with_the_defaults() {
    let config = resolve(&[], &[("HOME", "/root")]).unwrap();
    assert!(!config.enabled());
    assert_eq!(config.paths(), "");
    assert_eq!(config.linger, Duration::from_secs(30));
    assert_eq!(config.root_channels, ["web", "ssh", "tcp"]);
}

#[test]
fn a_bad_variable_is_named_without_its_value() {
    for name in [
        "KEYS_bad/name",
        "KEYS_a b",
        "KEYS_ÄÖ",
        // The Kelvin sign lower-cases to `k` in Unicode, not in ASCII.
        "KEYS_\u{212A}",
    ] {
        let shown = resolve(&[], &[(name, "v4lue-s3cret")])
            .unwrap_err()
            .to_string();
        assert!(shown.starts_with(name), "{shown}");
        assert!(shown.contains("write KEYS_NAME=KEY"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    use std::os::unix::ffi::OsStringExt;
    let raw = OsString::from_vec(b"KEYS_\xff".to_vec());
    let settings = Settings::try_parse_from(["public-server"]).unwrap();
    let err = settings
        .resolve_with_env([(raw, OsString::from("v4lue-s3cret"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not name a legacy channel"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn an_empty_or_unreadable_key_is_refused_with_the_reason() {
    let err = resolve(&[], &[("KEYS_SSH", "")]).unwrap_err().to_string();
    assert!(err.starts_with("KEYS_SSH is empty"), "{err}");
    assert!(
        err.contains("anyone") && err.ends_with("or unset KEYS_SSH"),
        "{err}"
    );
    let err = resolve(&[], &[("KEYS_", "")]).unwrap_err().to_string();
    assert!(err.contains("rhost's default key for / was empty"), "{err}");

    use std::os::unix::ffi::OsStringExt;
    let value = OsString::from_vec(b"s3cret\xff".to_vec());
    let settings = Settings::try_parse_from(["public-server"]).unwrap();
    let err = settings
        .resolve_with_env([("KEYS_SSH".into(), value)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("KEYS_SSH is not UTF-8"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn two_variables_for_one_channel_are_refused() {
    let err = resolve(
        &[],
        &[("KEYS_SSH", "one-s3cret"), ("KEYS_ssh", "two-s3cret")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("KEYS_SSH and KEYS_ssh both set the key of legacy channel /ssh"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn the_file_says_keys_linger_and_root_channels() {
    let (_dir, path) = file(
        r#"
        [legacy]
        keys = { "/" = "root-key", "/git" = "git-key" }
        linger = "2s"
        root_channels = ["site", "shell"]
        "#,
    );
    let config = resolve(&["--config", &path], &[]).unwrap();
    assert!(has(&config, &LegacyPath::Root, "root-key"));
    assert!(has(&config, &named("git"), "git-key"));
    assert_eq!(config.paths(), "/, /git");
    assert_eq!(config.linger, Duration::from_secs(2));
    assert_eq!(config.root_channels, ["site", "shell"]);
    assert_eq!(config.channels(&LegacyPath::Root), ["site", "shell"]);
}

#[test]
fn legacy_mistakes_name_their_line_and_column() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "[legacy]\nkeys = { \"/ok\" = \"k\", \"ssh\" = \"s3cret\" }\n",
            (2, 23),
            "write it as rhost's path, \"/\" or \"/ssh\"",
        ),
        (
            "[legacy]\nkeys = { \"/a b\" = \"s3cret\" }\n",
            (2, 10),
            "not a legacy channel",
        ),
        (
            "[legacy]\nkeys = { \"/a/b\" = \"s3cret\" }\n",
            (2, 10),
            "not a legacy channel",
        ),
        (
            "[legacy]\n\nkeys = { \"/\" = \"\" }\n",
            (3, 16),
            "legacy channel / and take its users (rhost's default key for / was empty, so anyone could capture every user): give a long random key, or leave \"/\" out",
        ),
        ("[legacy]\nlinger = \"forever\"\n", (2, 10), "not a duration"),
        ("[legacy]\nlinger = \"1h\"\n", (2, 10), "use 0s to 600s"),
        ("[legacy]\nroot_channels = []\n", (2, 17), "root_channels is empty"),
        (
            "[legacy]\nroot_channels = [\"web\", \"a b\"]\n",
            (2, 25),
            "\"a b\" is not a channel name",
        ),
        ("[legacy]\nkyes = { \"/\" = \"s3cret\" }\n", (2, 1), "unknown field"),
        (
            "[legacy]\nkeys = { \"/ssh\" = \"s3cret\", \"/ssh\" = \"s3cret2\" }\n",
            (2, 29),
            "duplicate key",
        ),
    ];
    for (text, (line, column), needle) in cases {
        let (_dir, path) = file(text);
        let err = resolve(&["--config", &path], &[]).unwrap_err();
        let shown = err.to_string();
        assert_eq!(
            (err.line, err.column),
            (*line, *column),
            "{shown}\nfor:\n{text}"
        );
        assert!(shown.starts_with(&path), "{shown}");
        assert!(shown.contains(needle), "{shown} lacks {needle:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

#[test]
fn the_environment_wins_per_channel_over_the_file() {
    let (_dir, path) =
        file("[legacy]\nkeys = { \"/\" = \"file-root\", \"/ssh\" = \"file-ssh\" }\n");
    let env = [("KEYS_SSH", "env-ssh"), ("KEYS_WEB", "env-web")];
    let config = resolve(&["--config", &path], &env).unwrap();
    assert!(has(&config, &LegacyPath::Root, "file-root"));
    assert!(has(&config, &named("ssh"), "env-ssh"));
    assert!(!has(&config, &named("ssh"), "file-ssh"));
    assert!(has(&config, &named("web"), "env-web"));
    assert_eq!(config.paths(), "/, /ssh, /web");
}

#[test]
fn the_root_stands_for_the_channels_of_the_default_routes() {
    let config = resolve(&["--http-channel", "site"], &[]).unwrap();
    assert_eq!(config.root_channels, ["site", "ssh", "tcp"]);
    let (_dir, path) = file("http_channel = \"www\"\n");
    let config = resolve(&["--config", &path, "--ssh-channel", "shell"], &[]).unwrap();
    assert_eq!(config.root_channels, ["www", "shell", "tcp"]);
    // Written out, the file's list wins over the channel flags.
    let (_dir, path) = file("[legacy]\nroot_channels = [\"web\"]\n");
    let config = resolve(&["--config", &path, "--http-channel", "site"], &[]).unwrap();
    assert_eq!(config.root_channels, ["web"]);
}

#[test]
fn debug_of_resolved_settings_shows_no_key() {
    let (_dir, path) = file("[legacy]\nkeys = { \"/\" = \"file-s3cret\" }\n");
    let settings = Settings::try_parse_from(["public-server", "--config", &path]).unwrap();
    let resolved = settings
        .resolve_with_env(env(&[("KEYS_SSH", "env-s3cret")]))
        .unwrap();
    assert!(has(&resolved.config.legacy, &named("ssh"), "env-s3cret"));
    let text = std::fs::read_to_string(&path).unwrap();
    let table: crate::config_file::FileConfig = toml::from_str(&text).unwrap();
    let values = crate::config_file::parse(Path::new(&path), &text).unwrap();
    for shown in [
        format!("{resolved:?}"),
        format!("{:#?}", resolved.config),
        format!("{:?}", resolved.config.legacy),
        format!("{:?}", table.legacy),
        format!("{values:?}"),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
    let shown = format!("{:?}", resolved.config.legacy);
    assert!(
        shown.contains("***") && shown.contains("\"ssh\""),
        "{shown}"
    );
}

/// The `[legacy]` block of examples/uptun.toml is commented out (legacy is
/// off unless asked for); uncommented, it parses and says what it claims.
#[test]
fn the_examples_legacy_block_parses_once_uncommented() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/uptun.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "# [legacy]")
        .take_while(|line| line.starts_with("# "))
        .map(|line| &line[2..])
        .collect();
    assert_eq!(block.len(), 4, "{block:?}");
    let values = crate::config_file::parse(&example, &block.join("\n")).unwrap();
    let config = super::layer(Vec::new(), values.legacy, ["web", "ssh", "tcp"]);
    assert_eq!(config.paths(), "/, /ssh");
    assert!(has(&config, &named("ssh"), "change-me-ssh-key"));
    assert_eq!(config.linger, Duration::from_secs(30));
    assert_eq!(config.root_channels, ["web", "ssh", "tcp"]);
}
