//! rhost's packets: `size u16 BE | event 2 ASCII bytes | set u32 BE |
//! tag u32 BE | body`, where `size` counts the whole packet, these 12
//! header bytes included. No flow control, no half-close.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Bytes in a packet header: size (2), event (2), set (4), tag (4).
pub const PACKET_HEADER: usize = 12;
/// The largest body this side sends in one packet, as rhost does: a longer
/// one goes as several packets. (Receiving, any body that fits the u16
/// size is accepted.)
pub const MAX_SEND_BODY: usize = 32 * 1024;

/// What a packet says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `c+`: a connection opened.
    Open,
    /// `c-`: a connection closed, both ways.
    Close,
    /// `d+`: data for a connection.
    Data,
    /// `pi`: are you there?
    Ping,
    /// `po`: the answer to `pi`.
    Pong,
}

impl Event {
    fn wire(self) -> &'static [u8; 2] {
        match self {
            Event::Open => b"c+",
            Event::Close => b"c-",
            Event::Data => b"d+",
            Event::Ping => b"pi",
            Event::Pong => b"po",
        }
    }

    fn from_wire(raw: [u8; 2]) -> Option<Event> {
        Some(match &raw {
            b"c+" => Event::Open,
            b"c-" => Event::Close,
            b"d+" => Event::Data,
            b"pi" => Event::Ping,
            b"po" => Event::Pong,
            _ => return None,
        })
    }
}

/// One packet. `set` is 0 or the legacy client link a connection came
/// through; `tag` names the connection within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub event: Event,
    pub set: u32,
    pub tag: u32,
    pub body: Bytes,
}

impl Packet {
    pub fn new(event: Event, tag: u32) -> Packet {
        Packet {
            event,
            set: 0,
            tag,
            body: Bytes::new(),
        }
    }

    pub fn data(tag: u32, body: Bytes) -> Packet {
        Packet {
            body,
            ..Packet::new(Event::Data, tag)
        }
    }
}

/// Why the byte stream is not rhost packets; the link ends.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PacketError {
    #[error("legacy packet of {0} bytes is shorter than its 12-byte header")]
    TooShort(usize),
    #[error("unknown legacy event \"{0}\"")]
    UnknownEvent(String),
    #[error("the legacy link ended inside a packet")]
    Truncated,
    #[error("legacy link: {0}")]
    Io(String),
}

impl From<std::io::Error> for PacketError {
    fn from(err: std::io::Error) -> PacketError {
        PacketError::Io(err.to_string())
    }
}

/// tokio-util codec for packets.
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketCodec;

impl Decoder for PacketCodec {
    type Item = Packet;
    type Error = PacketError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, PacketError> {
        if src.len() < PACKET_HEADER {
            return Ok(None);
        }
        let size = u16::from_be_bytes([src[0], src[1]]) as usize;
        if size < PACKET_HEADER {
            return Err(PacketError::TooShort(size));
        }
        let raw = [src[2], src[3]];
        let event = Event::from_wire(raw).ok_or_else(|| {
            PacketError::UnknownEvent(crate::sanitize(&String::from_utf8_lossy(&raw)))
        })?;
        if src.len() < size {
            src.reserve(size - src.len());
            return Ok(None);
        }
        src.advance(4);
        let set = src.get_u32();
        let tag = src.get_u32();
        let body = src.split_to(size - PACKET_HEADER).freeze();
        Ok(Some(Packet {
            event,
            set,
            tag,
            body,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, PacketError> {
        match self.decode(src)? {
            Some(packet) => Ok(Some(packet)),
            None if src.is_empty() => Ok(None),
            None => Err(PacketError::Truncated),
        }
    }
}

impl Encoder<Packet> for PacketCodec {
    type Error = PacketError;

    /// Writes the packet, cutting a body longer than [`MAX_SEND_BODY`]
    /// into several packets with the same event, set and tag.
    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), PacketError> {
        let mut body = packet.body;
        loop {
            let piece = body.split_to(body.len().min(MAX_SEND_BODY));
            dst.reserve(PACKET_HEADER + piece.len());
            dst.put_u16((PACKET_HEADER + piece.len()) as u16);
            dst.put_slice(packet.event.wire());
            dst.put_u32(packet.set);
            dst.put_u32(packet.tag);
            dst.put_slice(&piece);
            if body.is_empty() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(packet: Packet) -> BytesMut {
        let mut out = BytesMut::new();
        PacketCodec.encode(packet, &mut out).unwrap();
        out
    }

    #[test]
    fn the_layout_is_rhosts() {
        let mut packet = Packet::data(7, Bytes::from_static(b"hi"));
        packet.set = 3;
        let wire = encode(packet.clone());
        assert_eq!(&wire[..], b"\x00\x0ed+\x00\x00\x00\x03\x00\x00\x00\x07hi");
        let mut src = wire;
        assert_eq!(PacketCodec.decode(&mut src).unwrap(), Some(packet));
        assert!(src.is_empty());
    }

    #[test]
    fn long_bodies_go_as_several_packets_and_every_event_round_trips() {
        let body = Bytes::from(vec![9u8; MAX_SEND_BODY * 2 + 5]);
        let mut src = encode(Packet::data(1, body.clone()));
        for event in [Event::Open, Event::Close, Event::Ping, Event::Pong] {
            src.extend_from_slice(&encode(Packet::new(event, 2)));
        }
        let mut got = Vec::new();
        while let Some(p) = PacketCodec.decode(&mut src).unwrap() {
            got.push(p);
        }
        let sizes: Vec<usize> = got[..3].iter().map(|p| p.body.len()).collect();
        assert_eq!(sizes, [MAX_SEND_BODY, MAX_SEND_BODY, 5]);
        let joined: Vec<u8> = got[..3].iter().flat_map(|p| p.body.to_vec()).collect();
        assert_eq!(joined, body);
        let events: Vec<Event> = got[3..].iter().map(|p| p.event).collect();
        assert_eq!(
            events,
            [Event::Open, Event::Close, Event::Ping, Event::Pong]
        );
    }

    #[test]
    fn every_split_point_waits_for_the_rest() {
        let wire = encode(Packet::data(1, Bytes::from_static(b"hello")));
        for cut in 0..wire.len() {
            let mut src = BytesMut::from(&wire[..cut]);
            assert_eq!(PacketCodec.decode(&mut src).unwrap(), None, "cut {cut}");
            src.extend_from_slice(&wire[cut..]);
            assert!(PacketCodec.decode(&mut src).unwrap().is_some());
        }
    }

    #[test]
    fn hostile_headers_end_the_link_with_what_was_wrong() {
        let mut short = BytesMut::from(&b"\x00\x05d+\x00\x00\x00\x00\x00\x00\x00\x00"[..]);
        assert_eq!(
            PacketCodec.decode(&mut short),
            Err(PacketError::TooShort(5))
        );
        let mut unknown = BytesMut::from(&b"\x00\x0c\x1b[\x00\x00\x00\x00\x00\x00\x00\x00"[..]);
        let err = PacketCodec.decode(&mut unknown).unwrap_err();
        assert_eq!(err.to_string(), "unknown legacy event \"\\u{1b}[\"");
        let mut cut = BytesMut::from(&b"\x00\x10d+\x00\x00\x00\x00\x00\x00\x00\x00ab"[..]);
        assert_eq!(
            PacketCodec.decode_eof(&mut cut),
            Err(PacketError::Truncated)
        );
    }
}
