//! The uptun agent and client, as a library. The agent ([`Agent`]) keeps
//! a link to the public server and serves named channels by dialing their
//! targets; the client side opens streams to channels, from a local port
//! ([`Forward`]), stdin/stdout ([`connect`], for ssh's ProxyCommand) or a
//! terminal ([`attach`]). The `local-agent` binary is a command line over
//! this API.
//!
//! An embedded agent or forward tells its program what happens to it as
//! typed [`Event`]s, and where it stands as a [`State`]. This program (the
//! one in the README's "Embedding the agent") starts an agent and stops it:
//!
#![doc = include_str!("embedding.md")]
#![forbid(unsafe_code)]

mod agent;
mod attach;
mod channel;
mod client;
mod dial;
mod events;
mod forward;
mod idle_exit;
mod opener;
mod proxy_header;
mod report;
mod retry;
mod running;
mod target;
mod transport;

pub use agent::{run_agent, Agent, AgentBuilder, AgentConfig, AgentError, AgentHandle};
pub use attach::{attach, AttachOptions, DetachKeys, Ending, DEFAULT_DETACH_KEYS};
pub use client::{connect, ClientConfig, ForwardSpec};
pub use dial::DialError;
pub use events::{CloseReason, Event, Events, LinkInfo, Listener, State};
pub use forward::{forward, Forward, ForwardBuilder, ForwardError, ForwardHandle};
pub use proxy_header::ProxyProtocol;
pub use retry::RetryPolicy;
pub use target::{SessionOptions, SessionRestart, Target};
pub use transport::{
    choose_proxy, Proxy, ProxyRefused, Scheme, ServerUrl, TlsOptions, TransportMode,
    TransportOptions,
};
pub use uptun_protocol::Secret;
