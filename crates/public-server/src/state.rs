//! What every connection task shares: the configuration, the registry of
//! agent links, the admission and link counts, the handshake penalties and
//! the shutdown signal. In a file of its own so the modules that serve
//! connections depend on it, not on the accept loop (and not on each other).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::{Config, LiveConfig};
use crate::legacy::Owners;
use crate::limits::{Admission, LinkCounts};
use crate::metrics::Metrics;
use crate::penalty::Penalties;
use crate::registry::Registry;

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct State {
    /// Swapped whole when the config file is reloaded (`HUP`); a connection
    /// keeps the one it started with.
    config: LiveConfig,
    pub admission: Admission,
    pub link_counts: LinkCounts,
    pub registry: Registry,
    /// Failed handshakes per source address.
    pub penalties: Penalties,
    /// Cancelled when the server stops accepting (`QUIT`, `TERM`): links
    /// send GOAWAY and drain.
    pub shutdown: CancellationToken,
    /// Cancelled when the grace after `TERM` is over: links close, and
    /// connections still being classified or waiting for an agent end.
    pub cut: CancellationToken,
    /// Counters for the status and metrics endpoints.
    pub metrics: Metrics,
    /// Client links that are up, for the status endpoint.
    pub clients: Clients,
    /// Which legacy agent holds each legacy channel (legacy/owners.rs).
    pub legacy_owners: Owners,
}

impl State {
    pub fn new(config: LiveConfig, shutdown: CancellationToken) -> State {
        let limits = config.current().limits;
        State {
            admission: Admission::new(limits),
            link_counts: LinkCounts::new(limits.links_per_token),
            config,
            registry: Registry::new(),
            penalties: Penalties::default(),
            shutdown,
            cut: CancellationToken::new(),
            metrics: Metrics::default(),
            clients: Clients::default(),
            legacy_owners: Owners::default(),
        }
    }

    /// The configuration now in force; a connection keeps the one it
    /// started with.
    pub fn config(&self) -> Arc<Config> {
        self.config.current()
    }
}
