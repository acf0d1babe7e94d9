//! The steps a run is made of (bulk 1, bulk 8, request/response, …) and
//! what each measures on a started system.

use std::time::Duration;

use tokio::time::Instant;

use crate::cli::{Plan, Workload};
use crate::load;
use crate::memory::total_rss;
use crate::systems::{Running, Setup, SystemKind};
use crate::table::{thousands, Cell, Figure};
use crate::target::Target;

/// Keep-alive connections of the request/response workload.
const RR_CONNS: usize = 64;
/// Concurrent connect-request-close loops of the churn workload.
const CHURN_WORKERS: usize = 16;
const MIB: f64 = 1024.0 * 1024.0;

/// One measurement on a fresh system.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Bulk1,
    Bulk8,
    Rr,
    Churn,
    Interactive,
    Memory,
}

impl Step {
    pub fn of(workload: Workload) -> &'static [Step] {
        match workload {
            Workload::Bulk => &[Step::Bulk1, Step::Bulk8],
            Workload::Rr => &[Step::Rr],
            Workload::Churn => &[Step::Churn],
            Workload::Latency => &[Step::Interactive],
            Workload::Memory => &[Step::Memory],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Step::Bulk1 => "bulk1",
            Step::Bulk8 => "bulk8",
            Step::Rr => "rr",
            Step::Churn => "churn",
            Step::Interactive => "interactive",
            Step::Memory => "memory",
        }
    }

    pub fn figures(self) -> &'static [Figure] {
        match self {
            Step::Bulk1 => &[Figure::Bulk1],
            Step::Bulk8 => &[Figure::Bulk8, Figure::CpuPerGb, Figure::RssPeakBulk8],
            Step::Rr => &[
                Figure::Rps,
                Figure::RrP50,
                Figure::RrP99,
                Figure::CpuPerRequest,
            ],
            Step::Churn => &[Figure::Churn, Figure::CpuPerConn],
            Step::Interactive => &[Figure::InteractiveP50, Figure::InteractiveP99],
            Step::Memory => &[Figure::RssIdle, Figure::RssIdleConns],
        }
    }
}

/// Everything a step needs besides the running system.
pub struct Bench<'a> {
    pub setup: &'a Setup,
    pub target: &'a Target,
    pub plan: Plan,
    /// Open-files limit of every process here (the hard limit).
    pub nofile: u64,
    pub started: Instant,
}

impl Bench<'_> {
    pub fn progress(&self, line: &str) {
        eprintln!("[{:6.1} s] {line}", self.started.elapsed().as_secs_f64());
    }
}

pub type Measured = Vec<(Figure, String, Cell)>;

pub async fn measure(
    bench: &Bench<'_>,
    running: &mut Running,
    step: Step,
) -> anyhow::Result<Measured> {
    let entry = running.entry;
    let plan = &bench.plan;
    let stats = &bench.target.stats;
    let value = |figure: Figure, v: f64, text: String| (figure, text, Cell::Value(v));
    Ok(match step {
        Step::Bulk1 | Step::Bulk8 => {
            let streams = if matches!(step, Step::Bulk1) { 1 } else { 8 };
            let bulk = load::bulk(entry, streams, plan, stats, running.pids()).await?;
            let figure = if streams == 1 {
                Figure::Bulk1
            } else {
                Figure::Bulk8
            };
            let mut cells = vec![value(
                figure,
                bulk.gbit_per_s,
                format!("{:.2} Gbit/s", bulk.gbit_per_s),
            )];
            if streams == 8 {
                cells.push(match bulk.peak_rss {
                    Some(peak) => value(
                        Figure::RssPeakBulk8,
                        peak as f64 / MIB,
                        format!("peak RSS {:.1} MiB", peak as f64 / MIB),
                    ),
                    None => (Figure::RssPeakBulk8, "no RSS".into(), Cell::NotApplicable),
                });
                cells.push(cpu_cell(Figure::CpuPerGb, bulk.cpu_per_gb, "s/GB"));
            }
            cells
        }
        Step::Rr => {
            let r = load::request_response(entry, RR_CONNS, plan, running.pids()).await?;
            vec![
                value(
                    Figure::Rps,
                    r.per_second,
                    format!("{:.0} req/s", r.per_second),
                ),
                value(
                    Figure::RrP50,
                    r.latency.p50,
                    format!("p50 {:.3} ms", r.latency.p50),
                ),
                value(
                    Figure::RrP99,
                    r.latency.p99,
                    format!("p99 {:.3} ms", r.latency.p99),
                ),
                cpu_cell(Figure::CpuPerRequest, r.cpu_per_request, "µs/req"),
            ]
        }
        Step::Churn => {
            let r = load::churn(entry, CHURN_WORKERS, plan, running.pids()).await?;
            vec![
                value(
                    Figure::Churn,
                    r.per_second,
                    format!(
                        "{:.0} conn/s (p99 {:.2} ms, {} failed)",
                        r.per_second, r.latency.p99, r.errors
                    ),
                ),
                cpu_cell(Figure::CpuPerConn, r.cpu_per_request, "µs/conn"),
            ]
        }
        Step::Interactive => {
            let r = load::interactive(entry, plan, stats).await?;
            vec![
                value(
                    Figure::InteractiveP50,
                    r.latency.p50,
                    format!("p50 {:.3} ms", r.latency.p50),
                ),
                value(
                    Figure::InteractiveP99,
                    r.latency.p99,
                    format!(
                        "p99 {:.3} ms (bulk meanwhile {:.2} Gbit/s)",
                        r.latency.p99, r.bulk_gbit_per_s
                    ),
                ),
            ]
        }
        Step::Memory => measure_memory(bench, running).await?,
    })
}

/// A CPU-per-unit cell, or not applicable for a system without processes.
fn cpu_cell(figure: Figure, cpu: Option<f64>, unit: &str) -> (Figure, String, Cell) {
    match cpu {
        Some(v) => (figure, format!("{v:.3} CPU {unit}"), Cell::Value(v)),
        None => (figure, "no CPU".into(), Cell::NotApplicable),
    }
}

/// How many idle connections fit the open-files limit: uptun's server and
/// agent each hold one descriptor per connection, the others two in one process.
fn idle_that_fits(system: SystemKind, nofile: u64, wanted: usize) -> usize {
    let per_conn = if system.is_uptun() { 1 } else { 2 };
    // Headroom for listeners, links, logs and connections still being set up.
    let fits = (nofile.saturating_sub(1000) / per_conn) as usize;
    wanted.min(fits)
}

async fn measure_memory(bench: &Bench<'_>, running: &Running) -> anyhow::Result<Measured> {
    let pids = running.pids();
    let wanted = bench.plan.idle_conns;
    let n = idle_that_fits(running.kind, bench.nofile, wanted);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = total_rss(&pids)? as f64 / MIB;
    let t0 = Instant::now();
    let conns = load::idle_connections(
        &bench.setup.programs.bench,
        &bench.setup.dir,
        running.entry,
        n,
        &bench.target.stats,
        Duration::from_secs(120),
    )
    .await?;
    let opened = t0.elapsed();
    let reached = conns.reached;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = total_rss(&pids);
    conns.close().await;
    let held = held? as f64 / MIB;
    let held_cell = if reached < n {
        let note = format!(
            "with {} of {} (rest lost)",
            thousands(reached),
            thousands(n)
        );
        Cell::ValueNote(held, note)
    } else if n < wanted {
        Cell::ValueNote(held, format!("at {} (open-files limit)", thousands(n)))
    } else {
        Cell::Value(held)
    };
    Ok(vec![
        (
            Figure::RssIdle,
            format!("idle {idle:.1} MiB"),
            Cell::Value(idle),
        ),
        (
            Figure::RssIdleConns,
            format!(
                "{reached} of {n} idle conns {held:.1} MiB (opened in {:.1} s)",
                opened.as_secs_f64()
            ),
            held_cell,
        ),
    ])
}
