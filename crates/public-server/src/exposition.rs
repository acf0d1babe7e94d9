//! The `metrics` endpoint: the server's counters in the OpenMetrics text
//! format (which Prometheus scrapes), written with `prometheus-client`.
//! The metrics are built afresh from the counters at every scrape: they
//! live in plain atomics that `status` reads too, and scrapes are rare.

use std::sync::atomic::Ordering;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::metrics::{Counts, REFUSED};
use crate::state::State;

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(&'static str, String)>;

/// The exposition text of every metric, as it is now.
pub(crate) fn metrics_text(state: &State) -> String {
    let mut registry = Registry::with_prefix("uptun");
    links(&mut registry, state);
    connections(&mut registry, state);
    channels(&mut registry, state);
    let uptime: Gauge = Gauge::default();
    uptime.set(state.metrics.started.elapsed().as_secs() as i64);
    registry.register("uptime_seconds", "Seconds since the server started", uptime);
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}

fn links(registry: &mut Registry, state: &State) {
    let up: Family<Labels, Gauge> = Family::default();
    let agents = state.registry.agent_links().len() as i64;
    let clients = state.clients.list().len() as i64;
    up.get_or_create(&kind("agent")).set(agents);
    up.get_or_create(&kind("client")).set(clients);
    registry.register("links", "Links up now, by kind (agent, client)", up);
    let opened = counts("kind", &state.metrics.links_opened);
    registry.register(
        "links_opened",
        "Links that completed the handshake, by kind",
        opened,
    );
    let failed = counts("reason", &state.metrics.handshake_failures);
    registry.register(
        "handshake_failures",
        "Link handshakes refused, by reason (malformed, bad_token, forbidden, version, too_many_links, other)",
        failed,
    );
}

fn connections(registry: &mut Registry, state: &State) {
    let m = &state.metrics;
    registry.register(
        "connections",
        "Connections by what the first bytes made them (link, endpoint, web, raw, silent, rejected, unrouted, gone, failed, over_limit)",
        counts("outcome", &m.classified),
    );
    registry.register(
        "unrouted",
        "Users no route takes, by kind (web: 404 page, raw and silent: reset)",
        counts("kind", &m.unrouted),
    );
}

fn channels(registry: &mut Registry, state: &State) {
    let routed: Family<Labels, Counter> = Family::default();
    let opened: Family<Labels, Counter> = Family::default();
    let refused: Family<Labels, Counter> = Family::default();
    let active: Family<Labels, Gauge> = Family::default();
    let bytes: Family<Labels, Counter> = Family::default();
    let members: Family<Labels, Gauge> = Family::default();
    for agent in state.registry.agent_links() {
        for channel in agent.info.channels {
            members.get_or_create(&label("channel", channel)).inc();
        }
    }
    for (channel, stats) in state.metrics.channels() {
        let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        let name = label("channel", channel.clone());
        routed.get_or_create(&name).inc_by(load(&stats.routed));
        opened.get_or_create(&name).inc_by(load(&stats.opened));
        active
            .get_or_create(&name)
            .set(stats.active.load(Ordering::Relaxed));
        for (reason, n) in REFUSED.iter().zip(&stats.refused) {
            let labels = vec![("channel", channel.clone()), ("reason", reason.to_string())];
            refused.get_or_create(&labels).inc_by(load(n));
        }
        for (way, n) in [
            ("to_agent", &stats.to_agent),
            ("from_agent", &stats.from_agent),
        ] {
            let labels = vec![("channel", channel.clone()), ("direction", way.to_string())];
            bytes.get_or_create(&labels).inc_by(load(n));
        }
    }
    let r = registry;
    r.register(
        "channel_members",
        "Agent links serving the channel now",
        members,
    );
    r.register("routed", "Users the router sent to the channel", routed);
    r.register(
        "streams_opened",
        "Streams an agent accepted, by channel",
        opened,
    );
    r.register("streams_active", "Streams open now, by channel", active);
    r.register(
        "streams_refused",
        "Streams not opened, by channel and reason (no_agent, refused, timeout, forbidden)",
        refused,
    );
    r.register(
        "bytes",
        "Bytes through the channel's streams as the users' sockets saw them, by direction (to_agent, from_agent); a stream adds its bytes in steps of 64 KiB and the rest when it ends",
        bytes,
    );
}

/// A counter family with one series per variant of `counts`.
fn counts<const N: usize>(key: &'static str, counts: &Counts<N>) -> Family<Labels, Counter> {
    let family: Family<Labels, Counter> = Family::default();
    for (name, n) in counts.read() {
        family
            .get_or_create(&label(key, name.to_string()))
            .inc_by(n);
    }
    family
}

fn kind(name: &str) -> Labels {
    label("kind", name.to_string())
}

fn label(key: &'static str, value: String) -> Labels {
    vec![(key, value)]
}
