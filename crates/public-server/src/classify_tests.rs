//! Classification of real byte streams: kinds, bounds and deadlines.

use super::*;

async fn run(input: &'static [u8]) -> Visitor {
    let (mut client, mut server) = tokio::io::duplex(64);
    tokio::spawn(async move {
        tokio::io::AsyncWriteExt::write_all(&mut client, input)
            .await
            .unwrap();
        // Keep the write side open so silence, not EOF, ends short inputs.
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let mut config = Config::new("t");
    config.sniff_timeout = Duration::from_millis(50);
    config.header_timeout = Duration::from_millis(200);
    classify(&mut server, &config).await.unwrap()
}

#[tokio::test]
async fn ssh_banner_goes_to_ssh() {
    match run(b"SSH-2.0-OpenSSH_9.2\r\n").await {
        Visitor::Raw { to, buf } => {
            assert_eq!(to.channel, "ssh");
            assert!(buf.starts_with(b"SSH-2.0"));
        }
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn garbage_and_silence_go_to_tcp_with_their_bytes() {
    match run(b"\x16\x03\x01\x02\x00garbage").await {
        Visitor::Raw { to, buf } => assert_eq!(
            (to.channel.as_str(), &buf[..4]),
            ("tcp", &b"\x16\x03\x01\x02"[..])
        ),
        v => panic!("{v:?}"),
    }
    assert!(matches!(run(b"").await, Visitor::Silent { first: 0 }));
    // Under four bytes that cannot become a method or a banner: decided.
    match run(b"\x00").await {
        Visitor::Raw { to, buf } => {
            assert_eq!((to.channel.as_str(), &buf[..]), ("tcp", &b"\x00"[..]))
        }
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn http_kinds() {
    let web = b"HEAD / HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\n\r\nrest";
    match run(web).await {
        Visitor::Web { buf, .. } => assert_eq!(&buf[..], &web[..]),
        v => panic!("{v:?}"),
    }
    assert!(matches!(
        run(b"GET /_uptun/health HTTP/1.1\r\n\r\n").await,
        Visitor::Endpoint { .. }
    ));
    let link = b"HEAD /_uptun/link HTTP/1.1\r\nupgrade: tcp\r\nuser-agent: uptun-agent/0.1\r\n\r\n";
    assert!(matches!(
        run(link).await,
        Visitor::Link {
            kind: PeerKind::Agent,
            ..
        }
    ));
    assert!(matches!(
        run(b"GET / HTTP/1.1\r\nHost: slow").await,
        Visitor::Reject(Refusal { status: 408, .. })
    ));
    assert!(matches!(
        run(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n").await,
        Visitor::Reject(Refusal { status: 400, .. })
    ));
    assert!(matches!(
        run(b"GET \x01\x02 HTTP/1.1\r\n\r\n").await,
        Visitor::Reject(Refusal { status: 400, .. })
    ));
}

/// Found by `fuzz/` (classify target): the header deadline started
/// again once the fourth byte came, so a start trickled over almost the
/// whole deadline bought a second one for the rest of the head.
#[tokio::test(start_paused = true)]
async fn one_header_deadline_covers_the_start_and_the_head() {
    let (mut client, mut server) = tokio::io::duplex(64);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        client.write_all(b"GE").await.unwrap();
        tokio::time::sleep(Duration::from_secs(9)).await;
        client
            .write_all(b"T / HTTP/1.1\r\nHost: slow")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let config = Config::new("t");
    let start = Instant::now();
    let visitor = classify(&mut server, &config).await.unwrap();
    assert!(
        matches!(visitor, Visitor::Reject(Refusal { status: 408, .. })),
        "{visitor:?}"
    );
    assert!(
        start.elapsed() <= config.header_timeout,
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_split_start_waits_for_its_fourth_byte() {
    let (mut client, mut server) = tokio::io::duplex(64);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        client.write_all(b"HE").await.unwrap();
        // Far past the sniff timeout: the start alone must not decide.
        tokio::time::sleep(Duration::from_secs(2)).await;
        client
            .write_all(b"AD / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    let config = Config::new("t");
    match classify(&mut server, &config).await.unwrap() {
        Visitor::Web { buf, .. } => assert!(buf.starts_with(b"HEAD / HTTP/1.1")),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn websocket_links_are_links_and_browser_websockets_are_web_users() {
    let link = b"GET /_uptun/link HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUser-Agent: uptun-agent/0.1.0\r\nUptun-Version: 1\r\nUptun-Channels: web\r\n\r\n";
    match run(link).await {
        Visitor::Link { kind, head, .. } => {
            assert_eq!(kind, PeerKind::Agent);
            assert!(head.is_websocket());
        }
        v => panic!("{v:?}"),
    }
    let browser = b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nUser-Agent: Mozilla/5.0\r\n\r\n";
    match run(browser).await {
        Visitor::Web { to, buf } => {
            assert_eq!(to.channel, "web");
            assert_eq!(
                &buf[..],
                &browser[..],
                "the handshake goes on to the channel"
            );
        }
        v => panic!("{v:?}"),
    }
}
