//! Terminal sizes and exit statuses over real mux links, and through a
//! bridge as the server puts one between a client and an agent.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::timeout;

use super::tests::{pair, read_all, small};
use super::StreamEvent;
use crate::terminal::{ExitStatus, TermSize};

const T: Duration = Duration::from_secs(10);

fn size(cols: u16, rows: u16) -> TermSize {
    TermSize { cols, rows }
}

#[tokio::test]
async fn sizes_and_the_exit_status_cross_a_bridge_in_order_with_the_data() {
    let ((client, _), (_, mut at_server)) = pair(small());
    let ((server, _), (_, mut at_agent)) = pair(small());
    let user = client.open("console", "stdio").await.unwrap();
    let bridged = async {
        let inbound = at_server.next().await.unwrap().accept().await.unwrap();
        let outbound = server.open("console", "stdio via client").await.unwrap();
        crate::relay::bridge(inbound, outbound).await
    };
    let agent = async {
        let s = at_agent.next().await.unwrap().accept().await.unwrap();
        let mut seen = Vec::new();
        loop {
            match s.recv_event().await.unwrap() {
                StreamEvent::End(status) => {
                    seen.push(StreamEvent::End(status));
                    break;
                }
                event => seen.push(event),
            }
        }
        s.send(Bytes::from_static(b"bye\r\n")).await.unwrap();
        s.finish_with(Some(ExitStatus::Code(3))).await.unwrap();
        seen
    };
    let client_side = async {
        user.send_resize(size(100, 30)).await.unwrap();
        user.send(Bytes::from_static(b"exit 3\n")).await.unwrap();
        user.finish().await.unwrap();
        let mut got = Vec::new();
        loop {
            match user.recv_event().await.unwrap() {
                StreamEvent::Data(chunk) => got.extend_from_slice(&chunk),
                StreamEvent::Resize(_) => panic!("the agent sent no size"),
                StreamEvent::End(status) => return (got, status),
            }
        }
    };
    let (stats, seen, (got, status)) =
        timeout(T, async { tokio::join!(bridged, agent, client_side) })
            .await
            .unwrap();
    stats.unwrap();
    assert_eq!(
        seen,
        vec![
            StreamEvent::Resize(size(100, 30)),
            StreamEvent::Data(Bytes::from_static(b"exit 3\n")),
            StreamEvent::End(None),
        ]
    );
    assert_eq!(got, b"bye\r\n");
    assert_eq!(status, Some(ExitStatus::Code(3)));
}

#[tokio::test]
async fn a_flood_of_sizes_leaves_the_last_and_plain_reads_never_see_them() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let s = dialer.open("console", "x").await.unwrap();
    for cols in 1..=1000 {
        s.send_resize(size(cols, 24)).await.unwrap();
    }
    s.send(Bytes::from_static(b"data")).await.unwrap();
    s.finish().await.unwrap();
    let plain = timeout(T, incoming.next()).await.unwrap().unwrap();
    let plain = plain.accept().await.unwrap();
    // recv skips sizes: the bytes, then the end.
    assert_eq!(
        timeout(T, read_all(&plain)).await.unwrap().unwrap(),
        b"data"
    );
    // Everything arrived; the one slot holds the last size only.
    assert_eq!(
        plain.recv_event().await.unwrap(),
        StreamEvent::Resize(size(1000, 24))
    );
    assert_eq!(plain.recv_event().await.unwrap(), StreamEvent::End(None));
}

#[tokio::test]
async fn the_opener_s_term_reaches_the_incoming_stream() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let _with = dialer
        .open_with_term("console", "stdio", Some("tmux-256color"))
        .await
        .unwrap();
    let _without = dialer.open("console", "stdio").await.unwrap();
    let _invalid = dialer
        .open_with_term("console", "stdio", Some("x\u{1b}[2J"))
        .await
        .unwrap();
    let mut terms = Vec::new();
    for _ in 0..3 {
        let stream = timeout(T, incoming.next()).await.unwrap().unwrap();
        assert_eq!(stream.peer, "stdio");
        terms.push(stream.term);
    }
    assert_eq!(terms, [Some("tmux-256color".to_string()), None, None]);
}

/// A client relaying a terminal stream gets the status and ends when the
/// process does, though its own input (a terminal) never reaches EOF; the
/// agent sees its FIN, a clean end, not a reset.
#[tokio::test]
async fn relay_exit_ends_with_the_status_without_waiting_for_local_eof() {
    let ((dialer, _), (_, mut incoming)) = pair(small());
    let user = dialer.open("console", "stdio").await.unwrap();
    // The far end of `input` stays open: no EOF ever comes from it.
    let (input, _keep_open) = tokio::io::duplex(64);
    let (output, mut shown) = tokio::io::duplex(1 << 16);
    let relaying = tokio::spawn(crate::relay::relay_exit(user, input, output));
    let agent = timeout(T, incoming.next()).await.unwrap().unwrap();
    let agent = agent.accept().await.unwrap();
    agent
        .send(Bytes::from_static(b"last words\r\n"))
        .await
        .unwrap();
    agent
        .finish_with(Some(ExitStatus::Signal(9)))
        .await
        .unwrap();
    let (stats, status) = timeout(T, relaying).await.unwrap().unwrap().unwrap();
    assert_eq!(status, Some(ExitStatus::Signal(9)));
    assert_eq!((stats.sent, stats.received), (0, 12));
    let mut got = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut shown, &mut got)
        .await
        .unwrap();
    assert_eq!(got, b"last words\r\n");
    assert_eq!(
        timeout(T, agent.recv_event()).await.unwrap().unwrap(),
        StreamEvent::End(None)
    );
}
