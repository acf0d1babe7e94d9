//! Opens a link for the agent or a client: dials in the form the
//! transport [`Choice`] picks, falls back from `Upgrade: tcp` to WebSocket
//! when a router in front refuses the upgrade or holds the link, and
//! starts the mux on what got through.

use std::time::Instant;

use tracing::warn;
use uptun_protocol::{spawn_link, Config, Incoming, LinkHandle, Role};

use crate::dial::{dial, DialError, LinkParams};
use crate::transport::{Choice, Upgrade};

/// A link that is up, and the form it took.
pub(crate) struct Opened {
    pub link: LinkHandle,
    pub incoming: Incoming,
    pub upgrade: Upgrade,
}

/// Opens one link to `p.url` with the mux settings `mux`, learning in
/// `choice` which form gets through.
pub(crate) async fn open(
    p: LinkParams<'_>,
    mux: &Config,
    choice: &Choice,
) -> Result<Opened, DialError> {
    let first = choice.first(Instant::now());
    let failed = match attempt(&p, first, mux, choice.is_auto()).await {
        Ok(opened) => {
            choice.worked(first);
            return Ok(opened);
        }
        Err(failed) => failed,
    };
    if first != Upgrade::Tcp || !choice.is_auto() || !failed.router_in_the_way() {
        return Err(failed);
    }
    warn!(server = %p.url, why = %failed, "Upgrade: tcp did not get through; falling back to WebSocket");
    let opened = attempt(&p, Upgrade::WebSocket, mux, false).await?;
    // Learnt only once WebSocket works: when both fail (a router's 502
    // while the server restarts), tcp may well be fine next time.
    choice.fell_back(Instant::now());
    Ok(opened)
}

/// Dials in the form `upgrade` and starts the link. With `prove`, an
/// `Upgrade: tcp` link must also carry a PING and its PONG within two ping
/// intervals: a router may answer 101 and then hold what follows.
async fn attempt(
    p: &LinkParams<'_>,
    upgrade: Upgrade,
    mux: &Config,
    prove: bool,
) -> Result<Opened, DialError> {
    let dialed = dial(p, upgrade).await?;
    let (link, incoming) = spawn_link(
        dialed.read,
        dialed.write,
        dialed.leftover,
        Role::Dialer,
        mux.clone(),
        dialed.peer_window,
    );
    if prove && upgrade == Upgrade::Tcp {
        let bound = mux.ping_interval * 2;
        let stalled = |kind, why: String| DialError::NoAnswer {
            url: p.url.to_string(),
            err: std::io::Error::new(kind, why),
        };
        match tokio::time::timeout(bound, link.ping()).await {
            Ok(Ok(_rtt)) => {}
            Ok(Err(err)) => {
                let why = format!("the link closed before its first PONG: {err}");
                return Err(stalled(std::io::ErrorKind::ConnectionAborted, why));
            }
            Err(_) => {
                let why = format!(
                    "the link carried no PONG back within {:.1} s (a router in front may hold upgraded connections)",
                    bound.as_secs_f64()
                );
                link.close(&why);
                return Err(stalled(std::io::ErrorKind::TimedOut, why));
            }
        }
    }
    tracing::debug!(server = %p.url, transport = %upgrade, "link up");
    Ok(Opened {
        link,
        incoming,
        upgrade,
    })
}
