//! `--idle-timeout NAME=DURATION`: a terminal stream closes once neither
//! side has spoken for DURATION (rama's console timeout). The terminal
//! kinds touch an [`Idle`] on every chunk and size either way, and select
//! on [`Idle::expired`] beside their traffic.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// When a stream last carried anything, and how long it may stay quiet.
/// Clones share the clock, so each direction can touch its own.
#[derive(Debug, Clone)]
pub(crate) struct Idle {
    limit: Option<Duration>,
    last: Arc<Mutex<Instant>>,
}

impl Idle {
    /// A clock that starts now; `None` never expires.
    pub fn new(limit: Option<Duration>) -> Idle {
        Idle {
            limit,
            last: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Something passed, one way or the other.
    pub fn touch(&self) {
        if self.limit.is_some() {
            *self.last.lock().expect("idle clock") = Instant::now();
        }
    }

    /// Resolves once the stream has been quiet for the limit; never
    /// without one. Cancel safe.
    pub async fn expired(&self) {
        let Some(limit) = self.limit else {
            return std::future::pending().await;
        };
        loop {
            let due = *self.last.lock().expect("idle clock") + limit;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }

    /// Why the stream was closed, for the user (the RESET reason) and the log.
    pub fn reason(&self) -> String {
        let limit = self.limit.unwrap_or_default();
        format!(
            "closed after {} with nothing sent either way (the agent's --idle-timeout)",
            humanize(limit)
        )
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_after_the_limit_of_quiet_and_touches_put_it_off() {
        let idle = Idle::new(Some(Duration::from_secs(60)));
        let start = Instant::now();
        let other_side = idle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(50)).await;
            other_side.touch();
        });
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(110));
        // Already expired: at once again.
        idle.expired().await;
        assert_eq!(start.elapsed(), Duration::from_secs(110));
        assert!(
            idle.reason().contains("closed after 60 s"),
            "{}",
            idle.reason()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_limit_it_never_expires() {
        let idle = Idle::new(None);
        let waited = tokio::time::timeout(Duration::from_secs(86_400), idle.expired()).await;
        assert!(waited.is_err());
    }
}
