//! Which form of link request to send: `Upgrade: tcp` or WebSocket, from
//! `--transport` and the URL's scheme; and, for `auto`, what the dialer
//! has learnt: once a router in front refused `Upgrade: tcp` (or held the
//! link), WebSocket is tried first, and `Upgrade: tcp` again now and then
//! (every [`RETRY_EVERY`]th link, or [`RETRY_AFTER`] after the fallback),
//! as routers get reconfigured.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Scheme;

/// `--transport`: how links travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransportMode {
    /// Upgrade: tcp, falling back to WebSocket when a router in front
    /// refuses it or holds the link
    #[default]
    Auto,
    /// Upgrade: tcp only
    Tcp,
    /// WebSocket only, for routers that pass nothing else
    Websocket,
}

impl std::str::FromStr for TransportMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(TransportMode::Auto),
            "tcp" => Ok(TransportMode::Tcp),
            "websocket" => Ok(TransportMode::Websocket),
            other => Err(format!(
                "{other:?} is not a transport: use auto, tcp or websocket"
            )),
        }
    }
}

impl TransportMode {
    /// Whether this mode fits a server URL of `scheme`, or what to change:
    /// `tcp` contradicts `ws://` and `wss://`.
    pub fn check(self, scheme: Scheme) -> Result<(), String> {
        Choice::new(self, scheme).map(drop)
    }
}

/// The form of one link request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    /// `HEAD` + `Upgrade: tcp`: frames straight on the connection.
    Tcp,
    /// `GET` + `Upgrade: websocket`: frames in binary messages.
    WebSocket,
}

impl std::fmt::Display for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Upgrade::Tcp => "tcp",
            Upgrade::WebSocket => "websocket",
        })
    }
}

/// After a fallback, every this many links try `Upgrade: tcp` first again…
pub const RETRY_EVERY: u32 = 10;
/// …and so does the first link this long after the fallback.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// What a dialer (an agent's links, or a client) knows about the forms.
#[derive(Debug)]
pub struct Choice {
    mode: Choosing,
    learnt: Mutex<Learnt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choosing {
    Only(Upgrade),
    Auto,
}

#[derive(Debug, Default)]
struct Learnt {
    /// When `auto` fell back to WebSocket; `None` while `Upgrade: tcp` works.
    fell_back: Option<Instant>,
    /// Links dialed over WebSocket since the fallback.
    since: u32,
}

impl Choice {
    /// What `--transport mode` means for a server URL of this scheme; an
    /// error says which flag contradicts the URL.
    pub fn new(mode: TransportMode, scheme: Scheme) -> Result<Choice, String> {
        let websocket_url = matches!(scheme, Scheme::Ws | Scheme::Wss);
        let mode = match (mode, websocket_url) {
            (TransportMode::Tcp, true) => {
                return Err("--transport tcp contradicts a ws:// or wss:// server URL: \
                            give http:// (or https://) for Upgrade: tcp, or leave --transport out"
                    .into())
            }
            (TransportMode::Websocket, _) | (_, true) => Choosing::Only(Upgrade::WebSocket),
            (TransportMode::Tcp, false) => Choosing::Only(Upgrade::Tcp),
            (TransportMode::Auto, false) => Choosing::Auto,
        };
        Ok(Choice {
            mode,
            learnt: Mutex::new(Learnt::default()),
        })
    }

    fn learnt(&self) -> std::sync::MutexGuard<'_, Learnt> {
        self.learnt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a failed `Upgrade: tcp` may fall back to WebSocket.
    pub fn is_auto(&self) -> bool {
        self.mode == Choosing::Auto
    }

    /// The form to try first for the next link, as of `now`.
    pub fn first(&self, now: Instant) -> Upgrade {
        if let Choosing::Only(only) = self.mode {
            return only;
        }
        let mut learnt = self.learnt();
        let Some(fell_back) = learnt.fell_back else {
            return Upgrade::Tcp;
        };
        learnt.since += 1;
        if learnt.since >= RETRY_EVERY || now.duration_since(fell_back) >= RETRY_AFTER {
            tracing::info!("trying Upgrade: tcp again, in case the router in front passes it now");
            learnt.since = 0;
            return Upgrade::Tcp;
        }
        Upgrade::WebSocket
    }

    /// As of `now`, WebSocket got through where `Upgrade: tcp` did not:
    /// WebSocket first from now on.
    /// A fallback after a re-try keeps the first fallback's time, so the
    /// next re-try comes after [`RETRY_EVERY`] more attempts (not sooner).
    pub fn fell_back(&self, now: Instant) {
        let mut learnt = self.learnt();
        let first = learnt
            .fell_back
            .filter(|t| now.duration_since(*t) < RETRY_AFTER);
        learnt.fell_back = Some(first.unwrap_or(now));
    }

    /// A link is up over `upgrade`: `Upgrade: tcp` working again forgets
    /// the fallback.
    pub fn worked(&self, upgrade: Upgrade) {
        if upgrade == Upgrade::Tcp && self.is_auto() {
            let mut learnt = self.learnt();
            if learnt.fell_back.take().is_some() {
                tracing::info!("Upgrade: tcp gets through again; links use it from now on");
            }
            learnt.since = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_schemes_pick_the_forms() {
        let now = Instant::now();
        let first = |mode, scheme| Choice::new(mode, scheme).map(|c| c.first(now));
        assert_eq!(first(TransportMode::Auto, Scheme::Http), Ok(Upgrade::Tcp));
        assert_eq!(first(TransportMode::Tcp, Scheme::Https), Ok(Upgrade::Tcp));
        assert_eq!(
            first(TransportMode::Websocket, Scheme::Http),
            Ok(Upgrade::WebSocket)
        );
        assert_eq!(
            first(TransportMode::Auto, Scheme::Ws),
            Ok(Upgrade::WebSocket)
        );
        assert!(first(TransportMode::Tcp, Scheme::Wss)
            .unwrap_err()
            .contains("--transport tcp"));
        assert!(Choice::new(TransportMode::Auto, Scheme::Http)
            .unwrap()
            .is_auto());
        assert!(!Choice::new(TransportMode::Auto, Scheme::Ws)
            .unwrap()
            .is_auto());
    }

    #[test]
    fn auto_remembers_websocket_and_retries_tcp_now_and_then() {
        let t0 = Instant::now();
        let choice = Choice::new(TransportMode::Auto, Scheme::Http).unwrap();
        assert_eq!(choice.first(t0), Upgrade::Tcp);
        choice.fell_back(t0);
        choice.worked(Upgrade::WebSocket);
        // Reconnects use WebSocket, until the tenth tries tcp again.
        let firsts: Vec<Upgrade> = (0..RETRY_EVERY).map(|_| choice.first(t0)).collect();
        assert!(
            firsts[..9].iter().all(|u| *u == Upgrade::WebSocket),
            "{firsts:?}"
        );
        assert_eq!(firsts[9], Upgrade::Tcp);
        // Refused again: back to WebSocket for another ten.
        choice.fell_back(t0 + Duration::from_secs(1));
        assert_eq!(
            choice.first(t0 + Duration::from_secs(2)),
            Upgrade::WebSocket
        );
        // Ten minutes after the fallback, the next link tries tcp.
        assert_eq!(choice.first(t0 + RETRY_AFTER), Upgrade::Tcp);
        // It works: tcp from now on.
        choice.worked(Upgrade::Tcp);
        for _ in 0..2 * RETRY_EVERY {
            assert_eq!(choice.first(t0 + RETRY_AFTER), Upgrade::Tcp);
        }
    }

    #[test]
    fn a_fixed_form_never_changes() {
        let t0 = Instant::now();
        let choice = Choice::new(TransportMode::Tcp, Scheme::Http).unwrap();
        choice.fell_back(t0);
        for _ in 0..2 * RETRY_EVERY {
            assert_eq!(choice.first(t0), Upgrade::Tcp);
        }
    }
}
