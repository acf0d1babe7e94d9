//! The systems compared side by side, and starting one so that its entry
//! address forwards to the bench's target.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::install::Programs;
use crate::peers;
use crate::procs::Proc;
use crate::target::{MODE_REQUEST, REPLY_LEN, REQUEST_LEN};
use crate::tls::TlsFiles;
use crate::uptun::{self, Link};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum SystemKind {
    /// No tunnel: the load generator talks to the target (the ceiling).
    Direct,
    /// Two plain TCP relays in a chain, 256 KiB buffers, no framing.
    Relay2,
    /// rathole 0.5.0, plain TCP transport.
    Rathole,
    /// bore-cli 0.6.0.
    Bore,
    /// uptun: public-server and one local-agent, one link.
    Uptun,
    /// uptun with `local-agent --links 2`: streams spread over two links.
    Uptun2,
    /// uptun whose link is TLS (`https://`), terminated by the server itself.
    UptunTls,
    /// uptun whose link is WebSocket (`ws://`).
    UptunWs,
    /// uptun whose link is WebSocket over TLS (`wss://`).
    UptunWss,
    /// rathole 0.5.0, TLS transport (native-tls, a separate build).
    RatholeTls,
}

impl SystemKind {
    pub fn name(self) -> &'static str {
        match self {
            SystemKind::Direct => "direct",
            SystemKind::Relay2 => "relay2",
            SystemKind::Rathole => "rathole",
            SystemKind::Bore => "bore",
            SystemKind::Uptun => "uptun",
            SystemKind::Uptun2 => "uptun --links 2",
            SystemKind::UptunTls => "uptun tls",
            SystemKind::UptunWs => "uptun ws",
            SystemKind::UptunWss => "uptun wss",
            SystemKind::RatholeTls => "rathole tls",
        }
    }

    /// The name `--systems` takes (`uptun-tls`): log and config files
    /// start with it, so systems that share a starter keep their own.
    pub fn slug(self) -> String {
        use clap::ValueEnum;
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| format!("{self:?}").to_lowercase())
    }

    pub fn is_uptun(self) -> bool {
        matches!(
            self,
            SystemKind::Uptun
                | SystemKind::Uptun2
                | SystemKind::UptunTls
                | SystemKind::UptunWs
                | SystemKind::UptunWss
        )
    }
}

/// Where the tunnel should lead: the raw target, and for uptun optionally
/// an HTTP target on its `web` channel.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    pub raw: SocketAddr,
    pub web: Option<SocketAddr>,
    /// How to tell that the system is ready.
    pub probe: Probe,
}

/// A request that proves a system carries traffic end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A request to the bench's own raw target.
    Raw,
    /// An HTTP GET through the web entry (when the raw target is a foreign program).
    Web,
}

/// What starting a system needs: programs and a folder for configs and logs.
pub struct Setup {
    pub dir: PathBuf,
    pub programs: Programs,
}

/// A started system; dropping it kills its processes.
pub struct Running {
    pub kind: SystemKind,
    /// Where users connect for the raw target.
    pub entry: SocketAddr,
    /// Where HTTP users connect for the web target, when one was asked for.
    pub web_entry: Option<SocketAddr>,
    procs: Vec<Proc>,
}

impl Running {
    /// Process ids whose memory counts for the system (none for direct).
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().filter_map(Proc::pid).collect()
    }

    /// Fails if one of the system's processes died during a workload.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        self.procs.iter_mut().try_for_each(Proc::check_alive)
    }

    /// Kills the processes; returns the WARN/ERROR lines they logged before,
    /// each prefixed with its log's name. The lines are read first, so the
    /// noise of being killed is not counted.
    pub async fn stop(self) -> Vec<String> {
        let mut lines = Vec::new();
        for proc in &self.procs {
            lines.extend(
                proc.warnings()
                    .into_iter()
                    .map(|l| format!("{}: {l}", proc.name)),
            );
        }
        // Agent side first: a server that vanishes first makes the agent log a lost link.
        for proc in self.procs.into_iter().rev() {
            proc.stop().await;
        }
        lines
    }
}

/// Starts `kind` towards `targets` and waits until a request goes through.
pub async fn start(
    kind: SystemKind,
    ctx: &Setup,
    label: &str,
    targets: Targets,
) -> anyhow::Result<Running> {
    let dir = &ctx.dir;
    let p = &ctx.programs;
    let label = &format!("{}.{label}", kind.slug());
    let (entry, procs) = match kind {
        SystemKind::Direct => (targets.raw, Vec::new()),
        SystemKind::Relay2 => start_relay2(ctx, label, targets.raw).await?,
        SystemKind::Rathole => {
            peers::start_rathole(dir, &p.rathole, label, targets.raw, None).await?
        }
        SystemKind::RatholeTls => {
            let tls = TlsFiles::in_dir(dir)?;
            peers::start_rathole(dir, &p.rathole_tls, label, targets.raw, Some(&tls)).await?
        }
        SystemKind::Bore => peers::start_bore(dir, &p.bore, label, targets.raw).await?,
        SystemKind::Uptun => uptun::start(ctx, label, targets, Link::Plain, 1).await?,
        SystemKind::Uptun2 => uptun::start(ctx, label, targets, Link::Plain, 2).await?,
        SystemKind::UptunTls => uptun::start(ctx, label, targets, Link::Tls, 1).await?,
        SystemKind::UptunWs => uptun::start(ctx, label, targets, Link::Ws, 1).await?,
        SystemKind::UptunWss => uptun::start(ctx, label, targets, Link::Wss, 1).await?,
    };
    let web_entry = match (kind, targets.web) {
        (SystemKind::Direct, web) => web,
        (kind, Some(_)) if kind.is_uptun() => Some(entry),
        _ => None,
    };
    let running = Running {
        kind,
        entry,
        web_entry,
        procs,
    };
    let (probe_at, probe) = match targets.probe {
        Probe::Raw => (entry, Probe::Raw),
        Probe::Web => (
            web_entry.context("a web probe needs a web target")?,
            Probe::Web,
        ),
    };
    wait_ready(probe_at, probe)
        .await
        .with_context(|| format!("{} did not become ready", kind.name()))?;
    Ok(running)
}

async fn start_relay2(
    ctx: &Setup,
    label: &str,
    target: SocketAddr,
) -> anyhow::Result<(SocketAddr, Vec<Proc>)> {
    let mut to = target;
    let mut procs = Vec::new();
    // The second hop first, so the first one has somewhere to go.
    for hop in ["relay-b", "relay-a"] {
        let mut relay = Proc::spawn(
            &ctx.dir,
            &format!("{label}.{hop}"),
            &ctx.programs.bench,
            &[
                "relay".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--to".into(),
                to.to_string(),
            ],
        )?;
        to = relay.wait_for_addr("addr=").await?;
        procs.push(relay);
    }
    Ok((to, procs))
}

/// One request through the entry, retried until it works (bounded).
async fn wait_ready(entry: SocketAddr, kind: Probe) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let err = match timeout(Duration::from_secs(3), probe(entry, kind)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => err,
            Err(_) => anyhow::anyhow!("no reply within 3 s"),
        };
        if Instant::now() > deadline {
            bail!("a request through {entry} still failed after 30 s: {err:#}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn probe(entry: SocketAddr, kind: Probe) -> anyhow::Result<()> {
    let mut socket = TcpStream::connect(entry).await?;
    if kind == Probe::Web {
        socket
            .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            .await?;
        let mut status = [0u8; 12];
        socket.read_exact(&mut status).await?;
        if &status != b"HTTP/1.1 200" {
            bail!("answered {:?}", String::from_utf8_lossy(&status));
        }
        return Ok(());
    }
    socket.write_all(&[MODE_REQUEST; REQUEST_LEN]).await?;
    let mut reply = [0u8; REPLY_LEN];
    socket.read_exact(&mut reply).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn every_system_has_its_own_slug_that_parses_back() {
        let mut slugs = Vec::new();
        for &kind in SystemKind::value_variants() {
            let slug = kind.slug();
            assert_eq!(SystemKind::from_str(&slug, false), Ok(kind), "{slug}");
            slugs.push(slug);
        }
        assert!(slugs.contains(&"rathole-tls".to_string()), "{slugs:?}");
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), SystemKind::value_variants().len());
    }
}
