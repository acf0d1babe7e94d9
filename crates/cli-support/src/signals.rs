//! The signals a long-running uptun process obeys, as ProxyMachine documents
//! them: `QUIT` drains (no new connections, wait as long as streams live),
//! `TERM` and `INT` stop within a grace period, `HUP` reloads. Each arrives
//! as a typed [`Signal`], so `main` decides what it means in one `match`.

use std::time::Duration;

/// What a signal asks of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGQUIT`: stop taking new work and wait, without a deadline, for
    /// what is open to finish.
    Quit,
    /// `SIGTERM` or `SIGINT` (Ctrl-C): stop taking new work and wait at most
    /// the grace period.
    Terminate,
    /// `SIGHUP`: read the configuration again.
    Reload,
}

/// The grace period after `TERM`/`INT` when `--grace` is not given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
/// The longest `--grace`: past an hour, `QUIT` (no deadline) says it better.
pub const MAX_GRACE: Duration = Duration::from_secs(3600);

/// A flag parser for `--grace`: `0s` (close at once) to an hour.
pub fn grace_in_range() -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static
{
    crate::duration_in(Duration::ZERO, MAX_GRACE)
}

/// The handlers for `QUIT`, `TERM`, `INT` and `HUP`, installed when this is
/// made: from then on those signals no longer end the process by default,
/// and one that arrives before the first [`Signals::recv`] waits for it.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    kinds: [(Signal, tokio::signal::unix::Signal); 4],
}

impl Signals {
    /// Installs the handlers. Needs a tokio runtime; fails only if the OS
    /// refuses a handler.
    pub fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                kinds: [
                    (Signal::Quit, signal(SignalKind::quit())?),
                    (Signal::Terminate, signal(SignalKind::terminate())?),
                    (Signal::Terminate, signal(SignalKind::interrupt())?),
                    (Signal::Reload, signal(SignalKind::hangup())?),
                ],
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal, in the order they arrive (several of one kind that
    /// arrive together may count as one, as the OS merges them).
    pub async fn recv(&mut self) -> Signal {
        #[cfg(unix)]
        {
            let next = std::future::poll_fn(|cx| {
                for (signal, stream) in self.kinds.iter_mut() {
                    if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                        return std::task::Poll::Ready(*signal);
                    }
                }
                std::task::Poll::Pending
            });
            next.await
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Terminate
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// The handlers really are installed: a signal sent to this very process
    /// (by kill(1), as an operator would) comes out typed instead of ending
    /// the test run.
    #[tokio::test]
    async fn each_signal_arrives_typed() {
        let mut signals = Signals::new().unwrap();
        for (name, want) in [
            ("HUP", Signal::Reload),
            ("QUIT", Signal::Quit),
            ("TERM", Signal::Terminate),
            ("INT", Signal::Terminate),
        ] {
            let sent = std::process::Command::new("kill")
                .args([format!("-{name}"), std::process::id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
            let got = tokio::time::timeout(Duration::from_secs(10), signals.recv())
                .await
                .expect("the signal arrives");
            assert_eq!(got, want, "SIG{name}");
        }
    }

    #[test]
    fn grace_bounds() {
        let grace = grace_in_range();
        assert_eq!(grace("0").unwrap(), Duration::ZERO);
        assert_eq!(grace("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(grace("1h").unwrap(), MAX_GRACE);
        assert!(grace("2h").unwrap_err().contains("0s to 3600s"));
    }
}
