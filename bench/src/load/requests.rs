//! Request/response on keep-alive connections, and connection churn (a new
//! connection per request). The client always speaks first: a 16-byte
//! request whose first byte selects the target's responder.

use std::net::SocketAddr;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{connect, micros, step, Latency, Window};
use crate::cli::Plan;
use crate::cpu::CpuMeter;
use crate::target::{MODE_REQUEST, REPLY_LEN, REQUEST_LEN};

/// Requests per second and their round-trip percentiles.
#[derive(Debug, Clone, Copy)]
pub struct Requests {
    pub per_second: f64,
    pub latency: Latency,
    /// Requests that failed (churn only; keep-alive failures fail the figure).
    pub errors: u64,
    /// CPU microseconds the tunnel's processes spent per request.
    pub cpu_per_request: Option<f64>,
}

async fn exchange(socket: &mut TcpStream, reply: &mut [u8; REPLY_LEN]) -> anyhow::Result<()> {
    step(
        "sending a request",
        socket.write_all(&[MODE_REQUEST; REQUEST_LEN]),
    )
    .await?;
    step("waiting for a reply", socket.read_exact(reply)).await?;
    Ok(())
}

/// `conns` keep-alive connections, each sending one request at a time.
pub async fn request_response(
    entry: SocketAddr,
    conns: usize,
    plan: &Plan,
    pids: Vec<u32>,
) -> anyhow::Result<Requests> {
    let window = Window::after_warmup(plan);
    let cpu = CpuMeter::start(pids, window);
    let mut tasks = JoinSet::new();
    for _ in 0..conns {
        tasks.spawn(async move {
            let mut socket = connect(entry).await?;
            let mut reply = [0u8; REPLY_LEN];
            let mut samples = Vec::new();
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    return anyhow::Ok(samples);
                }
                exchange(&mut socket, &mut reply).await?;
                let t1 = Instant::now();
                if window.contains(t0, t1) {
                    samples.push(micros(t1 - t0));
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.context("a request task panicked")??);
    }
    with_cpu(summarise(all, 0, window)?, cpu, window).await
}

/// `workers` loops of connect, one request, close.
pub async fn churn(
    entry: SocketAddr,
    workers: usize,
    plan: &Plan,
    pids: Vec<u32>,
) -> anyhow::Result<Requests> {
    let window = Window::after_warmup(plan);
    let cpu = CpuMeter::start(pids, window);
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(async move {
            let mut reply = [0u8; REPLY_LEN];
            let mut samples = Vec::new();
            let mut errors = 0u64;
            let mut last_error = None;
            loop {
                let t0 = Instant::now();
                if t0 >= window.end {
                    return (samples, errors, last_error);
                }
                let outcome = async {
                    let mut socket = connect(entry).await?;
                    exchange(&mut socket, &mut reply).await
                }
                .await;
                let t1 = Instant::now();
                match outcome {
                    Ok(()) if window.contains(t0, t1) => samples.push(micros(t1 - t0)),
                    Ok(()) => {}
                    Err(err) => {
                        errors += 1;
                        last_error = Some(err);
                        // Back off so a refusing tunnel is not a busy loop.
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            }
        });
    }
    let (mut all, mut errors, mut last_error) = (Vec::new(), 0, None);
    while let Some(done) = tasks.join_next().await {
        let (samples, errs, last) = done.context("a churn task panicked")?;
        all.extend(samples);
        errors += errs;
        last_error = last.or(last_error);
    }
    if let Some(err) = last_error {
        eprintln!("  churn: {errors} failed connections; last: {err:#}");
    }
    with_cpu(summarise(all, errors, window)?, cpu, window).await
}

/// Adds the CPU the tunnel spent per completed request.
async fn with_cpu(
    mut requests: Requests,
    cpu: Option<CpuMeter>,
    window: Window,
) -> anyhow::Result<Requests> {
    if let Some(cpu) = cpu {
        let count = requests.per_second * window.seconds();
        requests.cpu_per_request = cpu.finish().await.map(|s| s * 1e6 / count);
    }
    Ok(requests)
}

fn summarise(samples: Vec<u32>, errors: u64, window: Window) -> anyhow::Result<Requests> {
    let count = samples.len();
    let Some(latency) = Latency::from_micros(samples) else {
        bail!("no request completed during the measurement ({errors} failed)");
    };
    Ok(Requests {
        per_second: count as f64 / window.seconds(),
        latency,
        errors,
        cpu_per_request: None,
    })
}
