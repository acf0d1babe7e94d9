//! The attach relay over a real mux link in memory: the test plays the
//! terminal (keystrokes into `input`, the screen out of `output`) and the
//! agent (the accepted end of the stream).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{oneshot, watch};
use tokio::time::timeout;
use uptun_protocol::{
    spawn_link, Config, ExitStatus, MuxStream, Role, StreamError, StreamEvent, TermSize,
};

use super::{run, Ending, Stop, Terminal};
use crate::attach::keys::{DetachKeys, Detector};

const T: Duration = Duration::from_secs(10);

/// A stream from a client link to an agent link, accepted: (the client's
/// end, the agent's end).
async fn stream() -> (MuxStream, MuxStream) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    let config = Config::default();
    let window = config.window;
    let (client, _) = spawn_link(
        ar,
        aw,
        BytesMut::new(),
        Role::Dialer,
        config.clone(),
        window,
    );
    let (_, mut incoming) = spawn_link(br, bw, BytesMut::new(), Role::Acceptor, config, window);
    let user = client
        .open_with_term("console", "stdio", Some("xterm"))
        .await
        .unwrap();
    let served = timeout(T, incoming.next()).await.unwrap().unwrap();
    assert_eq!(served.term.as_deref(), Some("xterm"));
    (user, served.accept().await.unwrap())
}

/// A terminal: its keyboard (write keystrokes) and screen (read output),
/// and the relay's ends of them.
struct Tty {
    keyboard: DuplexStream,
    screen: DuplexStream,
    terminal: Terminal<DuplexStream, DuplexStream>,
}

fn tty(keys: &str, send_input: bool, sizes: Option<watch::Receiver<TermSize>>) -> Tty {
    let (keyboard, input) = tokio::io::duplex(4096);
    let (output, screen) = tokio::io::duplex(64 * 1024);
    let keys: DetachKeys = keys.parse().unwrap();
    Tty {
        keyboard,
        screen,
        terminal: Terminal {
            input: Some(input),
            output,
            detector: Some(Detector::new(keys)),
            send_input,
            sizes,
        },
    }
}

fn never() -> impl std::future::Future<Output = Stop> {
    std::future::pending()
}

/// Reads events until `n` bytes of data came; the sizes seen on the way.
async fn data(agent: &MuxStream, n: usize) -> (Vec<u8>, Vec<TermSize>) {
    let (mut got, mut sizes) = (Vec::new(), Vec::new());
    while got.len() < n {
        match timeout(T, agent.recv_event()).await.unwrap().unwrap() {
            StreamEvent::Data(chunk) => got.extend_from_slice(&chunk),
            StreamEvent::Resize(size) => sizes.push(size),
            StreamEvent::End(status) => panic!("end ({status:?}) after {got:?}"),
        }
    }
    (got, sizes)
}

#[tokio::test]
async fn keys_go_up_the_screen_shows_output_and_the_status_ends_it() {
    let (user, agent) = stream().await;
    let mut t = tty("ctrl-],d", true, None);
    let relay = tokio::spawn(async move { run(&user, t.terminal, never()).await });
    t.keyboard.write_all(b"exit 3\r").await.unwrap();
    assert_eq!(data(&agent, 7).await.0, b"exit 3\r");
    agent
        .send(Bytes::from_static(b"exit 3\r\nbye\r\n"))
        .await
        .unwrap();
    agent.finish_with(Some(ExitStatus::Code(3))).await.unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert_eq!(ending, Ending::Exited(Some(ExitStatus::Code(3))));
    let mut shown = vec![0u8; 13];
    t.screen.read_exact(&mut shown).await.unwrap();
    assert_eq!(shown, b"exit 3\r\nbye\r\n");
    // The client's end is a clean FIN, not a reset.
    assert_eq!(agent.recv_event().await.unwrap(), StreamEvent::End(None));
}

#[tokio::test]
async fn the_detach_sequence_resets_the_stream_and_sends_no_part_of_itself() {
    let (user, agent) = stream().await;
    let mut t = tty("ctrl-],d", true, None);
    let relay = tokio::spawn(async move { run(&user, t.terminal, never()).await });
    // Ctrl-] Ctrl-] is one literal Ctrl-]; Ctrl-] x is both.
    t.keyboard.write_all(b"top\x1d\x1d\x1dx").await.unwrap();
    assert_eq!(data(&agent, 6).await.0, b"top\x1d\x1dx");
    // Held back: the first key of the sequence, until the next key says.
    t.keyboard.write_all(b"q\x1d").await.unwrap();
    assert_eq!(data(&agent, 1).await.0, b"q");
    t.keyboard.write_all(b"dafter").await.unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert_eq!(ending, Ending::Detached);
    // The agent learns why the stream ended.
    let err = timeout(T, agent.recv_event()).await.unwrap().unwrap_err();
    assert_eq!(err, StreamError::Reset("the user detached".into()));
}

#[tokio::test]
async fn the_size_goes_first_and_every_change_follows() {
    let (user, agent) = stream().await;
    let (sizes, watched) = watch::channel(TermSize {
        cols: 120,
        rows: 40,
    });
    let mut t = tty("ctrl-],d", true, Some(watched));
    let relay = tokio::spawn(async move { run(&user, t.terminal, never()).await });
    t.keyboard.write_all(b"a").await.unwrap();
    let (got, seen) = data(&agent, 1).await;
    assert_eq!(
        (got, seen),
        (
            b"a".to_vec(),
            vec![TermSize {
                cols: 120,
                rows: 40
            }]
        )
    );
    sizes.send(TermSize { cols: 90, rows: 30 }).unwrap();
    let event = timeout(T, agent.recv_event()).await.unwrap().unwrap();
    assert_eq!(event, StreamEvent::Resize(TermSize { cols: 90, rows: 30 }));
    agent.finish().await.unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert_eq!(ending, Ending::Exited(None));
}

/// `--read-only`: nothing typed goes out, no size either (a session's size
/// is its writers'), and the detach sequence still works.
#[tokio::test]
async fn read_only_sends_nothing_but_still_detaches() {
    let (user, agent) = stream().await;
    let mut t = tty("ctrl-],d", false, None);
    let relay = tokio::spawn(async move { run(&user, t.terminal, never()).await });
    t.keyboard.write_all(b"rm -rf /\r\x03").await.unwrap();
    agent
        .send(Bytes::from_static(b"log line\r\n"))
        .await
        .unwrap();
    let mut shown = vec![0u8; 10];
    timeout(T, t.screen.read_exact(&mut shown))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown, b"log line\r\n");
    t.keyboard.write_all(b"\x1dd").await.unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert_eq!(ending, Ending::Detached);
    // The first thing the agent gets is the end: no byte, no size.
    let err = timeout(T, agent.recv_event()).await.unwrap().unwrap_err();
    assert_eq!(err, StreamError::Reset("the user detached".into()));
}

#[tokio::test]
async fn a_signal_stops_it_and_the_agent_learns_why() {
    let (user, agent) = stream().await;
    let t = tty("ctrl-],d", true, None);
    let (signal, stop) = oneshot::channel();
    let stop = async move { stop.await.unwrap() };
    let relay = tokio::spawn(async move { run(&user, t.terminal, stop).await });
    signal
        .send(Stop {
            name: "SIGHUP",
            number: 1,
        })
        .unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert!(matches!(ending, Ending::Stopped(Stop { number: 1, .. })));
    let err = timeout(T, agent.recv_event()).await.unwrap().unwrap_err();
    assert_eq!(err, StreamError::Reset("attach stopped by SIGHUP".into()));
}

/// The terminal hung up (EOF on the keyboard): FIN goes up, and the output
/// still comes until the process ends.
#[tokio::test]
async fn keyboard_eof_half_closes_and_waits_for_the_end() {
    let (user, agent) = stream().await;
    let mut t = tty("ctrl-],d", true, None);
    let relay = tokio::spawn(async move { run(&user, t.terminal, never()).await });
    t.keyboard.write_all(b"x").await.unwrap();
    drop(t.keyboard);
    assert_eq!(data(&agent, 1).await.0, b"x");
    let end = timeout(T, agent.recv_event()).await.unwrap().unwrap();
    assert_eq!(end, StreamEvent::End(None));
    agent.send(Bytes::from_static(b"done")).await.unwrap();
    agent
        .finish_with(Some(ExitStatus::Signal(1)))
        .await
        .unwrap();
    let ending = timeout(T, relay).await.unwrap().unwrap().unwrap();
    assert_eq!(ending, Ending::Exited(Some(ExitStatus::Signal(1))));
    let mut shown = Vec::new();
    t.screen.read_to_end(&mut shown).await.unwrap();
    assert_eq!(shown, b"done");
}
