//! rhost's legacy protocol (extra-tunnel 1.0.x), spoken next to the native
//! one so existing `etunnel server` and `etunnel client` processes keep
//! working against a uptun server. A legacy link is a second
//! implementation of a link, not a mode of the mux: the translator
//! (`bridge.rs`, deciding in `table.rs`) turns rhost's packets into native
//! frames and back, and the mux, the server's routing and its relays see
//! an ordinary link. What differs from the native protocol, and why, is in
//! docs/rhost-compat.md.

mod bridge;
mod head;
mod packet;
mod table;

pub use bridge::spawn_legacy;
pub(crate) use head::hides_secrets;
pub use head::{is_legacy, LegacyPeer, LegacyRequest, LEGACY_ACCEPT};
pub use packet::{Event, Packet, PacketCodec, PacketError, MAX_SEND_BODY, PACKET_HEADER};
pub use table::LegacyRole;
