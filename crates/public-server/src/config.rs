//! Everything the server needs to know, independent of how it was given.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use uptun_protocol::Secret;

use crate::auth::{Grant, Tokens};
use crate::legacy::LegacyConfig;
use crate::limits::Limits;
use crate::route::{default_rules, Rule};
use crate::tls::ServerTls;

/// Server settings. `Cli` builds one from flags and the environment; tests
/// and the demo build one directly. Tokens are [`Secret`]s: `{:?}` of a
/// `Config` shows `***` for each.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tokens agents and clients present (`Authorization: Bearer`), each
    /// with the channels it covers; without a client token, clients are
    /// refused with 403.
    pub tokens: Tokens,
    /// Bearer token `<prefix>/status` wants; without one, status is off.
    pub admin_token: Option<Secret>,
    /// How users are routed to channels, in order (`route.rs`); without a
    /// config file, the default rules built from the channel flags.
    pub routes: Vec<Rule>,
    /// Path prefix of the built-in endpoints (`/_uptun/health`).
    pub endpoint_prefix: String,
    /// How long a user waits for an agent of its channel to appear.
    pub connect_timeout: Duration,
    /// A connection silent this long at the start is a raw user of a
    /// protocol where the server speaks first.
    pub sniff_timeout: Duration,
    /// How long an HTTP request head may take to arrive.
    pub header_timeout: Duration,
    /// Bounds on connections still being classified.
    pub limits: Limits,
    /// Channels whose users are reset after this long without a byte
    /// either way; other channels have no idle timeout.
    pub idle_timeouts: Vec<(String, Duration)>,
    /// Link tunables (window, ping interval, …).
    pub mux: uptun_protocol::Config,
    /// The server's own TLS (`tls.rs`): connections that start a TLS
    /// handshake are terminated and classified inside; `None` serves plain
    /// TCP only.
    pub tls: Option<ServerTls>,
    /// rhost's legacy protocol (`legacy.rs`): off while it has no keys.
    pub legacy: LegacyConfig,
}

impl Config {
    /// A configuration with one agent token good for every channel.
    pub fn new(agent_token: impl Into<Secret>) -> Config {
        Config {
            tokens: Tokens {
                agents: vec![Grant::any(agent_token)],
                clients: Vec::new(),
            },
            admin_token: None,
            routes: default_rules("web", "ssh", "tcp"),
            endpoint_prefix: "/_uptun".into(),
            connect_timeout: Duration::from_secs(10),
            sniff_timeout: Duration::from_millis(500),
            header_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            idle_timeouts: Vec::new(),
            mux: uptun_protocol::Config::default(),
            tls: None,
            legacy: LegacyConfig::default(),
        }
    }

    /// The idle timeout of `channel`'s users, if it has one.
    pub(crate) fn idle_timeout(&self, channel: &str) -> Option<Duration> {
        self.idle_timeouts
            .iter()
            .find(|(name, _)| name == channel)
            .map(|(_, limit)| *limit)
    }
}

/// The configuration of a running server, replaceable while it runs (the
/// config file reloaded on `HUP`). Clones share it: keep one to replace
/// what the server uses. A connection keeps the configuration it started
/// with; admission limits and link tunables stay as they were at start.
#[derive(Debug, Clone)]
pub struct LiveConfig(Arc<ArcSwap<Config>>);

impl LiveConfig {
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig(Arc::new(ArcSwap::from_pointee(config)))
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        self.0.load_full()
    }

    /// Puts `config` in force for connections from now on.
    pub fn replace(&self, config: Config) {
        self.0.store(Arc::new(config));
    }
}

impl From<Config> for LiveConfig {
    fn from(config: Config) -> LiveConfig {
        LiveConfig::new(config)
    }
}
