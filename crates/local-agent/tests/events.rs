//! The embedding API driven directly: an in-process public server on port
//! 0, an agent started with `Agent::builder()`, and what its events and
//! state say as links go up, down and away. Users are raw TCP connections
//! to the server's port (its `tcp` channel); data that crosses is checked.

use std::net::SocketAddr;
use std::time::Duration;

use local_agent::{Agent, AgentError, AgentHandle, CloseReason, Event, Events, RetryPolicy, State};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "t0ken";

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {WAIT:?}"))
}

/// A public server run in-process on `listener`, stopped by `stop`.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    fn on(listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let config = public_server::Config::new(TOKEN);
        let task = tokio::spawn(public_server::run(listener, config, stop.clone()));
        Server { addr, stop, task }
    }

    async fn start() -> Server {
        Server::on(TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn url(&self) -> local_agent::ServerUrl {
        format!("http://{}", self.addr).parse().unwrap()
    }
}

/// The next event, which must come within `WAIT`.
async fn next(events: &mut Events) -> Event {
    bounded("the next event", events.next())
        .await
        .expect("the events ended early")
}

/// A target that writes `len` bytes of a fixed pattern, then FIN, and
/// reads until the user's FIN; each accepted connection first reports
/// the agent's state at that moment on `seen`.
async fn flood(
    len: usize,
    state: watch::Receiver<State>,
) -> (SocketAddr, oneshot::Receiver<State>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen, seen_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let _ = seen.send(state.borrow().clone());
        socket.write_all(&pattern(len)).await.unwrap();
        socket.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    (addr, seen_rx)
}

/// `len` bytes no two runs of which repeat for a long way (xorshift).
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An agent of `server` serving `tcp` with `target`, retrying fast.
fn agent(server: &Server, target: SocketAddr) -> AgentHandle {
    Agent::builder()
        .server(server.url())
        .token(TOKEN)
        .channel("tcp", target.into())
        .retry(RetryPolicy::new(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .grace(WAIT)
        .start()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_comes_before_the_first_stream_is_served() {
    let server = Server::start().await;
    // The user comes first and waits for an agent (the connect timeout).
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00go").await.unwrap();
    // The target learns the agent's state only once the agent exists.
    let (state_tx, state_rx) = watch::channel(State::Connecting);
    let (target, seen) = flood(1 << 20, state_rx).await;
    let agent = agent(&server, target);
    let forward = agent.watch_state();
    tokio::spawn(async move {
        let mut forward = forward;
        loop {
            state_tx.send_replace(forward.borrow_and_update().clone());
            if forward.changed().await.is_err() {
                break;
            }
        }
    });
    let mut events = agent.events();
    match next(&mut events).await {
        Event::Ready { link, channels, .. } => {
            assert_eq!((link.index, link.transport.as_str()), (0, "tcp"));
            assert_eq!(channels, ["tcp"]);
        }
        other => panic!("the first event is {other}, not ready"),
    }
    let at_dial = bounded("the target's dial", seen).await.unwrap();
    assert!(
        matches!(at_dial, State::Ready { up: 1, links: 1 }),
        "the target was dialed while the agent was {at_dial:?}"
    );
    let mut got = Vec::new();
    bounded("the transfer", user.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(Sha256::digest(&got), Sha256::digest(pattern(1 << 20)));
    drop(user);
    bounded("shutdown", agent.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnecting_while_the_server_is_down_then_ready_again() {
    let server = Server::start().await;
    let addr = server.addr;
    let agent = agent(&server, "127.0.0.1:1".parse().unwrap());
    let mut events = agent.events();
    assert!(matches!(next(&mut events).await, Event::Ready { .. }));
    // A late subscriber sees no past events, but the state says it is up.
    assert!(matches!(agent.state(), State::Ready { up: 1, links: 1 }));
    let mut late = agent.events();

    server.stop.cancel();
    bounded("the server to stop", server.task)
        .await
        .unwrap()
        .unwrap();
    let mut attempts = Vec::new();
    while attempts.len() < 3 {
        match next(&mut events).await {
            Event::Reconnecting {
                link,
                attempt,
                cause,
                ..
            } => {
                assert_eq!(link, 0);
                if attempts.is_empty() {
                    assert!(cause.starts_with("link lost"), "{cause}");
                } else {
                    assert!(cause.contains("could not reach"), "{cause}");
                }
                attempts.push(attempt);
            }
            other => panic!("while the server is down: {other}"),
        }
    }
    assert_eq!(attempts, [1, 2, 3]);
    assert!(matches!(agent.state(), State::Reconnecting { .. }));
    assert!(matches!(
        next(&mut late).await,
        Event::Reconnecting { attempt: 1, .. }
    ));

    // Same port again: the agent's retries find it.
    let listener = bounded("the port to be free again", async {
        loop {
            match TcpListener::bind(addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    let _server = Server::on(listener);
    loop {
        match next(&mut events).await {
            Event::Reconnecting { .. } => continue,
            Event::Ready { link, .. } => break assert_eq!(link.index, 0),
            other => panic!("before the link came back: {other}"),
        }
    }
    assert!(matches!(agent.state(), State::Ready { up: 1, .. }));
    bounded("shutdown", agent.shutdown()).await.unwrap();
    assert!(matches!(
        next(&mut events).await,
        Event::Closed {
            reason: CloseReason::Shutdown,
            ..
        }
    ));
    assert!(events.next().await.is_none(), "nothing after closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drains_a_live_stream_before_closed() {
    const LEN: usize = 32 << 20;
    let server = Server::start().await;
    let (target, _seen) = flood(LEN, watch::channel(State::Connecting).1).await;
    let agent = agent(&server, target);
    let mut events = agent.events();
    let state = agent.watch_state();
    assert!(matches!(next(&mut events).await, Event::Ready { .. }));
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00go").await.unwrap();
    let mut got = vec![0u8; 1 << 20];
    bounded("the first MiB", user.read_exact(&mut got))
        .await
        .unwrap();

    let stopping = tokio::spawn(agent.shutdown());
    bounded("draining", async {
        let mut state = state;
        state
            .wait_for(|s| matches!(s, State::Draining))
            .await
            .unwrap();
    })
    .await;
    bounded("the rest", user.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got.len(), LEN);
    assert_eq!(Sha256::digest(&got), Sha256::digest(pattern(LEN)));
    // The stream is still open our way: the agent waits for it.
    assert!(!stopping.is_finished(), "closed with a stream open");
    user.shutdown().await.unwrap();
    bounded("shutdown", stopping).await.unwrap().unwrap();
    let last = bounded("closed", async {
        loop {
            match next(&mut events).await {
                Event::Closed { reason, .. } => break reason,
                Event::Error { .. } | Event::Reconnecting { .. } => {}
                other => panic!("while draining: {other}"),
            }
        }
    })
    .await;
    assert!(matches!(last, CloseReason::Shutdown), "{last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_token_closes_the_agent_with_the_reason() {
    let server = Server::start().await;
    let mut agent = Agent::builder()
        .server(server.url())
        .token("not-the-token")
        .channel("tcp", "127.0.0.1:1".parse().unwrap())
        .start()
        .unwrap();
    let mut events = agent.events();
    match next(&mut events).await {
        Event::Closed {
            reason: CloseReason::Failed(AgentError::Refused(refusal)),
            ..
        } => assert_eq!(refusal.status, 401),
        other => panic!("{other}"),
    }
    // The events end with `Closed`, though the handle is still held.
    assert!(bounded("the end", events.next()).await.is_none());
    let err = bounded("wait", agent.wait()).await.unwrap_err();
    assert!(
        err.to_string().contains("refused this agent (401)"),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-token"), "{err}");
    // Waiting again says the same.
    assert!(matches!(agent.wait().await, Err(AgentError::Refused(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn each_link_is_ready_on_its_own_and_failed_streams_are_errors() {
    let server = Server::start().await;
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let agent = Agent::builder()
        .server(server.url())
        .token(TOKEN)
        .channel("tcp", dead_addr.into())
        .links(2)
        .start()
        .unwrap();
    let mut events = agent.events();
    let mut up = Vec::new();
    for _ in 0..2 {
        match next(&mut events).await {
            Event::Ready { link, .. } => up.push(link.index),
            other => panic!("{other}"),
        }
    }
    up.sort();
    assert_eq!(up, [0, 1]);
    assert!(matches!(agent.state(), State::Ready { up: 2, links: 2 }));
    let mut user = TcpStream::connect(server.addr).await.unwrap();
    user.write_all(b"\x00go").await.unwrap();
    match next(&mut events).await {
        Event::Error {
            channel, message, ..
        } => {
            assert_eq!(channel.as_deref(), Some("tcp"));
            assert!(message.contains(&dead_addr.to_string()), "{message}");
        }
        other => panic!("{other}"),
    }
    // The user is told too: its connection ends without data.
    let mut got = Vec::new();
    let _ = bounded("the user's end", user.read_to_end(&mut got)).await;
    assert!(got.is_empty());
    bounded("shutdown", agent.shutdown()).await.unwrap();
}
