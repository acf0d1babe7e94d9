//! What the server needs to speak rhost's legacy protocol (docs/rhost-compat.md):
//! the key of each legacy channel, which channels the legacy root `/`
//! stands for, and how long a half-close is held. Legacy links are refused
//! while no key is configured.

use std::time::Duration;

use uptun_protocol::Secret;

/// A legacy channel as rhost names it in the request path: `/` or `/name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LegacyPath {
    /// `/`: the users the default routes give to the http, ssh and tcp
    /// channels ([`LegacyConfig::root_channels`]).
    Root,
    /// `/name`: the channel `name`.
    Named(String),
}

impl std::fmt::Display for LegacyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LegacyPath::Root => f.write_str("/"),
            LegacyPath::Named(name) => write!(f, "/{name}"),
        }
    }
}

/// rhost compatibility settings. The default has no keys: legacy off.
#[derive(Debug, Clone)]
pub struct LegacyConfig {
    /// The key a legacy agent must present to serve each channel (env
    /// `KEYS_SSH=…` for `/ssh`, `KEYS_=…` for `/`; `[legacy] keys` in the
    /// config file). A channel without a key is refused to legacy agents.
    pub keys: Vec<(LegacyPath, Secret)>,
    /// The channels the legacy root `/` serves: the http, ssh and tcp
    /// channels of the default routes (`web`, `ssh`, `tcp`). A legacy
    /// client on `/` opens streams on the first.
    pub root_channels: Vec<String>,
    /// How long a user's half-close is held on a legacy agent's stream
    /// after the agent last sent on it, before it becomes `c-` (the legacy
    /// protocol closes both ways); the agent's own `c-` ends it sooner.
    pub linger: Duration,
}

/// How long a half-close waits for the legacy agent's own close by default.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);

impl Default for LegacyConfig {
    fn default() -> LegacyConfig {
        LegacyConfig {
            keys: Vec::new(),
            root_channels: vec!["web".into(), "ssh".into(), "tcp".into()],
            linger: DEFAULT_LINGER,
        }
    }
}

impl LegacyConfig {
    /// Whether legacy links are served at all.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key configured for `path`, if any.
    pub fn key(&self, path: &LegacyPath) -> Option<&Secret> {
        self.keys.iter().find(|(p, _)| p == path).map(|(_, k)| k)
    }

    /// The native channels a legacy agent on `path` serves.
    pub fn channels(&self, path: &LegacyPath) -> Vec<String> {
        match path {
            LegacyPath::Root => self.root_channels.clone(),
            LegacyPath::Named(name) => vec![name.clone()],
        }
    }
}
