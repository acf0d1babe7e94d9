//! The repository's deployment files as the tests that check them read
//! them: where they are, a systemd unit's settings, an env file's lines, the
//! environment variables each binary reads, the workspace's packages and
//! binaries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::procs::bin;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A file of the repository, by its path from the root.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path))
        .unwrap_or_else(|err| panic!("{path}: {err} (the deployment files need it)"))
}

/// Every `Key=Value` of a systemd unit, in order, sections and comments left
/// out (a key may repeat: `SystemCallFilter=` does).
pub fn unit_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .map(|l| {
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not Key=Value: {l}"));
            (key.to_string(), value.to_string())
        })
        .collect()
}

/// The value of `key` in a unit; panics if it is missing or repeated.
pub fn unit_value<'a>(settings: &'a [(String, String)], key: &str) -> &'a str {
    let values: Vec<&str> = settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect();
    match values[..] {
        [value] => value,
        _ => panic!("{key}= should be set once, is {values:?}"),
    }
}

/// The `NAME=VALUE` lines of an env file. With `commented`, also the
/// options shown commented out (`#NAME=VALUE`), which a reader uncomments.
pub fn env_lines(text: &str, commented: bool) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| match line.strip_prefix('#') {
            Some(rest) if commented => Some(rest),
            Some(_) => None,
            None => Some(line),
        })
        .filter_map(|line| line.split_once('='))
        .filter(|(name, _)| is_variable(name))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn is_variable(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The `UPTUN_…` names written anywhere in `text`.
pub fn uptun_names(text: &str) -> BTreeSet<String> {
    text.match_indices("UPTUN_")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

/// The environment variables `program` reads, as its own `--help` tells
/// them: every `[env: NAME…]`, plus `PORT` and `RUST_LOG` where the help
/// names them (the listen default, the log filter).
pub fn variables(program: &str) -> BTreeSet<String> {
    let mut help = String::new();
    let commands: &[&[&str]] = match program {
        "local-agent" => &[&[], &["forward"], &["connect"]],
        _ => &[&[]],
    };
    for command in commands {
        let out = Command::new(bin(program))
            .args(*command)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{program} {command:?} --help");
        help.push_str(&String::from_utf8(out.stdout).unwrap());
    }
    let mut names: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .map(|rest| {
            let end = rest.find(['=', ']']).expect("[env: NAME] closes");
            rest[..end].to_string()
        })
        .collect();
    for extra in ["PORT", "RUST_LOG"] {
        if help.contains(&format!("${extra}")) || help.contains(&format!("{extra}=")) {
            names.insert(extra.to_string());
        }
    }
    names
}

/// Packages of the workspace and the binaries each builds.
pub fn workspace() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap().iter();
    packages
        .map(|p| {
            let bins = p["targets"].as_array().unwrap().iter();
            let bins = bins
                .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
                .map(|t| t["name"].as_str().unwrap().to_string());
            (p["name"].as_str().unwrap().to_string(), bins.collect())
        })
        .collect()
}

/// The binaries `cargo build` makes with these `-p` packages.
pub fn bins_of(packages: &[String]) -> BTreeSet<String> {
    let workspace = workspace();
    packages
        .iter()
        .flat_map(|p| {
            workspace
                .get(p)
                .unwrap_or_else(|| panic!("-p {p}: no such package in the workspace"))
                .clone()
        })
        .collect()
}

/// The `-p NAME` arguments of a cargo command line.
pub fn packages_in(command: &str) -> Vec<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let found: Vec<String> = words
        .windows(2)
        .filter(|w| w[0] == "-p" || w[0] == "--package")
        .map(|w| w[1].to_string())
        .collect();
    assert!(!found.is_empty(), "no -p in {command:?}");
    found
}
