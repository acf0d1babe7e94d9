//! A whole link on the server's side (the mux reader, streams, flow control
//! and writer), fed whatever a hostile peer sends after the handshake, in
//! arbitrary reads and pauses. The local side opens a stream and answers
//! the peer's streams as a server would. Nothing may panic (debug
//! assertions are on, so an overflow in credit arithmetic counts), and the
//! link must end once the peer has closed or fallen silent: no frame
//! sequence may keep it, or a task, alive past the idle timeout.
#![no_main]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use uptun_fuzz::{paused_runtime, Peer, Script};
use uptun_protocol::{spawn_link, Config, MuxStream, Role};

async fn answer(stream: MuxStream) {
    // Echo what arrives, then half-close: the pattern of a relayed user.
    while let Ok(Some(chunk)) = stream.recv().await {
        if stream.send(chunk).await.is_err() {
            return;
        }
    }
    let _ = stream.finish().await;
}

fuzz_target!(|input: &[u8]| {
    let script = Script::parse(input);
    let pauses: Duration = script.reads.iter().map(|r| r.delay).sum();
    let config = Config {
        window: 16 * 1024,
        max_data: 4 * 1024,
        max_streams: 64,
        accept_backlog: 8,
        ..Config::default()
    };
    let deadline = pauses + config.idle_timeout + config.ping_interval;
    let peer = Peer::new(&script);

    paused_runtime().block_on(async move {
        let window = config.window;
        let (link, mut incoming) = spawn_link(
            peer,
            tokio::io::sink(),
            BytesMut::new(),
            Role::Acceptor,
            config,
            window,
        );
        // Our own stream (id 1), so the peer's frames for it land somewhere.
        let opener = link.clone();
        tokio::spawn(async move {
            if let Ok(stream) = opener.open("web", "203.0.113.9:5555").await {
                let _ = stream.send(Bytes::from(vec![b'x'; 40_000])).await;
                answer(stream).await;
            }
        });
        tokio::spawn(async move {
            while let Some(stream) = incoming.next().await {
                if stream.id() % 4 == 0 {
                    if let Ok(stream) = stream.accept().await {
                        tokio::spawn(answer(stream));
                    }
                } else {
                    stream.refuse("not this one");
                }
            }
        });
        let ended = tokio::time::timeout(deadline, link.closed()).await;
        assert!(
            ended.is_ok(),
            "the link outlived its peer by more than the idle timeout"
        );
    });
});
