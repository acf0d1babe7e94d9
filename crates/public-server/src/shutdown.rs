//! How the server is asked to stop, in ProxyMachine's two ways: `drain`
//! (`QUIT`: stop accepting, GOAWAY every link, wait as long as streams
//! live) and `stop(grace)` (`TERM`/`INT`: the same, but close whatever is
//! still open when the grace runs out). Both close the port at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use uptun_cli::DEFAULT_GRACE;

/// A handle to ask a running server to stop. Cheap to clone; every clone
/// asks the same server. A `CancellationToken` given to `run` instead acts
/// as `stop(DEFAULT_GRACE)` when cancelled.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Cancelled by either way of stopping: the accept loop ends, links get
    /// GOAWAY.
    stopping: CancellationToken,
    deadline: Arc<watch::Sender<Deadline>>,
}

/// Until when open connections may run once stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Deadline {
    /// Nobody said: `DEFAULT_GRACE` from when the server notices.
    #[default]
    Unset,
    /// `drain`: as long as they live.
    Never,
    At(Instant),
}

impl From<CancellationToken> for Shutdown {
    fn from(stopping: CancellationToken) -> Shutdown {
        Shutdown {
            stopping,
            deadline: Arc::default(),
        }
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Stop accepting now and wait, without a deadline, for the open
    /// streams to finish. A `stop` before or after still sets a deadline.
    pub fn drain(&self) {
        self.deadline.send_if_modified(|d| {
            let unset = *d == Deadline::Unset;
            if unset {
                *d = Deadline::Never;
            }
            unset
        });
        self.stopping.cancel();
    }

    /// Stop accepting now and close what is still open after `grace`. Of
    /// several calls the earliest deadline holds, so a second `TERM` with a
    /// zero grace closes everything at once.
    pub fn stop(&self, grace: Duration) {
        self.shorten(Instant::now() + grace);
        self.stopping.cancel();
    }

    /// Whether either way of stopping was asked for.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.stopping
    }

    fn shorten(&self, at: Instant) {
        self.deadline.send_if_modified(|d| match *d {
            Deadline::At(earlier) if earlier <= at => false,
            _ => {
                *d = Deadline::At(at);
                true
            }
        });
    }

    /// Waits for `done` until the deadline asked for (which a later call
    /// may move); false if the deadline came first.
    pub(crate) async fn within(&self, done: impl Future) -> bool {
        if *self.deadline.borrow() == Deadline::Unset {
            self.shorten(Instant::now() + DEFAULT_GRACE);
        }
        let mut changes = self.deadline.subscribe();
        tokio::pin!(done);
        loop {
            let deadline = *changes.borrow_and_update();
            let expired = async {
                match deadline {
                    Deadline::At(at) => tokio::time::sleep_until(at).await,
                    Deadline::Never | Deadline::Unset => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut done => return true,
                () = expired => return false,
                // `self` holds the sender, so this never ends in an error.
                _ = changes.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    /// How long `within` waits for something that never finishes, in
    /// paused time; `None` if it is still waiting after a day.
    async fn waited(shutdown: &Shutdown) -> Option<Duration> {
        let start = Instant::now();
        let within = shutdown.within(std::future::pending::<()>());
        match tokio::time::timeout(24 * HOUR, within).await {
            Ok(finished) => {
                assert!(!finished, "a pending future cannot finish");
                Some(start.elapsed())
            }
            Err(_) => None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn drain_has_no_deadline() {
        let shutdown = Shutdown::new();
        shutdown.drain();
        assert!(shutdown.is_stopping());
        assert_eq!(waited(&shutdown).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_waits_its_grace_and_a_token_the_default() {
        let shutdown = Shutdown::new();
        shutdown.stop(Duration::from_secs(2));
        assert_eq!(waited(&shutdown).await, Some(Duration::from_secs(2)));

        let token = CancellationToken::new();
        let shutdown = Shutdown::from(token.clone());
        token.cancel();
        assert!(shutdown.is_stopping());
        assert_eq!(waited(&shutdown).await, Some(DEFAULT_GRACE));
    }

    #[tokio::test(start_paused = true)]
    async fn the_earliest_deadline_holds_whatever_the_order() {
        let shutdown = Shutdown::new();
        shutdown.stop(Duration::from_secs(5));
        shutdown.drain();
        shutdown.stop(Duration::from_secs(30));
        assert_eq!(waited(&shutdown).await, Some(Duration::from_secs(5)));
    }

    /// `QUIT` and then `TERM`: the wait already under way gets the grace.
    #[tokio::test(start_paused = true)]
    async fn a_stop_during_a_drain_sets_the_deadline() {
        let shutdown = Shutdown::new();
        shutdown.drain();
        let waiting = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { waited(&shutdown).await }
        });
        tokio::time::sleep(HOUR).await;
        shutdown.stop(Duration::from_secs(3));
        assert_eq!(waiting.await.unwrap(), Some(HOUR + Duration::from_secs(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn what_finishes_in_time_is_not_cut() {
        let shutdown = Shutdown::new();
        shutdown.stop(Duration::from_secs(2));
        let quick = tokio::time::sleep(Duration::from_secs(1));
        assert!(shutdown.within(quick).await);
    }
}
