//! Finds or builds every program the systems need: release builds of uptun
//! from this workspace, and rathole and bore installed from crates.io into
//! the git-ignored `bench/peers` folder (rathole with TLS into `bench/peers/tls`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::systems::SystemKind;

/// Paths of the programs the selected systems run.
#[derive(Debug, Clone, Default)]
pub struct Programs {
    pub public_server: PathBuf,
    pub local_agent: PathBuf,
    pub rathole: PathBuf,
    /// rathole built with its TLS transport, installed apart from the plain build.
    pub rathole_tls: PathBuf,
    pub bore: PathBuf,
    /// This binary, which also serves as the relay of `relay2`.
    pub bench: PathBuf,
    /// Which uptun was measured: a folder, or this work tree's commit.
    pub uptun_source: String,
}

struct Peer {
    krate: &'static str,
    version: &'static str,
    binary: &'static str,
    features: &'static [&'static str],
}

const RATHOLE: Peer = Peer {
    krate: "rathole",
    version: "0.5.0",
    binary: "rathole",
    // Plain TCP transport only, as uptun's link is plain TCP here.
    features: &["--no-default-features", "--features", "server,client"],
};

/// A second build for `rathole-tls`: with the `tls` feature (tokio-native-tls,
/// so OpenSSL here: libssl-dev and pkg-config), and under its own root so the
/// plain build above stays plain.
const RATHOLE_TLS: Peer = Peer {
    krate: "rathole",
    version: "0.5.0",
    binary: "rathole",
    features: &["--no-default-features", "--features", "server,client,tls"],
};

const BORE: Peer = Peer {
    krate: "bore-cli",
    version: "0.6.0",
    binary: "bore",
    features: &[],
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the bench crate lives inside the workspace")
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Builds or installs what `systems` need and returns the paths; uptun's
/// binaries come from `uptun_dir` when given.
pub fn prepare(systems: &[SystemKind], uptun_dir: Option<&Path>) -> anyhow::Result<Programs> {
    let root = workspace_root();
    let mut programs = Programs {
        bench: std::env::current_exe().context("could not find the bench's own binary")?,
        ..Programs::default()
    };
    if systems.iter().any(|s| s.is_uptun()) {
        let (server, agent) = match uptun_dir {
            Some(dir) => find_uptun(dir)?,
            None => build_uptun(&root)?,
        };
        programs.uptun_source = match uptun_dir {
            Some(dir) => format!("binaries from {}", dir.display()),
            None => work_tree_commit(&root),
        };
        programs.public_server = server;
        programs.local_agent = agent;
    }
    let peers = root.join("bench").join("peers");
    if systems.contains(&SystemKind::Rathole) {
        programs.rathole = install_peer(&peers, &RATHOLE)?;
    }
    if systems.contains(&SystemKind::RatholeTls) {
        programs.rathole_tls = install_peer(&peers.join("tls"), &RATHOLE_TLS)?;
    }
    if systems.contains(&SystemKind::Bore) {
        programs.bore = install_peer(&peers, &BORE)?;
    }
    Ok(programs)
}

/// Always runs `cargo build --release`: a no-op when nothing changed, and it
/// makes sure the figures are for the code in the work tree.
fn build_uptun(root: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    eprintln!("building release public-server and local-agent");
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "-p",
            "public-server",
            "-p",
            "local-agent",
        ])
        .current_dir(root)
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("cargo build --release of public-server and local-agent failed ({status})");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let release = target_dir.join("release");
    Ok((release.join("public-server"), release.join("local-agent")))
}

/// `commit abc1234` of the work tree, noting uncommitted changes to the crates.
fn work_tree_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "this work tree (not a git checkout)".into();
    };
    let dirty = git(&["status", "--porcelain", "--", "crates"]).is_some_and(|s| !s.is_empty());
    let extra = if dirty {
        " plus uncommitted changes in crates/"
    } else {
        ""
    };
    format!("work tree at commit {commit}{extra}")
}

fn find_uptun(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (server, agent) = (dir.join("public-server"), dir.join("local-agent"));
    for binary in [&server, &agent] {
        if !binary.is_file() {
            bail!("--uptun-dir: there is no {}", binary.display());
        }
    }
    eprintln!("using uptun from {}", dir.display());
    Ok((server, agent))
}

fn install_peer(peers: &Path, peer: &Peer) -> anyhow::Result<PathBuf> {
    let binary = peers.join("bin").join(peer.binary);
    if binary.exists() && installed_version(peers, peer) {
        return Ok(binary);
    }
    eprintln!(
        "installing {} {} into {} (once; takes a few minutes)",
        peer.krate,
        peer.version,
        peers.display()
    );
    let status = Command::new(cargo())
        .arg("install")
        .arg("--root")
        .arg(peers)
        .args([peer.krate, "--version", peer.version])
        .args(peer.features)
        .status()
        .context("could not run cargo install")?;
    if !status.success() || !binary.exists() {
        bail!(
            "cargo install {} {} failed ({status}); install it by hand with: cargo install --root {} {} --version {} {}",
            peer.krate,
            peer.version,
            peers.display(),
            peer.krate,
            peer.version,
            peer.features.join(" ")
        );
    }
    Ok(binary)
}

/// Reads cargo's own record of what `--root` holds, so a stale version is replaced.
fn installed_version(peers: &Path, peer: &Peer) -> bool {
    let record = std::fs::read_to_string(peers.join(".crates.toml")).unwrap_or_default();
    record.contains(&format!("\"{} {} ", peer.krate, peer.version))
}
