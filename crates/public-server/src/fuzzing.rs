//! The classifier as `fuzz/` sees it: run on any reader, its decision told
//! without the crate's private types. Not an API; it is public only so the
//! fuzz crate (outside this workspace) can reach a crate-private function,
//! and it lives here so that function stays free to change.

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;
use uptun_protocol::legacy::{LegacyPeer, LegacyRequest};

use crate::classify::{self, Visitor};
use crate::config::Config;

/// What `classify` made of a connection's first bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A link request; `head_len` bytes of `handed_on` are its head.
    Link {
        agent: bool,
        head_len: usize,
        /// rhost's legacy request rather than a native one.
        legacy: bool,
    },
    Endpoint,
    Web {
        channel: String,
    },
    Raw {
        channel: String,
    },
    /// Raw bytes no route takes.
    Unrouted,
    /// A route answers (the bytes are its reply).
    Reply,
    /// A route closes (the bytes are what it sends first).
    Close,
    Reject {
        status: u16,
    },
    /// Nothing within the sniff timeout (see `silent.rs`).
    Silent,
    Gone,
}

/// Classifies `io` as the server would. The bytes are what the connection
/// hands on to whatever it became (none for endpoints, refusals, silence
/// and EOF).
pub async fn classify<R: AsyncRead + Unpin>(
    io: &mut R,
    config: &Config,
) -> std::io::Result<(Decision, Bytes)> {
    Ok(tell(classify::classify(io, config).await?))
}

/// Decides on bytes that came after the silence, as `silent.rs` does when
/// the user speaks first: `buf` holds at least one byte.
pub async fn decide<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: BytesMut,
    config: &Config,
) -> std::io::Result<(Decision, Bytes)> {
    Ok(tell(classify::decide(io, buf, config).await?))
}

fn tell(visitor: Visitor) -> (Decision, Bytes) {
    match visitor {
        Visitor::Link { kind, head, buf } => (
            Decision::Link {
                agent: kind == uptun_protocol::handshake::PeerKind::Agent,
                head_len: head.len,
                legacy: false,
            },
            buf.freeze(),
        ),
        Visitor::Legacy { head, buf } => (
            Decision::Link {
                // The role as the server reads it (a request it cannot
                // read counts as no agent).
                agent: LegacyRequest::from_head(&head)
                    .is_ok_and(|req| matches!(req.peer, LegacyPeer::Agent { .. })),
                head_len: head.len,
                legacy: true,
            },
            buf.freeze(),
        ),
        Visitor::Endpoint { .. } => (Decision::Endpoint, Bytes::new()),
        Visitor::Web { to, buf } => (
            Decision::Web {
                channel: to.channel,
            },
            buf.freeze(),
        ),
        Visitor::Unrouted => (Decision::Unrouted, Bytes::new()),
        Visitor::Raw { to, buf } => (
            Decision::Raw {
                channel: to.channel,
            },
            buf.freeze(),
        ),
        Visitor::Reply { bytes, .. } => (Decision::Reply, bytes),
        Visitor::Close { bytes } => (Decision::Close, bytes),
        Visitor::Reject(refusal) => (
            Decision::Reject {
                status: refusal.status,
            },
            Bytes::new(),
        ),
        Visitor::Silent { .. } => (Decision::Silent, Bytes::new()),
        Visitor::Gone => (Decision::Gone, Bytes::new()),
    }
}
