//! Per-channel idle timeouts for users: a user stream on which no byte moved
//! either way for the channel's `--idle-timeout` is reset, like a stream
//! whose agent died, so a forgotten connection does not hold a stream (and
//! its window) forever.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use uptun_protocol::{RelayError, RelayStats};

use crate::tap::{Observe, Tapped};

/// When bytes last moved, in milliseconds since `start`.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: Arc::default(),
        }
    }

    fn stamp(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            if last.elapsed() >= limit {
                return;
            }
            tokio::time::sleep_until(last + limit).await;
        }
    }

    /// Wraps one half of a socket so its reads and writes count as activity.
    pub fn watch<T>(&self, io: T) -> Watched<T> {
        Tapped::new(io, self.clone())
    }
}

/// Runs a relay (as `relay_ending` reports it), or gives up with an error
/// once nothing moved for `limit`. Dropping the relay resets its stream.
pub(crate) async fn bounded_by_idle(
    relay: impl Future<Output = (Result<RelayStats, RelayError>, bool)>,
    activity: &Activity,
    limit: Duration,
) -> (Result<RelayStats, RelayError>, bool) {
    tokio::select! {
        ended = relay => ended,
        () = activity.idle_for(limit) => (Err(RelayError::Local(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no data either way for {:.1} s (idle timeout)", limit.as_secs_f64()),
        ))), false),
    }
}

/// A socket half whose traffic is stamped on an [`Activity`].
pub(crate) type Watched<T> = Tapped<T, Activity>;

impl Observe for Activity {
    fn saw(&mut self, _: usize) {
        self.stamp();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_fires_only_after_a_quiet_limit_and_traffic_moves_it() {
        let activity = Activity::new();
        let (a, mut b) = tokio::io::duplex(64);
        let mut watched = activity.watch(a);
        let limit = Duration::from_secs(10);
        let started = Instant::now();
        let idle = activity.idle_for(limit);
        tokio::pin!(idle);
        // Traffic at 6 s moves the deadline to 16 s.
        tokio::select! {
            () = &mut idle => panic!("idle before any quiet limit"),
            () = tokio::time::sleep(Duration::from_secs(6)) => {}
        }
        tokio::io::AsyncWriteExt::write_all(&mut watched, b"x")
            .await
            .unwrap();
        let mut one = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(&mut b, &mut one)
            .await
            .unwrap();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(16));
    }
}
