//! Opening a stream to an agent of a channel for a user: which member,
//! how long to wait for its ACCEPT, and one retry on another member when
//! the first is dead or refuses. The user's first bytes are kept until
//! ACCEPT so the retry can send them again.

use std::time::Duration;

use bytes::Bytes;
use tracing::{info, warn};
use uptun_protocol::{LinkHandle, MuxStream, StreamError};

use crate::links::reason;
use crate::meter::MeteredStream;
use crate::route::Destination;
use crate::state::State;

/// Why a user could not be given a stream. `Display` is the sentence shown
/// to the user: it names the channel, never a target, an agent or an OS
/// error (those go to the log).
#[derive(Debug)]
pub(crate) enum TurnedAway {
    /// No agent serves the channel (within the connect timeout).
    NoAgent { channel: String },
    /// The agents tried could not reach their target, or went away.
    Refused { channel: String, why: String },
    /// No ACCEPT within the connect timeout.
    Timeout { channel: String },
}

impl TurnedAway {
    /// The HTTP status a web user is shown.
    pub fn status(&self) -> u16 {
        match self {
            TurnedAway::NoAgent { .. } => 503,
            TurnedAway::Refused { .. } => 502,
            TurnedAway::Timeout { .. } => 504,
        }
    }

    /// The REFUSE reason a client (`connect`, `forward`) reads: the
    /// sentence a user sees, and for a channel nobody served, how long the
    /// server waited and what to check, since the person at a client can
    /// usually fix that.
    pub fn for_client(&self, waited: std::time::Duration) -> String {
        match self {
            TurnedAway::NoAgent { channel } => format!(
                "no agent served channel \"{channel}\" within {:.1} s (the server's \
                 --connect-timeout): check that an agent runs with --channel {channel}=TARGET, \
                 that its link is up (it logs \"link up\"), and that its token may serve \
                 \"{channel}\"",
                waited.as_secs_f64()
            ),
            _ => self.to_string(),
        }
    }

    /// The detail for the log only: what the agent said.
    pub fn detail(&self) -> &str {
        match self {
            TurnedAway::Refused { why, .. } => why,
            _ => "",
        }
    }
}

impl std::fmt::Display for TurnedAway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnedAway::NoAgent { channel } => write!(
                f,
                "no agent is serving channel \"{channel}\" right now; try again in a moment"
            ),
            TurnedAway::Refused { channel, .. } => write!(
                f,
                "the service behind channel \"{channel}\" cannot be reached right now; try again later"
            ),
            TurnedAway::Timeout { channel } => write!(
                f,
                "the service behind channel \"{channel}\" did not answer in time; try again later"
            ),
        }
    }
}

/// Opens a stream to an agent serving `to.channel`, sends `first`, and waits for
/// ACCEPT within the connect timeout. `term` is a client's terminal type,
/// passed on in the OPEN (§4.4); users reached on the port have none. The least-loaded member is tried first;
/// if it refuses, goes away or does not answer in time, one other member (if
/// any) is tried with the same first bytes. The outcome is counted, and an
/// opened stream is metered for as long as it lives.
pub(crate) async fn open_to_agent(
    to: &Destination,
    user: &str,
    term: Option<&str>,
    first: Bytes,
    state: &State,
) -> Result<MeteredStream, TurnedAway> {
    let sent = first.len();
    let opened = open_on_a_member(to, user, term, first, state).await;
    state.metrics.opened(&to.channel, sent, opened)
}

async fn open_on_a_member(
    to: &Destination,
    user: &str,
    term: Option<&str>,
    first: Bytes,
    state: &State,
) -> Result<MuxStream, TurnedAway> {
    let channel = to.channel.as_str();
    let limit = to
        .connect_timeout
        .unwrap_or_else(|| state.config().connect_timeout);
    let agent = match state.registry.pick(channel, None) {
        Some(agent) => agent,
        None => {
            info!(%user, %channel, "no agent serves the channel yet; waiting up to {:.1} s", limit.as_secs_f64());
            let found = tokio::select! {
                found = state.registry.wait_for(channel, limit) => found,
                // The server's shutdown grace is over: nobody waits any more.
                _ = state.cut.cancelled() => None,
            };
            found.ok_or_else(|| TurnedAway::NoAgent {
                channel: channel.into(),
            })?
        }
    };
    let failed = match attempt(&agent, channel, user, term, first.clone(), limit).await {
        Ok(stream) => return Ok(stream),
        Err(failed) => failed,
    };
    let Some(other) = state.registry.pick(channel, Some(&agent)) else {
        return Err(failed);
    };
    warn!(%user, %channel, why = %failed.detail(), "first agent failed the stream; trying another");
    attempt(&other, channel, user, term, first, limit).await
}

/// One try on one agent link.
async fn attempt(
    agent: &LinkHandle,
    channel: &str,
    user: &str,
    term: Option<&str>,
    first: Bytes,
    limit: Duration,
) -> Result<MuxStream, TurnedAway> {
    let refused = |err: StreamError| TurnedAway::Refused {
        channel: channel.into(),
        why: reason(&err),
    };
    let timed_out = || TurnedAway::Timeout {
        channel: channel.into(),
    };
    // One deadline for the whole try: queueing OPEN and the first bytes
    // waits too when the link's writer is blocked (a member that reads
    // nothing), and that wait must not outlast the connect timeout.
    let deadline = tokio::time::Instant::now() + limit;
    let stream = tokio::time::timeout_at(deadline, agent.open_with_term(channel, user, term))
        .await
        .map_err(|_| timed_out())?
        .map_err(refused)?;
    let answered = tokio::time::timeout_at(deadline, async {
        // The request goes out with OPEN, not a round trip later.
        if !first.is_empty() {
            stream.send(first).await?;
        }
        stream.accepted().await
    });
    match answered.await {
        Ok(Ok(())) => Ok(stream),
        Ok(Err(err)) => Err(refused(err)),
        Err(_) => {
            stream.reset("no ACCEPT within the connect timeout");
            Err(timed_out())
        }
    }
}
