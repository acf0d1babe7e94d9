//! The uptun wire protocol: the frame format and its codec, the HTTP upgrade
//! handshake that turns a connection into a link, and the multiplexer that
//! carries many flow-controlled streams over one link.
//!
//! The format is specified in `docs/protocol.md`; this crate is its reference
//! implementation and is shared by `public-server` and `local-agent`.
#![forbid(unsafe_code)]

mod codec;
mod error;
mod frame;
pub mod handshake;
pub mod legacy;
mod mux;
mod open;
mod relay;
mod secret;
mod terminal;
mod text;
mod wsio;

pub use codec::FrameCodec;
pub use error::{ProtocolError, StreamError};
pub use frame::{
    valid_channel_name, Frame, FrameType, Header, HEADER_LEN, MAX_CHANNEL_LEN, MAX_PAYLOAD,
};
pub use mux::{
    spawn as spawn_link, Config, Incoming, IncomingStream, LinkHandle, MuxStream, Role, StreamEvent,
};
pub use open::{decode_open, encode_open, valid_term, OpenPayload, MAX_TERM_LEN};
pub use relay::{
    abort_tcp, bridge, bridge_counted, end_tcp, relay, relay_ending, relay_exit, relay_tcp,
    RelayError, RelayStats,
};
pub use secret::Secret;
pub use terminal::{ExitStatus, TermSize};
pub use text::{sanitize, MAX_PEER_TEXT};
pub use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
pub use wsio::{ws_config, WsIo, MAX_MESSAGE as MAX_WS_MESSAGE};

/// The version of the protocol spoken by this crate, sent as `Uptun-Version`.
pub const PROTOCOL_VERSION: u32 = 1;
