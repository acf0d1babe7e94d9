//! What every connection task shares: the configuration, the registry of
//! agent links, the admission and link counts, the handshake penalties and
//! the shutdown signal. In a file of its own so the modules that serve
//! connections depend on it, not on the accept loop (and not on each other).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clients::Clients;
use crate::config::Config;
use crate::limits::{Admission, LinkCounts};
use crate::metrics::Metrics;
use crate::penalty::Penalties;
use crate::registry::Registry;

/// What every connection task shares.
#[derive(Debug)]
pub(crate) struct State {
    pub config: Config,
    pub admission: Admission,
    pub link_counts: LinkCounts,
    pub registry: Registry,
    /// Failed handshakes per source address.
    pub penalties: Penalties,
    pub shutdown: CancellationToken,
    /// Counters for the status and metrics endpoints.
    pub metrics: Metrics,
    /// Client links that are up, for the status endpoint.
    pub clients: Clients,
}

/// How long open connections get to finish once shutdown is asked for.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

impl State {
    pub fn new(config: Config, shutdown: CancellationToken) -> State {
        State {
            admission: Admission::new(config.limits),
            link_counts: LinkCounts::new(config.limits.links_per_token),
            config,
            registry: Registry::new(),
            penalties: Penalties::default(),
            shutdown,
            metrics: Metrics::default(),
            clients: Clients::default(),
        }
    }
}
