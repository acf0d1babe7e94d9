//! The uptun public server: owns one port, tells agents, clients, built-in
//! endpoints, web users and raw TCP users apart by their first bytes, and
//! relays users to the agents serving their channel.
#![forbid(unsafe_code)]

mod acme;
mod auth;
mod classify;
mod cli;
mod clients;
mod config;
mod config_file;
mod config_legacy;
mod config_routes;
mod endpoints;
mod exposition;
#[doc(hidden)]
pub mod fuzzing;
mod idle;
mod legacy;
mod limits;
mod links;
mod meter;
mod metrics;
mod open;
mod pattern;
mod penalty;
mod registry;
mod route;
mod server;
mod settings;
mod shutdown;
mod silent;
mod sni;
mod socket;
mod state;
mod status;
mod tap;
mod timeouts;
mod tls;
mod users;
mod ws_link;

pub use acme::{AcmeSettings, LETS_ENCRYPT};
pub use auth::{Channels, Grant, Tokens};
pub use cli::{generate_token, init_logging, Cli, LogFormat};
pub use config::{Config, LiveConfig};
pub use config_file::ConfigError;
pub use legacy::{LegacyConfig, LegacyPath};
pub use limits::Limits;
pub use pattern::Pattern;
pub use registry::Registry;
pub use route::{Action, Destination, Matcher, RouteTimeouts, Rule};
pub use server::run;
pub use settings::{Resolved, Settings};
pub use shutdown::{Shutdown, DEFAULT_GRACE};
pub use tls::{reload as reload_tls, ServerTls, TlsSettings};
pub use uptun_protocol::Secret;
