//! The public server's classifier: a connection's first bytes, arriving in
//! arbitrary reads after arbitrary pauses, then EOF or silence; after a
//! silence, the late bytes decided as `silent.rs` does. It must never panic
//! or hang, must decide within the sniff and header deadlines, must hand on
//! every byte it read (nothing read while classifying is lost), and its
//! decision must agree with those bytes: HTTP (a handshake among it) never
//! goes to a raw channel.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use public_server::fuzzing::{classify, decide, Decision};
use public_server::Config;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, Instant};
use uptun_fuzz::{paused_runtime, Peer, Script};
use uptun_protocol::handshake::MAX_HEAD;

const HTTP_STARTS: [&[u8]; 9] = [
    b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC",
];

/// Checks a decision against the bytes read so far.
/// `Config::new` routes with the default rules: HTTP to `web`, `SSH-` to
/// `ssh`, the rest to `tcp`.
fn check(decision: &Decision, handed_on: &[u8], read: &[u8]) {
    assert!(
        read.len() <= 2 * MAX_HEAD + 4096,
        "read {} bytes",
        read.len()
    );
    let http = HTTP_STARTS.iter().any(|m| read.starts_with(m));
    match decision {
        Decision::Gone | Decision::Silent => assert!(read.is_empty()),
        Decision::Raw { channel } => {
            assert_eq!(handed_on, read, "bytes lost or invented");
            if read.starts_with(b"SSH-") {
                assert_eq!(channel, "ssh");
            } else {
                assert!(!http, "HTTP sent to {channel}");
                assert_eq!(channel, "tcp");
            }
        }
        Decision::Unrouted | Decision::Reply | Decision::Close => {
            panic!("the default rules carry everything to a channel")
        }
        Decision::Web { channel } => {
            assert!(http);
            assert_eq!(channel, "web");
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
}

fuzz_target!(|input: &[u8]| {
    let script = Script::parse(input);
    let config = Config::new("fuzz");
    let mut peer = Peer::new(&script);
    paused_runtime().block_on(async {
        let start = Instant::now();
        let (decision, handed_on) = classify(&mut peer, &config)
            .await
            .expect("reads never fail");
        let took = start.elapsed();
        assert!(
            took <= config.sniff_timeout + config.header_timeout,
            "{decision:?} after {took:?}: one header deadline, not one per step"
        );
        check(
            &decision,
            &handed_on,
            &script.data[..peer.delivered],
        );
        if decision != Decision::Silent {
            return;
        }
        // A slow start: the user speaks first after the silence, and its
        // bytes are judged as if they had come on time (silent.rs). The
        // wait for them is silent.rs's race with the target; bound it here.
        let mut buf = BytesMut::with_capacity(4096);
        match timeout(Duration::from_secs(600), peer.read_buf(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => return,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("reads never fail: {e}"),
        }
        let start = Instant::now();
        let (decision, handed_on) = decide(&mut peer, buf, &config)
            .await
            .expect("reads never fail");
        let took = start.elapsed();
        assert!(took <= config.header_timeout, "{decision:?} after {took:?}");
        assert_ne!(decision, Decision::Silent);
        check(
            &decision,
            &handed_on,
            &script.data[..peer.delivered],
        );
    });
});
