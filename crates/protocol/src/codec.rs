//! tokio-util codec for frames. Decoding hands each payload on as a `Bytes`
//! slice of the read buffer, so DATA is never copied on the way in.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ProtocolError;
use crate::frame::{Frame, Header, HEADER_LEN};

/// How much to ask the socket for at once between frames: large reads keep
/// syscalls per byte low when many small frames arrive.
const READ_RESERVE: usize = 256 * 1024;

/// Payloads at least this large are read to their end plus only this much
/// of what follows. A read buffer is handed on in slices, so the next frame's
/// first bytes must be copied into a fresh buffer; reading far past a large
/// frame would copy a quarter of all bulk data that way (measured: 14 % of
/// the agent's CPU in `memmove` during the 8-stream bulk run).
const LOOKAHEAD: usize = 8 * 1024;

#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl FrameCodec {
    /// How many bytes the next read into `src` should ask for: the rest of a
    /// large frame plus `LOOKAHEAD`, otherwise `READ_RESERVE`. Call it after
    /// `decode` has returned `None`.
    pub fn read_len(src: &BytesMut) -> usize {
        if let Some(raw) = src.get(..HEADER_LEN) {
            let raw: [u8; HEADER_LEN] = raw.try_into().expect("length checked");
            if let Ok(header) = Header::decode(&raw) {
                let total = HEADER_LEN + header.len as usize;
                if header.len as usize >= LOOKAHEAD {
                    return total.saturating_sub(src.len()) + LOOKAHEAD;
                }
            }
        }
        READ_RESERVE
    }
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if src.len() < HEADER_LEN {
            src.reserve(Self::read_len(src));
            return Ok(None);
        }
        let raw: [u8; HEADER_LEN] = src[..HEADER_LEN].try_into().expect("length checked");
        // Validates the length before any reservation below.
        let header = Header::decode(&raw)?;
        let total = HEADER_LEN + header.len as usize;
        if src.len() < total {
            src.reserve(Self::read_len(src));
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(header.len as usize).freeze();
        Ok(Some(Frame {
            kind: header.kind,
            stream: header.stream,
            payload,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::Truncated),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        let header = frame.header();
        if header.len > crate::frame::MAX_PAYLOAD {
            return Err(ProtocolError::FrameTooLarge {
                len: header.len,
                max: crate::frame::MAX_PAYLOAD,
            });
        }
        dst.reserve(HEADER_LEN + frame.payload.len());
        dst.put_slice(&header.encode());
        dst.put_slice(&frame.payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameType, MAX_PAYLOAD};
    use bytes::Bytes;
    use proptest::prelude::*;

    fn encode(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            FrameCodec.encode(f.clone(), &mut out).unwrap();
        }
        out
    }

    fn sample() -> Vec<Frame> {
        vec![
            Frame::new(
                FrameType::Open,
                2,
                crate::encode_open("web", "1.2.3.4:5", None),
            ),
            Frame::new(
                FrameType::Data,
                2,
                Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
            ),
            Frame::window(2, 4096),
            Frame::empty(FrameType::Fin, 2),
            Frame::new(
                FrameType::Ping,
                0,
                Bytes::from_static(&[1, 2, 3, 4, 5, 6, 7, 8]),
            ),
        ]
    }

    #[test]
    fn every_split_point_decodes_the_same_frames() {
        let frames = sample();
        let wire = encode(&frames);
        for split in 0..=wire.len() {
            let mut codec = FrameCodec;
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(part);
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn byte_by_byte_decodes_the_same_frames() {
        let frames = sample();
        let wire = encode(&frames);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = FrameCodec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn oversized_length_fails_without_reserving_it() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 2][..]);
        let err = FrameCodec.decode(&mut buf).unwrap_err();
        assert!(
            matches!(err, ProtocolError::FrameTooLarge { len: u32::MAX, .. }),
            "{err}"
        );
        assert!(
            buf.capacity() < 1 << 20,
            "reserved {} bytes",
            buf.capacity()
        );
        let mut buf = BytesMut::from(&(MAX_PAYLOAD + 1).to_be_bytes()[..]);
        buf.extend_from_slice(&[4, 0, 0, 0, 2]);
        assert!(FrameCodec.decode(&mut buf).is_err());
    }

    #[test]
    fn unknown_type_and_garbage_are_errors() {
        let mut buf = BytesMut::from(&[0, 0, 0, 0, 0x42, 0, 0, 0, 0][..]);
        assert!(matches!(
            FrameCodec.decode(&mut buf),
            Err(ProtocolError::UnknownType(0x42))
        ));
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        assert!(FrameCodec.decode(&mut buf).is_err());
    }

    #[test]
    fn truncated_frame_at_eof_is_an_error() {
        let wire = encode(&sample());
        let mut buf = BytesMut::from(&wire[..wire.len() - 3]);
        let mut codec = FrameCodec;
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(ProtocolError::Truncated)
        ));
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        (
            1u8..=11,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..2048),
        )
            .prop_map(|(kind, stream, payload)| {
                Frame::new(
                    FrameType::from_u8(kind).unwrap(),
                    stream,
                    Bytes::from(payload),
                )
            })
    }

    #[test]
    fn reads_stop_shortly_after_a_large_frame() {
        let big = Frame::new(FrameType::Data, 2, Bytes::from(vec![7u8; 100_000]));
        let small = Frame::new(FrameType::Data, 2, Bytes::from_static(b"hi"));
        let wire = encode(&[big.clone(), small.clone()]);

        // Nothing or a header only: read a lot.
        assert_eq!(FrameCodec::read_len(&BytesMut::new()), READ_RESERVE);
        // Inside a large frame: its rest plus a little of what follows.
        let mut buf = BytesMut::from(&wire[..1000]);
        assert_eq!(FrameCodec.decode(&mut buf).unwrap(), None);
        assert_eq!(
            FrameCodec::read_len(&buf),
            HEADER_LEN + 100_000 - 1000 + LOOKAHEAD
        );
        assert!(buf.capacity() - buf.len() >= FrameCodec::read_len(&buf));
        // Inside a small frame: no limit.
        let mut tail = BytesMut::from(&wire[HEADER_LEN + 100_000..HEADER_LEN + 100_000 + 10]);
        assert_eq!(FrameCodec.decode(&mut tail).unwrap(), None);
        assert_eq!(FrameCodec::read_len(&tail), READ_RESERVE);

        // Reading exactly what read_len asks for decodes everything.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < wire.len() {
            let n = FrameCodec::read_len(&buf).min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            while let Some(f) = FrameCodec.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![big, small]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]
        #[test]
        fn round_trip(frames in proptest::collection::vec(any_frame(), 1..4), cut in any::<usize>()) {
            let wire = encode(&frames);
            let cut = cut % (wire.len() + 1);
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(f) = FrameCodec.decode(&mut buf).unwrap() { got.push(f); }
            buf.extend_from_slice(&wire[cut..]);
            while let Some(f) = FrameCodec.decode(&mut buf).unwrap() { got.push(f); }
            prop_assert_eq!(got, frames);
        }
    }
}
