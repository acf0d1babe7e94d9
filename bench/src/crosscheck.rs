//! `uptun-bench crosscheck`: the bulk figures next to iperf3's and the
//! request figures next to wrk's (through uptun's `web` channel), for
//! direct and uptun, so the load generator itself can be trusted.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::cli::{Options, Plan};
use crate::load;
use crate::peers::free_port;
use crate::procs::Proc;
use crate::systems::{self, Probe, Setup, SystemKind, Targets};
use crate::target::{self, Target};
use crate::{install, machine};

const RR_CONNS: usize = 64;

pub async fn run(opts: &Options) -> anyhow::Result<()> {
    for tool in ["iperf3", "wrk"] {
        if !on_path(tool) {
            bail!("{tool} is not installed; on Debian: apt-get install -y iperf3 wrk");
        }
    }
    let plan = opts.plan();
    let uptun_dir = opts.uptun_dir.clone();
    let programs = tokio::task::spawn_blocking(move || {
        install::prepare(&[SystemKind::Uptun], uptun_dir.as_deref())
    })
    .await
    .context("the install step panicked")??;
    let dir = tempfile::Builder::new().prefix("uptun-bench-").tempdir()?;
    let setup = Setup {
        dir: dir.path().to_path_buf(),
        programs,
    };
    let target = target::start().await?;
    let iperf_port = free_port()?;
    let mut iperf = Proc::spawn(
        &setup.dir,
        "iperf3-server",
        "iperf3".as_ref(),
        &[
            "-s",
            "--forceflush",
            "-B",
            "127.0.0.1",
            "-p",
            &iperf_port.to_string(),
        ]
        .map(String::from),
    )?;
    iperf
        .wait_for_log("Server listening", Duration::from_secs(10))
        .await?;
    let iperf_addr = SocketAddr::from(([127, 0, 0, 1], iperf_port));
    let mut table = format!(
        "{}\n\n| system | figure | external tool | tool says | uptun-bench says |\n|---|---|---|---:|---:|\n",
        machine::describe()
    );
    for system in [SystemKind::Direct, SystemKind::Uptun] {
        let rows = compare(system, &setup, &target, iperf_addr, &plan).await?;
        table.push_str(&rows);
    }
    iperf.stop().await;
    println!("{table}");
    Ok(())
}

async fn compare(
    system: SystemKind,
    setup: &Setup,
    target: &Target,
    iperf_addr: SocketAddr,
    plan: &Plan,
) -> anyhow::Result<String> {
    let name = system.name();
    let secs = (plan.measure + plan.warmup).as_secs().max(2);
    let mut rows = String::new();

    // iperf3 against the iperf3 server behind the tunnel.
    let via_iperf = Targets {
        raw: iperf_addr,
        web: Some(target.http_addr),
        probe: Probe::Web,
    };
    let running = systems::start(system, setup, "iperf3", via_iperf).await?;
    let mut tool = Vec::new();
    for streams in [1, 8] {
        tool.push(iperf3(running.entry, streams, secs).await?);
        eprintln!(
            "{name}: iperf3 -P {streams}: {:.2} Gbit/s",
            tool.last().unwrap()
        );
    }
    running.stop().await;

    // The bench's own figures, and wrk through the web channel, on one system.
    let own = Targets {
        raw: target.addr,
        web: Some(target.http_addr),
        probe: Probe::Raw,
    };
    let running = systems::start(system, setup, "wrk", own).await?;
    for (i, streams) in [1, 8].into_iter().enumerate() {
        let bulk = load::bulk(running.entry, streams, plan, &target.stats, Vec::new()).await?;
        eprintln!(
            "{name}: bench bulk {streams}: {:.2} Gbit/s",
            bulk.gbit_per_s
        );
        let _ = writeln!(
            rows,
            "| {name} | bulk {streams} stream(s) Gbit/s | iperf3 -P {streams} | {:.2} | {:.2} |",
            tool[i], bulk.gbit_per_s
        );
    }
    let web = running.web_entry.context("no web entry")?;
    let w = wrk(web, secs).await?;
    eprintln!(
        "{name}: wrk: {:.0} req/s p50 {:.3} ms p99 {:.3} ms",
        w.rps, w.p50, w.p99
    );
    let r = load::request_response(running.entry, RR_CONNS, plan, Vec::new()).await?;
    eprintln!("{name}: bench rr: {:.0} req/s", r.per_second);
    running.stop().await;
    let _ = writeln!(
        rows,
        "| {name} | req/s (64 conns) | wrk -c64 (HTTP, web channel) | {:.0} | {:.0} |",
        w.rps, r.per_second
    );
    let _ = writeln!(
        rows,
        "| {name} | req p50 / p99 ms | wrk --latency | {:.3} / {:.3} | {:.3} / {:.3} |",
        w.p50, w.p99, r.latency.p50, r.latency.p99
    );
    Ok(rows)
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false)
}

async fn output(cmd: &mut Command, secs: u64) -> anyhow::Result<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(secs + 30),
        cmd.kill_on_drop(true).output(),
    )
    .await
    .context("the tool did not finish in time")?
    .context("could not run the tool")?;
    if !out.status.success() {
        bail!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Received Gbit/s of an upload, as iperf3's JSON reports it (first second omitted).
async fn iperf3(entry: SocketAddr, streams: usize, secs: u64) -> anyhow::Result<f64> {
    let json = output(
        Command::new("iperf3").args([
            "-c",
            &entry.ip().to_string(),
            "-p",
            &entry.port().to_string(),
            "-P",
            &streams.to_string(),
            "-t",
            &secs.to_string(),
            "-O",
            "1",
            "-J",
        ]),
        secs,
    )
    .await
    .context("iperf3 failed")?;
    let value: serde_json::Value = serde_json::from_str(&json).context("iperf3 printed no JSON")?;
    value["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|bits| bits / 1e9)
        .context("iperf3's JSON has no end.sum_received.bits_per_second")
}

struct Wrk {
    rps: f64,
    p50: f64,
    p99: f64,
}

async fn wrk(entry: SocketAddr, secs: u64) -> anyhow::Result<Wrk> {
    let text = output(
        Command::new("wrk").args([
            "-t2",
            &format!("-c{RR_CONNS}"),
            &format!("-d{secs}s"),
            "--latency",
            &format!("http://{entry}/"),
        ]),
        secs,
    )
    .await
    .context("wrk failed")?;
    parse_wrk(&text).with_context(|| format!("could not read wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Wrk> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
    };
    Some(Wrk {
        rps: field("Requests/sec:")?.parse().ok()?,
        p50: millis(field("50%")?)?,
        p99: millis(field("99%")?)?,
    })
}

/// wrk's durations: `812.00us`, `1.23ms`, `1.01s`.
fn millis(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else {
        (text.strip_suffix('s')?, 1000.0)
    };
    Some(number.parse::<f64>().ok()? * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 5s test @ http://127.0.0.1:1/\n  Latency Distribution\n     50%  812.00us\n     75%    1.00ms\n     99%    2.50ms\n  1000 requests in 5.00s, 1.2MB read\nRequests/sec:  24691.20\nTransfer/sec: 1MB\n";
        let w = parse_wrk(text).unwrap();
        assert_eq!(w.rps, 24691.2);
        assert!((w.p50 - 0.812).abs() < 1e-9);
        assert_eq!(w.p99, 2.5);
        assert_eq!(millis("1.01s"), Some(1010.0));
    }
}
