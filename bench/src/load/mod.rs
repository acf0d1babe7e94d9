//! The load generator: one module per workload, and what they share
//! (measurement windows, timeouts, percentiles).

mod bulk;
mod idle;
mod interactive;
mod requests;

pub use bulk::bulk;
pub use idle::{hold, idle_connections};
pub use interactive::interactive;
pub use requests::{churn, request_response};

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cli::Plan;

/// No single step (connect, one reply) may take longer than this; a tunnel
/// that stalls fails the figure instead of hanging the bench.
pub const STEP_LIMIT: Duration = Duration::from_secs(10);

/// The span over which a figure is counted: after the warm-up, for `measure`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn after_warmup(plan: &Plan) -> Self {
        let start = Instant::now() + plan.warmup;
        Window {
            start,
            end: start + plan.measure,
        }
    }

    pub fn contains(&self, from: Instant, to: Instant) -> bool {
        from >= self.start && to <= self.end
    }

    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

impl Latency {
    /// Percentiles of round trips given in microseconds; `None` when empty.
    pub fn from_micros(mut samples: Vec<u32>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            f64::from(samples[rank - 1]) / 1000.0
        };
        Some(Latency {
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

pub fn micros(d: Duration) -> u32 {
    d.as_micros().min(u128::from(u32::MAX)) as u32
}

/// Connects with a time limit and TCP_NODELAY, as every client here does.
pub async fn connect(entry: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = tokio::time::timeout(STEP_LIMIT, TcpStream::connect(entry))
        .await
        .with_context(|| format!("connecting to {entry} took over {STEP_LIMIT:?}"))?
        .with_context(|| format!("could not connect to {entry}"))?;
    socket.set_nodelay(true)?;
    Ok(socket)
}

/// Awaits `fut`, failing with `what` if it takes over [`STEP_LIMIT`].
pub async fn step<T>(
    what: &str,
    fut: impl std::future::Future<Output = std::io::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(STEP_LIMIT, fut)
        .await
        .with_context(|| format!("{what}: nothing for {STEP_LIMIT:?}"))?
        .with_context(|| format!("{what} failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let l = Latency::from_micros(samples).unwrap();
        assert_eq!((l.p50, l.p99), (50.0, 99.0));
        let one = Latency::from_micros(vec![1500]).unwrap();
        assert_eq!((one.p50, one.p99), (1.5, 1.5));
        assert!(Latency::from_micros(Vec::new()).is_none());
    }
}
