//! The `status` document: links (agents and clients), channels with their
//! members, streams and bytes, and the server's counters, as JSON. The
//! dashboard renders the same document; README.md describes its shape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use crate::metrics::{ChannelStats, Counts, REFUSED};
use crate::state::State;

#[derive(Debug, Serialize)]
pub(crate) struct Status {
    version: &'static str,
    uptime_seconds: u64,
    links: LinkCounts,
    agents: Vec<Agent>,
    clients: Vec<Client>,
    channels: Vec<Channel>,
    streams: StreamCounts,
    bytes: Bytes,
    /// Connections by what the classifier made of them.
    connections: BTreeMap<&'static str, u64>,
    /// Link handshakes refused, by reason.
    handshake_failures: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Serialize)]
struct LinkCounts {
    agents: usize,
    clients: usize,
}

#[derive(Debug, Serialize)]
struct Agent {
    id: u64,
    name: String,
    addr: String,
    channels: Vec<String>,
    /// Streams open on the link now.
    streams: usize,
    connected_seconds: u64,
    /// Round-trip time of the last PING, if one came back yet.
    rtt_ms: Option<f64>,
    going_away: bool,
    /// `tcp` or `websocket`: the form of the link's request.
    transport: &'static str,
    /// Whether this server terminated TLS for the link (not a router in front).
    tls: bool,
}

#[derive(Debug, Serialize)]
struct Client {
    id: u64,
    name: String,
    addr: String,
    streams: usize,
    connected_seconds: u64,
    transport: &'static str,
    tls: bool,
}

#[derive(Debug, Serialize)]
struct Channel {
    name: String,
    /// Agent links serving it now (ids as in `agents`).
    members: Vec<Member>,
    /// Users the router sent here.
    routed: u64,
    streams: StreamCounts,
    bytes: Bytes,
}

#[derive(Debug, Serialize)]
struct Member {
    id: u64,
    name: String,
}

#[derive(Debug, Default, Serialize)]
struct StreamCounts {
    active: i64,
    opened: u64,
    refused: u64,
    /// `refused` by reason: no_agent, refused (by the agent), timeout,
    /// forbidden (the client's token does not cover the channel).
    refused_by_reason: BTreeMap<&'static str, u64>,
}

/// Bytes as the users' sockets saw them, added up per stream in steps of
/// 64 KiB and at the stream's end.
#[derive(Debug, Default, Serialize)]
struct Bytes {
    to_agents: u64,
    from_agents: u64,
}

/// The status document as it is now.
pub(crate) fn status(state: &State) -> Status {
    let now = Instant::now();
    let agents: Vec<Agent> = state
        .registry
        .agent_links()
        .into_iter()
        .map(|a| Agent {
            id: a.id,
            name: a.info.name,
            addr: a.info.addr.to_string(),
            channels: a.info.channels,
            streams: a.info.streams,
            connected_seconds: now.duration_since(a.since).as_secs(),
            rtt_ms: a.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
            going_away: a.going_away,
            transport: a.info.transport.form(),
            tls: a.info.transport.tls,
        })
        .collect();
    let clients: Vec<Client> = state
        .clients
        .list()
        .into_iter()
        .map(|c| Client {
            id: c.id,
            name: c.name,
            addr: c.addr.to_string(),
            streams: c.streams,
            connected_seconds: now.duration_since(c.since).as_secs(),
            transport: c.transport.form(),
            tls: c.transport.tls,
        })
        .collect();
    let channels = channels(state, &agents);
    let mut streams = StreamCounts::default();
    let mut bytes = Bytes::default();
    for c in &channels {
        add_streams(&mut streams, &c.streams);
        bytes.to_agents += c.bytes.to_agents;
        bytes.from_agents += c.bytes.from_agents;
    }
    let metrics = &state.metrics;
    Status {
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: metrics.started.elapsed().as_secs(),
        links: LinkCounts {
            agents: agents.len(),
            clients: clients.len(),
        },
        agents,
        clients,
        channels,
        streams,
        bytes,
        connections: counts(&metrics.classified),
        handshake_failures: counts(&metrics.handshake_failures),
    }
}

/// Channels an agent serves now or that have counters, by name.
fn channels(state: &State, agents: &[Agent]) -> Vec<Channel> {
    let counted = state.metrics.channels();
    let served = agents.iter().flat_map(|a| a.channels.iter().cloned());
    let names: BTreeSet<String> = counted
        .iter()
        .map(|(n, _)| n.clone())
        .chain(served)
        .collect();
    names
        .into_iter()
        .map(|name| {
            let members = agents
                .iter()
                .filter(|a| a.channels.contains(&name))
                .map(|a| Member {
                    id: a.id,
                    name: a.name.clone(),
                })
                .collect();
            let stats = counted.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            channel(name, members, stats.map(|s| &**s))
        })
        .collect()
}

fn channel(name: String, members: Vec<Member>, stats: Option<&ChannelStats>) -> Channel {
    let Some(stats) = stats else {
        return Channel {
            name,
            members,
            routed: 0,
            streams: StreamCounts::default(),
            bytes: Bytes::default(),
        };
    };
    let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
    let refused_by_reason: BTreeMap<&'static str, u64> = REFUSED
        .iter()
        .zip(&stats.refused)
        .map(|(reason, n)| (*reason, load(n)))
        .collect();
    Channel {
        name,
        members,
        routed: load(&stats.routed),
        streams: StreamCounts {
            // Acquire, before the bytes are read: see `StreamMeter::drop`.
            active: stats.active.load(Ordering::Acquire),
            opened: load(&stats.opened),
            refused: refused_by_reason.values().sum(),
            refused_by_reason,
        },
        bytes: Bytes {
            to_agents: load(&stats.to_agent),
            from_agents: load(&stats.from_agent),
        },
    }
}

fn add_streams(total: &mut StreamCounts, one: &StreamCounts) {
    total.active += one.active;
    total.opened += one.opened;
    total.refused += one.refused;
    for (reason, n) in &one.refused_by_reason {
        *total.refused_by_reason.entry(reason).or_default() += n;
    }
}

fn counts<const N: usize>(counts: &Counts<N>) -> BTreeMap<&'static str, u64> {
    counts.read().collect()
}
