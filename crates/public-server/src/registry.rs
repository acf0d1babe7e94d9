//! Which agent links serve which channels. Several agents may serve one
//! channel; each new stream goes to the least-loaded one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::Notify;
use uptun_protocol::LinkHandle;

#[derive(Debug, Clone)]
struct Member {
    id: u64,
    link: LinkHandle,
}

/// A summary of one agent link, for the status endpoint.
#[derive(Debug, Clone)]
pub struct AgentInfo {
    pub name: String,
    pub addr: SocketAddr,
    pub channels: Vec<String>,
    pub streams: usize,
    /// How the link travels, as the server sees it.
    pub transport: LinkTransport,
}

/// The form of a link's request and whether this server terminated TLS
/// for it (behind a router that terminates TLS, `tls` is false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTransport {
    pub websocket: bool,
    pub tls: bool,
    /// rhost's legacy packets (docs/rhost-compat.md), not native frames.
    pub legacy: bool,
}

impl LinkTransport {
    /// `tcp` or `websocket`, as the agent's `link up` line says it, or
    /// `rhost` for a legacy link.
    pub fn form(self) -> &'static str {
        match (self.legacy, self.websocket) {
            (true, _) => "rhost",
            (false, true) => "websocket",
            (false, false) => "tcp",
        }
    }
}

/// An agent link as the status endpoint shows it.
#[derive(Debug, Clone)]
pub(crate) struct AgentLink {
    pub id: u64,
    pub info: AgentInfo,
    pub since: Instant,
    pub rtt: Option<Duration>,
    /// The agent sent GOAWAY: it gets no new streams.
    pub going_away: bool,
}

#[derive(Debug, Default)]
pub struct Registry {
    channels: DashMap<String, Vec<Member>>,
    agents: DashMap<u64, (AgentInfo, LinkHandle, Instant)>,
    next_id: AtomicU64,
    round_robin: AtomicUsize,
    changed: Notify,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an agent link; returns the id to remove it with.
    pub fn add(&self, info: AgentInfo, link: LinkHandle) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        for channel in &info.channels {
            self.channels
                .entry(channel.clone())
                .or_default()
                .push(Member {
                    id,
                    link: link.clone(),
                });
        }
        self.agents.insert(id, (info, link, Instant::now()));
        self.changed.notify_waiters();
        id
    }

    pub fn remove(&self, id: u64) {
        if let Some((_, (info, ..))) = self.agents.remove(&id) {
            for channel in &info.channels {
                if let Some(mut members) = self.channels.get_mut(channel) {
                    members.retain(|m| m.id != id);
                }
                self.channels
                    .remove_if(channel, |_, members| members.is_empty());
            }
        }
    }

    /// An open link serving `channel` that is not going away, other than
    /// `except`: the one with the fewest open streams, taking turns among
    /// equals, so a busy or slow member gets fewer new users.
    pub fn pick(&self, channel: &str, except: Option<&LinkHandle>) -> Option<LinkHandle> {
        let members = self.channels.get(channel)?;
        let usable: Vec<(usize, &Member)> = members
            .iter()
            .filter(|m| !m.link.is_closed() && !m.link.peer_going_away())
            .filter(|m| except.is_none_or(|e| !e.same_link(&m.link)))
            .map(|m| (m.link.stream_count(), m))
            .collect();
        let fewest = usable.iter().map(|(n, _)| *n).min()?;
        let least: Vec<&Member> = usable
            .into_iter()
            .filter(|(n, _)| *n == fewest)
            .map(|(_, m)| m)
            .collect();
        let turn = self.round_robin.fetch_add(1, Ordering::Relaxed);
        Some(least[turn % least.len()].link.clone())
    }

    /// Like `pick`, but waits up to `timeout` for an agent to appear, so
    /// users ride out an agent's reconnect.
    pub async fn wait_for(&self, channel: &str, timeout: Duration) -> Option<LinkHandle> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(link) = self.pick(channel, None) {
                return Some(link);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Every agent link, for the status endpoint.
    pub fn agents(&self) -> Vec<AgentInfo> {
        self.agents
            .iter()
            .map(|e| {
                let (info, link, _) = e.value();
                AgentInfo {
                    streams: link.stream_count(),
                    ..info.clone()
                }
            })
            .collect()
    }

    /// Every agent link with its id and state, oldest first.
    pub(crate) fn agent_links(&self) -> Vec<AgentLink> {
        let mut all: Vec<AgentLink> = self
            .agents
            .iter()
            .map(|e| {
                let (info, link, since) = e.value();
                AgentLink {
                    id: *e.key(),
                    info: AgentInfo {
                        streams: link.stream_count(),
                        ..info.clone()
                    },
                    since: *since,
                    rtt: link.rtt(),
                    going_away: link.peer_going_away(),
                }
            })
            .collect();
        all.sort_by_key(|a| a.id);
        all
    }
}
