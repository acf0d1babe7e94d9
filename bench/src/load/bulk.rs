//! Bulk throughput: streams that upload zeros to the target's sink as fast
//! as the tunnel takes them, counted where they arrive (at the sink), so
//! bytes still buffered inside a tunnel never count.

use std::net::SocketAddr;

use anyhow::bail;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::{connect, Window};
use crate::cli::Plan;
use crate::cpu::CpuMeter;
use crate::memory::PeakSampler;
use crate::target::{TargetStats, MODE_SINK};

const WRITE: usize = 256 * 1024;

/// Result of a bulk run.
#[derive(Debug, Clone, Copy)]
pub struct Bulk {
    pub gbit_per_s: f64,
    /// Highest summed RSS of `pids` during the run, in bytes.
    pub peak_rss: Option<u64>,
    /// CPU seconds `pids` spent per gigabyte moved in the window.
    pub cpu_per_gb: Option<f64>,
}

/// Bulk streams running in the background until dropped.
pub struct Uploads {
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Uploads {
    pub fn start(entry: SocketAddr, streams: usize) -> Self {
        let mut tasks = JoinSet::new();
        for _ in 0..streams {
            tasks.spawn(upload(entry));
        }
        Uploads { tasks }
    }

    /// Fails if a stream ended: an upload only ends by error.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(done) = self.tasks.try_join_next() {
            match done {
                Ok(Ok(())) => bail!("a bulk stream ended early"),
                Ok(Err(err)) => return Err(err.context("a bulk stream failed")),
                Err(err) => bail!("a bulk stream panicked: {err}"),
            }
        }
        Ok(())
    }
}

async fn upload(entry: SocketAddr) -> anyhow::Result<()> {
    let mut socket = connect(entry).await?;
    // All zeros: the first byte is MODE_SINK.
    let data = vec![MODE_SINK; WRITE];
    loop {
        socket.write_all(&data).await?;
    }
}

/// Sink bytes per second over a window, in Gbit/s.
pub async fn measure_sink(
    stats: &TargetStats,
    window: Window,
    uploads: &mut Uploads,
) -> anyhow::Result<f64> {
    sleep_until(window.start).await;
    uploads.check()?;
    let (b0, t0) = (stats.sink_bytes(), Instant::now());
    sleep_until(window.end).await;
    let (b1, t1) = (stats.sink_bytes(), Instant::now());
    uploads.check()?;
    if b1 == b0 {
        bail!("no byte reached the target during the measurement (stalled)");
    }
    Ok((b1 - b0) as f64 * 8.0 / (t1 - t0).as_secs_f64() / 1e9)
}

/// `streams` parallel uploads for the plan's warm-up and measure time.
pub async fn bulk(
    entry: SocketAddr,
    streams: usize,
    plan: &Plan,
    stats: &TargetStats,
    pids: Vec<u32>,
) -> anyhow::Result<Bulk> {
    let sampler = (!pids.is_empty()).then(|| PeakSampler::start(pids.clone()));
    let window = Window::after_warmup(plan);
    let cpu = CpuMeter::start(pids, window);
    let mut uploads = Uploads::start(entry, streams);
    let measured = measure_sink(stats, window, &mut uploads).await;
    let peak_rss = sampler.map(PeakSampler::stop);
    drop(uploads);
    let gbit_per_s = measured?;
    let gigabytes = gbit_per_s / 8.0 * window.seconds();
    let cpu_per_gb = match cpu {
        Some(cpu) => cpu.finish().await.map(|s| s / gigabytes),
        None => None,
    };
    Ok(Bulk {
        gbit_per_s,
        peak_rss,
        cpu_per_gb,
    })
}
