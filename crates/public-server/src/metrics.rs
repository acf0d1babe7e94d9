//! What the server counts for `status` and `metrics`: connections by what
//! they turned out to be, routing decisions, link handshakes, and per
//! channel the streams opened, refused and active and the bytes each way.
//! Counting happens at the edges of a connection's life (classified,
//! opened, ended), never per DATA frame: bytes are tallied in each stream
//! and added to its channel in steps (`meter.rs`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use uptun_protocol::handshake::PeerKind;
use uptun_protocol::MuxStream;

use crate::classify::Visitor;
use crate::meter::{MeteredStream, StreamMeter};
use crate::open::TurnedAway;

/// A named counter for each variant of a small enum: one atomic each, and
/// the names in the order the variants are numbered.
#[derive(Debug)]
pub(crate) struct Counts<const N: usize> {
    names: [&'static str; N],
    values: [AtomicU64; N],
}

impl<const N: usize> Counts<N> {
    fn new(names: [&'static str; N]) -> Self {
        Counts {
            names,
            values: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn add(&self, index: usize) {
        self.values[index].fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, count)` for every variant, zeros included.
    pub fn read(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.names
            .iter()
            .zip(&self.values)
            .map(|(name, v)| (*name, v.load(Ordering::Relaxed)))
    }
}

/// What the classifier decided a connection is (`outcome` label).
const CLASSIFIED: [&str; 12] = [
    "link",
    "endpoint",
    "web",
    "raw",
    "silent",
    "rejected",
    "unrouted",
    "gone",
    "failed",
    "over_limit",
    "reply",
    "close",
];

/// Link handshakes refused, by reason (`reason` label), from the status
/// the peer was answered with.
const HANDSHAKE_FAILURES: [&str; 6] = [
    "malformed",
    "bad_token",
    "forbidden",
    "version",
    "too_many_links",
    "other",
];

/// Users no route takes (`kind` label).
const UNROUTED: [&str; 3] = ["web", "raw", "silent"];

/// Why a stream to a channel was not opened (`reason` label).
pub(crate) const REFUSED: [&str; 4] = ["no_agent", "refused", "timeout", "forbidden"];
const FORBIDDEN: usize = 3;

/// Counters of one channel. Bytes are as the user's side saw them:
/// `to_agent` read from users (and clients), `from_agent` written to them.
#[derive(Debug, Default)]
pub(crate) struct ChannelStats {
    pub routed: AtomicU64,
    pub opened: AtomicU64,
    pub refused: [AtomicU64; 4],
    pub active: AtomicI64,
    pub to_agent: AtomicU64,
    pub from_agent: AtomicU64,
}

/// Channels with entries of their own at most, and among them at most this
/// many that no agent ever accepted a stream on: route captures
/// (`channel = "git-$1"`) and clients can name channels freely, and the
/// table must not grow with what strangers type. Past the bounds, counts go
/// to the `(other)` entry, a name no channel can have.
const MAX_CHANNELS: usize = 4096;
const MAX_UNSERVED: usize = 256;
pub(crate) const OTHER: &str = "(other)";

#[derive(Debug)]
pub(crate) struct Metrics {
    pub started: Instant,
    pub classified: Counts<12>,
    pub handshake_failures: Counts<6>,
    /// Links that completed the handshake, by kind (agent, client).
    pub links_opened: Counts<2>,
    pub unrouted: Counts<3>,
    channels: DashMap<String, Arc<ChannelStats>>,
    other: Arc<ChannelStats>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            classified: Counts::new(CLASSIFIED),
            handshake_failures: Counts::new(HANDSHAKE_FAILURES),
            links_opened: Counts::new(["agent", "client"]),
            unrouted: Counts::new(UNROUTED),
            channels: DashMap::new(),
            other: Arc::default(),
        }
    }
}

impl Metrics {
    /// Counts what the classifier made of a connection and, for users, the
    /// routing decision. A silent connection that speaks later is
    /// classified (and routed) again.
    pub fn classified(&self, visitor: &Visitor) {
        let outcome = match visitor {
            Visitor::Link { .. } | Visitor::Legacy { .. } => 0,
            Visitor::Endpoint { .. } => 1,
            Visitor::Web { to, .. } => {
                self.routed(&to.channel);
                2
            }
            Visitor::Raw { to, .. } => {
                self.routed(&to.channel);
                3
            }
            Visitor::Silent { .. } => 4,
            Visitor::Reject(refusal) => {
                // Only the router answers 404 (the other refusals are about
                // malformed or slow heads): an HTTP request no route takes.
                if refusal.status == 404 {
                    self.unrouted.add(0);
                }
                5
            }
            Visitor::Unrouted => {
                self.unrouted.add(1);
                6
            }
            Visitor::Gone => 7,
            Visitor::Reply { then, .. } => {
                if let Some(to) = then {
                    self.routed(&to.channel);
                }
                10
            }
            Visitor::Close { .. } => 11,
        };
        self.classified.add(outcome);
    }

    /// A connection that failed (an I/O error) before it was classified.
    pub fn classify_failed(&self) {
        self.classified.add(8);
    }

    /// A connection turned away at accept, over the admission limits.
    pub fn over_limit(&self) {
        self.classified.add(9);
    }

    /// The silent route's decision: a channel, another action (a reply or
    /// a close: `acted`), or no route at all.
    pub fn silent_routed(&self, channel: Option<&str>, acted: bool) {
        match (channel, acted) {
            (Some(channel), _) => self.routed(channel),
            (None, true) => {}
            (None, false) => self.unrouted.add(2),
        }
    }

    fn routed(&self, channel: &str) {
        self.channel(channel, false)
            .routed
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A link handshake refused with `status`.
    pub fn handshake_failed(&self, status: u16) {
        self.handshake_failures.add(match status {
            400 | 431 => 0,
            401 => 1,
            403 => 2,
            426 => 3,
            429 => 4,
            _ => 5,
        });
    }

    /// A link that completed its handshake.
    pub fn link_up(&self, kind: PeerKind) {
        self.links_opened.add(match kind {
            PeerKind::Agent => 0,
            PeerKind::Client => 1,
        });
    }

    /// Counts the outcome of opening a stream to `channel` and, when it
    /// opened, starts metering it. `first` bytes went out with the OPEN.
    pub fn opened(
        &self,
        channel: &str,
        first: usize,
        opened: Result<MuxStream, TurnedAway>,
    ) -> Result<MeteredStream, TurnedAway> {
        match opened {
            Ok(stream) => {
                // An agent accepted it: the channel is real, give it an entry.
                let stats = self.channel(channel, true);
                stats.to_agent.fetch_add(first as u64, Ordering::Relaxed);
                Ok(MeteredStream::new(stream, StreamMeter::new(stats)))
            }
            Err(turned) => {
                let reason = match turned {
                    TurnedAway::NoAgent { .. } => 0,
                    TurnedAway::Refused { .. } => 1,
                    TurnedAway::Timeout { .. } => 2,
                };
                self.channel(channel, false).refused[reason].fetch_add(1, Ordering::Relaxed);
                Err(turned)
            }
        }
    }

    /// A client's stream refused because its token may not open `channel`.
    pub fn forbidden(&self, channel: &str) {
        self.channel(channel, false).refused[FORBIDDEN].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters of `channel`, made on first use within the bounds
    /// above; `served` when an agent accepted a stream on it.
    pub fn channel(&self, name: &str, served: bool) -> Arc<ChannelStats> {
        if let Some(stats) = self.channels.get(name) {
            return stats.clone();
        }
        let room = if served { MAX_CHANNELS } else { MAX_UNSERVED };
        if self.channels.len() >= room {
            return self.other.clone();
        }
        self.channels.entry(name.to_string()).or_default().clone()
    }

    /// Every channel with counters, by name, `(other)` last if it counted
    /// anything.
    pub fn channels(&self) -> Vec<(String, Arc<ChannelStats>)> {
        let mut all: Vec<_> = self
            .channels
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        if self.other.opened.load(Ordering::Relaxed) > 0
            || self.other.routed.load(Ordering::Relaxed) > 0
            || self
                .other
                .refused
                .iter()
                .any(|r| r.load(Ordering::Relaxed) > 0)
        {
            all.push((OTHER.to_string(), self.other.clone()));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_cannot_grow_the_channel_table_past_its_bound() {
        let metrics = Metrics::default();
        for i in 0..MAX_UNSERVED + 50 {
            metrics.forbidden(&format!("made-up-{i}"));
        }
        assert_eq!(metrics.channels.len(), MAX_UNSERVED);
        assert_eq!(metrics.other.refused[FORBIDDEN].load(Ordering::Relaxed), 50);
        // A channel an agent serves still gets its own entry.
        let web = metrics.channel("web", true);
        web.opened.fetch_add(1, Ordering::Relaxed);
        let names: Vec<String> = metrics.channels().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"web".to_string()));
        assert_eq!(names.last().map(String::as_str), Some(OTHER));
        // Known names keep counting in their own entry, however full.
        metrics.forbidden("made-up-0");
        let first = metrics.channel("made-up-0", false);
        assert_eq!(first.refused[FORBIDDEN].load(Ordering::Relaxed), 2);
    }

    #[test]
    fn handshake_failures_are_named_by_status() {
        let metrics = Metrics::default();
        for status in [401, 401, 403, 426, 429, 400, 500] {
            metrics.handshake_failed(status);
        }
        let got: Vec<_> = metrics.handshake_failures.read().collect();
        assert_eq!(
            got,
            [
                ("malformed", 1),
                ("bad_token", 2),
                ("forbidden", 1),
                ("version", 1),
                ("too_many_links", 1),
                ("other", 1)
            ]
        );
    }
}
