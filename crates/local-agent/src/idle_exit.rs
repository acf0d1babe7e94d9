//! `--exit-when-idle`: an ephemeral agent (a PaaS one-off container, a CI
//! job) stops once no stream has been open for a while, and also when
//! nobody came at all within that time of its start.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The agent's open streams, counted across all its links.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    open: AtomicUsize,
    /// Told when the count goes from 0 to 1 or from 1 to 0, the only
    /// changes the watcher cares about; busy agents never touch it.
    changed: Notify,
}

/// One open stream; dropping it ends the stream's count.
#[derive(Debug)]
pub(crate) struct Busy(Arc<Activity>);

impl Activity {
    /// Counts a stream as open until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        if self.open.fetch_add(1, Ordering::SeqCst) == 0 {
            self.changed.notify_waiters();
        }
        Busy(self.clone())
    }

    fn is_idle(&self) -> bool {
        self.open.load(Ordering::SeqCst) == 0
    }

    /// Resolves once no stream has been open for `limit` (counting from
    /// now when none is open now).
    pub async fn idle_for(&self, limit: Duration) {
        loop {
            // Registered before the check, so a change in between is not lost.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if !self.is_idle() {
                changed.await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(limit) => return,
                _ = changed => {}
            }
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn idle_from_the_start_ends_after_the_limit() {
        let activity = Arc::new(Activity::default());
        let started = Instant::now();
        activity.idle_for(Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_restarts_when_the_last_stream_ends() {
        let activity = Arc::new(Activity::default());
        let limit = Duration::from_secs(2);
        let watcher = {
            let activity = activity.clone();
            tokio::spawn(async move {
                activity.idle_for(limit).await;
                Instant::now()
            })
        };
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (first, second) = (activity.begin(), activity.begin());
        // Open streams for longer than the limit: no exit meanwhile.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(first);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!watcher.is_finished(), "one stream is still open");
        drop(second);
        let ended = watcher.await.unwrap();
        // The last stream ended at 11 s; the agent is idle 2 s later.
        assert_eq!(ended - started, Duration::from_secs(13));
    }
}
