//! The public server's classifier: a connection's first bytes, arriving in
//! arbitrary reads after arbitrary pauses, then EOF or silence. It must
//! never panic or hang, must decide within the sniff and header deadlines,
//! must hand on every byte it read (nothing read while classifying is
//! lost), and its decision must agree with those bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use public_server::fuzzing::{classify, Decision};
use public_server::Config;
use uptun_fuzz::{paused_runtime, Peer, Script};
use uptun_protocol::handshake::MAX_HEAD;

const HTTP_STARTS: [&[u8]; 9] = [
    b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC",
];

fuzz_target!(|input: &[u8]| {
    let script = Script::parse(input);
    let config = Config::new("fuzz");
    let mut peer = Peer::new(&script);
    let rt = paused_runtime();
    let (decision, handed_on, took) = rt.block_on(async {
        let start = tokio::time::Instant::now();
        let (decision, handed_on) = classify(&mut peer, &config)
            .await
            .expect("reads never fail");
        (decision, handed_on, start.elapsed())
    });
    let read = &script.data[..peer.delivered];

    assert!(
        took <= config.sniff_timeout + config.header_timeout,
        "{decision:?} after {took:?}"
    );
    assert!(
        read.len() <= 2 * MAX_HEAD + 4096,
        "read {} bytes",
        read.len()
    );
    let http = HTTP_STARTS.iter().any(|m| read.starts_with(m));
    match &decision {
        Decision::Gone => assert!(read.is_empty()),
        Decision::Raw { channel } => {
            assert_eq!(handed_on, read, "bytes lost or invented");
            if read.starts_with(b"SSH-") {
                assert_eq!(channel, &config.ssh_channel);
            } else {
                assert!(!http || read.len() < 4, "HTTP sent to {channel}");
                assert_eq!(channel, &config.tcp_channel);
            }
        }
        Decision::Web => {
            assert!(http);
            assert_eq!(handed_on, read, "bytes lost or invented");
        }
        Decision::Link { head_len, .. } => {
            assert!(http);
            assert_eq!(handed_on, read, "bytes lost or invented");
            assert!(*head_len <= read.len() && *head_len <= MAX_HEAD);
        }
        Decision::Endpoint => assert!(http),
        Decision::Reject { status } => {
            assert!(http);
            assert!(matches!(status, 400 | 408 | 431), "status {status}");
        }
    }
});
