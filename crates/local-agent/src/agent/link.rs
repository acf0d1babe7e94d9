//! One of the agent's links: dialed, served until it drops, dialed again
//! after a backoff; drained when the agent is asked to stop. Where it goes
//! up or down it tells the [`Reporter`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uptun_protocol::handshake::PeerKind;
use uptun_protocol::{Incoming, LinkHandle};

use super::stream::Serving;
use super::{AgentConfig, AgentError};
use crate::dial::{DialError, LinkParams};
use crate::opener::{open, Opened};
use crate::report::Reporter;
use crate::transport::Choice;

/// What keeping link number `index` up needs.
pub(super) struct Link {
    pub index: usize,
    pub config: Arc<AgentConfig>,
    pub serving: Serving,
    pub choice: Arc<Choice>,
    pub reporter: Arc<Reporter>,
}

impl Link {
    /// Keeps the link up, reconnecting as the retry policy says, until
    /// `shutdown` (then drains it) or a failure retrying cannot fix.
    pub async fn keep_up(self, shutdown: CancellationToken) -> Result<(), AgentError> {
        let config = &self.config;
        let names: Vec<String> = config.channels.iter().map(|(n, _)| n.clone()).collect();
        let mut backoff = config.retry.backoff();
        // Dials failed in a row, and retries made, since the link was last up.
        let (mut failures, mut attempt) = (0u32, 0u32);
        while !shutdown.is_cancelled() {
            let dialed = tokio::select! {
                r = open(self.params(&names), &config.mux, &self.choice) => r,
                _ = shutdown.cancelled() => break,
            };
            let cause = match dialed {
                Ok(opened) => {
                    (failures, attempt) = (0, 0);
                    backoff.reset();
                    info!(server = %config.server, transport = %opened.upgrade, channels = %names.join(","), "link up: serving channels");
                    // Before the first stream is taken from the link.
                    let transport = opened.upgrade.to_string();
                    self.reporter.up(self.index, transport, &names, &[]);
                    let reason = self.serve(opened, &shutdown).await;
                    if shutdown.is_cancelled() {
                        break;
                    }
                    warn!(server = %config.server, %reason, "link lost");
                    format!("link lost: {reason}")
                }
                Err(err) if err.is_fatal() => return Err(fatal(err)),
                Err(err) => {
                    warn!(%err, "cannot connect");
                    failures += 1;
                    if config.retry.attempts().is_some_and(|most| failures >= most) {
                        let cause = err.to_string();
                        return Err(AgentError::GaveUp {
                            attempts: failures,
                            cause,
                        });
                    }
                    err.to_string()
                }
            };
            attempt += 1;
            let delay = backoff.next_delay();
            info!("reconnecting in {:.1} s", delay.as_secs_f64());
            self.reporter.retrying(self.index, attempt, delay, cause);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        Ok(())
    }

    fn params<'a>(&'a self, names: &[String]) -> LinkParams<'a> {
        let config = &self.config;
        LinkParams {
            url: &config.server,
            proxy: config.proxy.as_ref(),
            transport: &config.transport,
            token: &config.token,
            kind: PeerKind::Agent,
            channels: names.to_vec(),
            window: config.mux.window,
            name: config.name.clone(),
        }
    }

    /// Serves the link until it closes; returns why it closed.
    async fn serve(&self, opened: Opened, shutdown: &CancellationToken) -> String {
        let Opened {
            link, mut incoming, ..
        } = opened;
        let asked_to_stop = loop {
            tokio::select! {
                next = incoming.next() => match next {
                    Some(stream) => self.serving.spawn(stream),
                    None => break false,
                },
                _ = shutdown.cancelled() => break true,
            }
        };
        if asked_to_stop {
            drain(&link, incoming, self.config.grace).await;
        }
        // The reader ends `incoming` just before it records why the link closed.
        link.closed().await;
        link.close_reason().unwrap_or_default()
    }
}

/// The error a refusal that retrying cannot fix stops the agent with.
fn fatal(err: DialError) -> AgentError {
    match err {
        DialError::Refused(refusal) => AgentError::Refused(refusal),
        DialError::Proxy(refused) => AgentError::Proxy(refused),
        other @ DialError::Certificate { .. } => AgentError::Certificate(other.to_string()),
        DialError::Unreachable { .. } | DialError::NoAnswer { .. } => {
            unreachable!("only refusals are fatal")
        }
    }
}

/// GOAWAY, then refuse the streams that crossed it while the open ones get
/// `grace` in all to finish (and their last frames to be written); then
/// close the link, which fails whatever is still open. An idle link closes
/// at once.
async fn drain(link: &LinkHandle, mut incoming: Incoming, grace: Duration) {
    const WHY: &str = "the agent is shutting down";
    let drained = tokio::time::timeout(grace, link.drain(WHY, grace));
    tokio::pin!(drained);
    loop {
        tokio::select! {
            next = incoming.next() => match next {
                Some(stream) => stream.refuse("the agent is going away"),
                None => break,
            },
            finished = &mut drained => {
                if finished.is_err() {
                    warn!(streams = link.stream_count(), "grace period over: closing the streams still open");
                }
                break;
            }
        }
    }
    link.close(WHY);
}
