//! Starting uptun: one `public-server` and one `local-agent`, whose link
//! travels as plain TCP, TLS, WebSocket or WebSocket over TLS. Users always
//! connect in plain TCP to the same port; only the agent's link changes.

use std::net::SocketAddr;

use crate::procs::Proc;
use crate::systems::{Setup, Targets};
use crate::tls::TlsFiles;

const TOKEN: &str = "uptun-bench-token";

/// How the agent's link reaches the server: the scheme of `--server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// `http://`: frames on plain TCP.
    Plain,
    /// `https://`: frames inside TLS, which the server terminates itself.
    Tls,
    /// `ws://`: frames in WebSocket binary messages.
    Ws,
    /// `wss://`: WebSocket inside TLS.
    Wss,
}

impl Link {
    fn scheme(self) -> &'static str {
        match self {
            Link::Plain => "http",
            Link::Tls => "https",
            Link::Ws => "ws",
            Link::Wss => "wss",
        }
    }

    fn encrypted(self) -> bool {
        matches!(self, Link::Tls | Link::Wss)
    }
}

/// Starts the server (with the run's certificate when the link is
/// encrypted) and the agent; the entry is the server's one port.
pub async fn start(
    ctx: &Setup,
    label: &str,
    targets: Targets,
    link: Link,
    links: u16,
) -> anyhow::Result<(SocketAddr, Vec<Proc>)> {
    let p = &ctx.programs;
    let tls = match link.encrypted() {
        true => Some(TlsFiles::in_dir(&ctx.dir)?),
        false => None,
    };
    let mut server_args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".into(),
        "--agent-token".into(),
        TOKEN.into(),
    ];
    if let Some(tls) = &tls {
        server_args.extend([
            "--tls-cert".into(),
            tls.cert.display().to_string(),
            "--tls-key".into(),
            tls.key.display().to_string(),
        ]);
    }
    let mut server = Proc::spawn(
        &ctx.dir,
        &format!("{label}.public-server"),
        &p.public_server,
        &server_args,
    )?;
    let entry = server.wait_for_addr("addr=").await?;
    let agent_args = agent_args(entry, targets, link, links, tls.as_ref());
    let agent = Proc::spawn(
        &ctx.dir,
        &format!("{label}.local-agent"),
        &p.local_agent,
        &agent_args,
    )?;
    Ok((entry, vec![server, agent]))
}

/// `entry` is 127.0.0.1:PORT, a name the certificate covers, so the agent
/// checks the certificate against the run's CA as it would any other.
fn agent_args(
    entry: SocketAddr,
    targets: Targets,
    link: Link,
    links: u16,
    tls: Option<&TlsFiles>,
) -> Vec<String> {
    let mut args = vec![
        "--server".to_string(),
        format!("{}://{entry}", link.scheme()),
        "--token".into(),
        TOKEN.into(),
        "--channel".into(),
        format!("tcp={}", targets.raw),
    ];
    if let Some(tls) = tls {
        args.extend(["--ca".into(), tls.ca.display().to_string()]);
    }
    // Only when asked, so `--uptun-dir` still takes builds from before --links.
    if links > 1 {
        args.extend(["--links".into(), links.to_string()]);
    }
    if let Some(web) = targets.web {
        args.extend(["--channel".into(), format!("web={web}")]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::Probe;
    use std::path::PathBuf;

    #[test]
    fn encrypted_links_dial_the_scheme_and_trust_the_runs_ca() {
        let entry: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let targets = Targets {
            raw: "127.0.0.1:5000".parse().unwrap(),
            web: None,
            probe: Probe::Raw,
        };
        let tls = TlsFiles {
            ca: PathBuf::from("/tmp/ca.pem"),
            cert: PathBuf::from("/tmp/cert.pem"),
            key: PathBuf::from("/tmp/key.pem"),
        };
        let wss = agent_args(entry, targets, Link::Wss, 1, Some(&tls)).join(" ");
        assert!(wss.starts_with("--server wss://127.0.0.1:4000 "), "{wss}");
        assert!(wss.contains("--ca /tmp/ca.pem"), "{wss}");
        let ws = agent_args(entry, targets, Link::Ws, 2, None).join(" ");
        assert!(ws.starts_with("--server ws://127.0.0.1:4000 "), "{ws}");
        assert!(ws.contains("--links 2") && !ws.contains("--ca"), "{ws}");
    }
}
