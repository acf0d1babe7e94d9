//! A `Forward` driven directly: in-process public server and agent, a
//! forward on port 0 whose `Ready` names the port the system chose, and
//! data through it checked end to end; its failures at start are typed.

use std::net::SocketAddr;
use std::time::Duration;

use local_agent::{Agent, AgentHandle, CloseReason, DialError, Event, Forward, ForwardError};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(30);
const AGENTS: &str = "agent-t0ken";
const CLIENTS: &str = "client-t0ken";

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {WAIT:?}"))
}

/// A server that takes `AGENTS` and `CLIENTS`, and an agent on it serving
/// `echo` with an echo target, up.
async fn server_and_agent() -> (String, AgentHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = public_server::Config::new(AGENTS);
    config.tokens.clients = vec![public_server::Grant::any(CLIENTS)];
    tokio::spawn(public_server::run(
        listener,
        config,
        public_server::Shutdown::new(),
    ));
    let agent = Agent::builder()
        .server(url.parse().unwrap())
        .token(AGENTS)
        .channel("echo", echo().await.into())
        .start()
        .unwrap();
    let mut state = agent.watch_state();
    bounded("the agent's link", async {
        state
            .wait_for(|s| matches!(s, local_agent::State::Ready { .. }))
            .await
            .unwrap();
    })
    .await;
    (url, agent)
}

/// Writes back what it reads, then ends.
async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.into_split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_on_port_0_reports_its_real_port_and_carries_data() {
    let (url, _agent) = server_and_agent().await;
    let forward = Forward::builder()
        .server(url.parse().unwrap())
        .token(CLIENTS)
        .listen("127.0.0.1:0", "echo")
        .start()
        .await
        .unwrap();
    let mut events = forward.events();
    let addr = match bounded("ready", events.next()).await.unwrap() {
        Event::Ready {
            channels,
            listening,
            ..
        } => {
            assert_eq!(channels, ["echo"]);
            assert_eq!(listening, forward.listening());
            assert_eq!(listening.len(), 1);
            assert_eq!(listening[0].channel, "echo");
            listening[0].addr
        }
        other => panic!("the first event is {other}"),
    };
    assert_ne!(addr.port(), 0);

    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 + i / 4099) as u8).collect();
    let user = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = user.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    bounded("the echo", read.read_to_end(&mut back))
        .await
        .unwrap();
    writer.await.unwrap();
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));

    bounded("shutdown", forward.shutdown()).await;
    match bounded("closed", events.next()).await.unwrap() {
        Event::Closed {
            reason: CloseReason::Shutdown,
            ..
        } => {}
        other => panic!("after shutdown: {other}"),
    }
    // The port closed with the forward.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_that_cannot_start_says_why() {
    let (url, _agent) = server_and_agent().await;
    let start = |token: &str, listen: &str| {
        Forward::builder()
            .server(url.parse().unwrap())
            .token(token)
            .listen(listen, "echo")
            .start()
    };
    // An agent token is not a client token: refused, and retrying cannot fix it.
    match bounded("a refusal", start(AGENTS, "127.0.0.1:0")).await {
        Err(ForwardError::Dial(err @ DialError::Refused(_))) => assert!(err.is_fatal()),
        other => panic!("{other:?}"),
    }
    let holder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    match bounded("a port in use", start(CLIENTS, &taken)).await {
        Err(err @ ForwardError::Listen { .. }) => {
            assert!(err.to_string().contains(&taken), "{err}")
        }
        other => panic!("{other:?}"),
    }
    let none = Forward::builder()
        .server(url.parse().unwrap())
        .token(CLIENTS);
    match none.start().await {
        Err(ForwardError::Config(msg)) => assert!(msg.contains("LISTEN=CHANNEL"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_link_is_an_error_and_the_next_connection_brings_it_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = listener.local_addr().unwrap();
    let serve = |listener| {
        let mut config = public_server::Config::new(AGENTS);
        config.tokens.clients = vec![public_server::Grant::any(CLIENTS)];
        // Without an agent, users are reset after this.
        config.connect_timeout = Duration::from_millis(100);
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(public_server::run(listener, config, stop.clone()));
        (stop, task)
    };
    let (stop, task) = serve(listener);
    let forward = Forward::builder()
        .server(format!("http://{server_addr}").parse().unwrap())
        .token(CLIENTS)
        .listen("127.0.0.1:0", "echo")
        .start()
        .await
        .unwrap();
    let mut events = forward.events();
    assert!(matches!(events.next().await, Some(Event::Ready { .. })));

    stop.cancel();
    bounded("the server to stop", task).await.unwrap().unwrap();
    match bounded("the loss", events.next()).await.unwrap() {
        Event::Error {
            channel, message, ..
        } => {
            assert_eq!(channel, None);
            assert!(message.starts_with("link lost"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(forward.state(), local_agent::State::Connecting));

    let listener = bounded("the port to be free again", async {
        loop {
            match TcpListener::bind(server_addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await;
    let _server = serve(listener);
    // The next user's connection dials again (no agent: it is reset).
    let mut user = TcpStream::connect(forward.listening()[0].addr)
        .await
        .unwrap();
    match bounded("ready again", events.next()).await.unwrap() {
        Event::Ready { listening, .. } => assert_eq!(listening, forward.listening()),
        other => panic!("{other}"),
    }
    let _ = bounded("the user's end", user.read(&mut [0u8; 1])).await;
    bounded("shutdown", forward.shutdown()).await;
}
