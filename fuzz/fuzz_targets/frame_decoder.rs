//! The frame decoder, fed a peer's bytes in arbitrary reads. It must never
//! panic, never ask for memory beyond one maximal frame whatever a header
//! claims, decode the same frames (and the same error) however the bytes
//! are cut, and every frame it decodes must re-encode to the bytes it came
//! from. The payload parsers of control frames ride along.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use uptun_fuzz::{Largest, Script};
use uptun_protocol::{
    decode_open, encode_open, Frame, FrameCodec, FrameType, HEADER_LEN, MAX_PAYLOAD,
};

#[global_allocator]
static ALLOC: Largest = Largest;

/// One maximal frame, the read-ahead the codec allows past it, and the
/// doubling a growing buffer may do: no claimed length may cost more.
const ALLOC_LIMIT: usize = 2 * (HEADER_LEN + MAX_PAYLOAD as usize + 256 * 1024);

/// Decodes `reads` one after another as a link's reader does; returns the
/// frames, the error that ended the link (if any) and the bytes consumed.
fn decode_all(reads: &[&[u8]]) -> (Vec<Frame>, Option<String>, usize) {
    let mut codec = FrameCodec;
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    for read in reads {
        buf.extend_from_slice(read);
        fed += read.len();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string()), fed - buf.len()),
            }
        }
    }
    let end = codec.decode_eof(&mut buf);
    match end {
        Ok(Some(frame)) => panic!("decode_eof found a frame decode missed: {frame:?}"),
        Ok(None) => assert!(buf.is_empty()),
        Err(e) => return (frames, Some(e.to_string()), fed - buf.len()),
    }
    (frames, None, fed)
}

fn check_payload(frame: &Frame) {
    // Peer text is logged: it must come out as one line.
    assert!(!frame.reason().chars().any(char::is_control));
    match frame.kind {
        FrameType::Open => {
            if let Ok(open) = decode_open(&frame.payload) {
                assert!(!open.peer.chars().any(char::is_control));
                // A term, when one is kept, is a plain terminal name.
                if let Some(term) = &open.term {
                    assert!(uptun_protocol::valid_term(term), "{term:?}");
                }
                // Lossless when the address was plain text already and
                // no items followed it.
                let raw = std::str::from_utf8(&frame.payload[1 + open.channel.len()..]);
                if raw == Ok(open.peer.as_str()) {
                    assert_eq!(encode_open(&open.channel, &open.peer, None), frame.payload);
                }
            }
        }
        FrameType::Window => {
            let ok = frame.window_increment().is_ok();
            assert_eq!(ok, frame.payload.len() == 4);
        }
        _ => {}
    }
}

fuzz_target!(|input: &[u8]| {
    let script = Script::parse(input);
    let reads: Vec<&[u8]> = script.reads.iter().map(|r| r.bytes).collect();

    let ((frames, error, consumed), largest) = Largest::measure(|| decode_all(&reads));
    assert!(
        largest <= ALLOC_LIMIT.max(2 * script.data.len()),
        "one allocation of {largest} bytes for {} input bytes",
        script.data.len()
    );

    // However the bytes were cut, the same frames and the same end.
    let whole = decode_all(&[script.data]);
    assert_eq!(whole.0, frames, "frames depend on how the bytes were cut");
    assert_eq!(
        whole.1, error,
        "the error depends on how the bytes were cut"
    );

    // Every frame re-encodes to exactly the bytes it was decoded from.
    let mut again = BytesMut::new();
    for frame in &frames {
        assert!(frame.payload.len() <= MAX_PAYLOAD as usize);
        check_payload(frame);
        FrameCodec
            .encode(frame.clone(), &mut again)
            .expect("a decoded frame encodes");
    }
    let frames_end = again.len();
    assert_eq!(frames_end, consumed, "consumed bytes that are in no frame");
    assert_eq!(&again[..], &script.data[..frames_end]);
    if error.is_none() {
        assert_eq!(
            frames_end,
            script.data.len(),
            "bytes left over without an error"
        );
    }
});
