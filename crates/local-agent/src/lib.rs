//! The uptun agent and client. The agent keeps a link to the public server
//! and serves named channels by dialing their targets; the client side opens
//! streams to channels, from a local port (`forward`), stdin/stdout
//! (`connect`, for ssh's ProxyCommand) or a terminal (`attach`).
#![forbid(unsafe_code)]

mod agent;
mod attach;
mod backoff;
mod channel;
mod cli;
mod client;
mod dial;
mod idle_exit;
mod opener;
mod proxy_header;
mod target;
mod transport;

pub use agent::{run_agent, AgentConfig, AgentError};
pub use attach::{attach, AttachOptions, DetachKeys, Ending};
pub use cli::{Cli, Command, Common};
pub use client::{connect, forward, ClientConfig, ForwardSpec};
pub use dial::DialError;
pub use proxy_header::ProxyProtocol;
pub use target::{SessionOptions, SessionRestart, Target};
pub use transport::{
    choose_proxy, Proxy, ProxyRefused, Scheme, ServerUrl, TlsOptions, TransportMode,
    TransportOptions,
};
pub use uptun_cli::init_logging;
pub use uptun_protocol::Secret;
