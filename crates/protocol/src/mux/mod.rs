//! The multiplexer: many flow-controlled streams over one link.
//!
//! A link is driven by two tasks. The reader decodes frames and hands DATA to
//! each stream's bounded queue; the writer owns the write half and sends
//! control frames first, then DATA in arrival order, many frames per write.

mod control;
mod flow_control;
mod inbound;
mod incoming;
mod link;
mod reader;
mod stream;
mod terminal;
mod writer;

use std::time::Duration;

pub use incoming::IncomingStream;
pub use link::{spawn, Incoming, LinkHandle};
pub use stream::{MuxStream, StreamEvent};

/// Which end of the link this is. The dialer (agent or client) opens streams
/// with even ids, the acceptor (server) with odd ids, so they never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

impl Role {
    pub(crate) fn first_id(self) -> u32 {
        match self {
            Role::Dialer => 2,
            Role::Acceptor => 1,
        }
    }

    /// Whether `id` is one the *peer* of this role may open.
    pub(crate) fn is_peer_id(self, id: u32) -> bool {
        id != 0 && (id % 2 == 1) == (self == Role::Dialer)
    }
}

/// Tunables of one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Receive window per stream, announced in the handshake.
    pub window: u32,
    /// Largest DATA payload this side sends.
    pub max_data: usize,
    /// Streams open at once on this link, both directions together. It
    /// also bounds what the control queue may owe (control.rs).
    pub max_streams: usize,
    /// Streams the peer opened that wait for `Incoming::next`.
    pub accept_backlog: usize,
    /// Whether the peer may open streams at all (the server refuses streams
    /// from agents; clients refuse streams from the server).
    pub accept_incoming: bool,
    /// PING this often; platform routers cut links silent for ~55 s. Must
    /// not be zero (a zero period panics the ping timer).
    pub ping_interval: Duration,
    /// A link that receives nothing for this long is dead: three missed
    /// PINGs by default.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window: crate::handshake::DEFAULT_WINDOW,
            max_data: 128 * 1024,
            max_streams: 16_384,
            accept_backlog: 1024,
            accept_incoming: true,
            ping_interval: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod terminal_tests;
#[cfg(test)]
mod tests;
