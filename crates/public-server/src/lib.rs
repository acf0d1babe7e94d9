//! The uptun public server: owns one port, tells agents, clients, built-in
//! endpoints, web users and raw TCP users apart by their first bytes, and
//! relays users to the agents serving their channel.
#![forbid(unsafe_code)]

mod auth;
mod classify;
mod cli;
mod clients;
mod config;
mod endpoints;
mod exposition;
#[doc(hidden)]
pub mod fuzzing;
mod idle;
mod limits;
mod links;
mod meter;
mod metrics;
mod open;
mod penalty;
mod registry;
mod route;
mod server;
mod silent;
mod state;
mod status;
mod users;

pub use auth::{Channels, Grant, Tokens};
pub use cli::{generate_token, init_logging, Cli, LogFormat};
pub use config::Config;
pub use limits::Limits;
pub use registry::Registry;
pub use route::{Action, Matcher, Rule};
pub use server::run;
pub use uptun_protocol::Secret;
