//! Interactive latency under load: 64-byte messages echoed on one
//! connection, one every 5 ms like a typing user, while 4 bulk uploads
//! saturate the same tunnel. The pinger runs on a thread of its own (as the
//! target's echo does), so it never waits behind the bench's bulk tasks.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, MissedTickBehavior};

use super::bulk::{measure_sink, Uploads};
use super::{connect, micros, step, Latency, Window};
use crate::cli::Plan;
use crate::target::{TargetStats, MODE_ECHO};

const MESSAGE: usize = 64;
const EVERY: Duration = Duration::from_millis(5);
const BULK_STREAMS: usize = 4;

/// Round trips under load, and what the bulk streams got meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Interactive {
    pub latency: Latency,
    pub bulk_gbit_per_s: f64,
}

pub async fn interactive(
    entry: SocketAddr,
    plan: &Plan,
    stats: &TargetStats,
) -> anyhow::Result<Interactive> {
    let window = Window::after_warmup(plan);
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    let pinger = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not build the pinger's runtime")?
            .block_on(pings(entry, window, connected_tx))
    });
    // The bulk streams start once the echo connection is up, so it is not
    // the connection that waits behind them.
    let _ = connected.await;
    let mut uploads = Uploads::start(entry, BULK_STREAMS);
    let bulk = measure_sink(stats, window, &mut uploads).await;
    let samples = pinger.await.context("the pinger panicked")?;
    drop(uploads);
    let latency = Latency::from_micros(samples?)
        .ok_or_else(|| anyhow::anyhow!("no echo completed during the measurement"))?;
    Ok(Interactive {
        latency,
        bulk_gbit_per_s: bulk?,
    })
}

async fn pings(
    entry: SocketAddr,
    window: Window,
    connected: tokio::sync::oneshot::Sender<()>,
) -> anyhow::Result<Vec<u32>> {
    let mut echo = connect(entry).await?;
    let message = [MODE_ECHO; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut connected = Some(connected);
    loop {
        tick.tick().await;
        let t0 = Instant::now();
        if t0 >= window.end {
            return Ok(samples);
        }
        step("sending a message", echo.write_all(&message)).await?;
        step("waiting for the echo", echo.read_exact(&mut back)).await?;
        let t1 = Instant::now();
        if let Some(tx) = connected.take() {
            let _ = tx.send(());
        }
        if window.contains(t0, t1) {
            samples.push(micros(t1 - t0));
        }
    }
}
