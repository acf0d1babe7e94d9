//! Command line of `uptun-bench`: which workloads, which systems, how long.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::systems::SystemKind;

/// Side-by-side benchmark of uptun against direct TCP, a plain two-hop relay,
/// rathole 0.5.0 and bore 0.6.0, all on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Examples:\n  cargo run --release -p uptun-bench -- all\n  cargo run --release -p uptun-bench -- --quick --systems uptun,rathole bulk\n  cargo run --release -p uptun-bench -- --systems rathole,rathole-tls,uptun,uptun-tls,uptun-ws,uptun-wss all\n  cargo run --release -p uptun-bench -- crosscheck"
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: Options,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Short smoke run: 1 s per figure and 1,000 idle connections.
    #[arg(long, global = true)]
    pub quick: bool,

    /// Systems to measure, comma separated, in table order. The transports
    /// (uptun-tls, uptun-ws, uptun-wss, rathole-tls) only when named.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "direct,relay2,rathole,bore,uptun"
    )]
    pub systems: Vec<SystemKind>,

    /// Seconds each round of a figure is measured for, after a warm-up [default: 3, or 1 with --quick].
    #[arg(long, global = true)]
    pub seconds: Option<f64>,

    /// Rounds per figure, all systems in turn each round; the table shows the median [default: 3, or 1 with --quick].
    #[arg(long, global = true)]
    pub rounds: Option<usize>,

    /// Idle connections held open for the memory figure [default: 10000, or 1000 with --quick].
    #[arg(long, global = true)]
    pub idle: Option<usize>,

    /// Take public-server and local-agent from this folder (e.g. another
    /// checkout's target/release) instead of building this work tree.
    #[arg(long, global = true, value_name = "DIR")]
    pub uptun_dir: Option<PathBuf>,

    /// Keep the temporary folder with configs and process logs, and print its path.
    #[arg(long, global = true)]
    pub keep_logs: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Every workload on every system, then the table.
    All,
    /// Bulk throughput, 1 and 8 streams (and peak memory during 8).
    Bulk,
    /// Request/response on 64 keep-alive connections.
    Rr,
    /// A new connection per request.
    Churn,
    /// Round trips of 64-byte messages while 4 bulk streams load the tunnel.
    Latency,
    /// Resident memory idle and with many idle connections.
    Memory,
    /// Compare the bench's bulk and request figures with iperf3 and wrk (direct and uptun).
    Crosscheck,
    /// Internal: one plain TCP relay with 256 KiB buffers (the relay2 system runs two).
    #[command(hide = true)]
    Relay {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        to: SocketAddr,
    },
    /// Internal: open idle connections and hold them until killed (the memory workload).
    #[command(hide = true)]
    Hold {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long)]
        count: usize,
    },
}

/// The workloads a command runs, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Bulk,
    Rr,
    Churn,
    Latency,
    Memory,
}

impl Workload {
    /// In the order `all` runs them: the ones that leave many closed
    /// sockets behind (churn, memory) last.
    pub const ALL: [Workload; 5] = [
        Workload::Bulk,
        Workload::Rr,
        Workload::Latency,
        Workload::Churn,
        Workload::Memory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Bulk => "bulk",
            Workload::Rr => "request/response",
            Workload::Churn => "churn",
            Workload::Latency => "interactive latency",
            Workload::Memory => "memory",
        }
    }
}

impl Command {
    pub fn workloads(&self) -> Vec<Workload> {
        match self {
            Command::All => Workload::ALL.to_vec(),
            Command::Bulk => vec![Workload::Bulk],
            Command::Rr => vec![Workload::Rr],
            Command::Churn => vec![Workload::Churn],
            Command::Latency => vec![Workload::Latency],
            Command::Memory => vec![Workload::Memory],
            Command::Crosscheck | Command::Relay { .. } | Command::Hold { .. } => Vec::new(),
        }
    }
}

/// Timings and sizes every workload reads.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub warmup: Duration,
    pub measure: Duration,
    pub rounds: usize,
    pub idle_conns: usize,
}

impl Options {
    pub fn plan(&self) -> Plan {
        let measure = self.seconds.unwrap_or(if self.quick { 1.0 } else { 3.0 });
        Plan {
            warmup: Duration::from_millis(if self.quick { 300 } else { 1000 }),
            measure: Duration::from_secs_f64(measure.clamp(0.2, 60.0)),
            rounds: self
                .rounds
                .unwrap_or(if self.quick { 1 } else { 3 })
                .clamp(1, 20),
            idle_conns: self.idle.unwrap_or(if self.quick { 1000 } else { 10_000 }),
        }
    }
}
