//! The two ways to stop the server library, driven in-process: `drain`
//! (QUIT) keeps open streams working with the port already closed, and
//! `stop(grace)` (TERM) cuts what is still open when the grace runs out,
//! but returns at once when only idle links are left. An in-process agent
//! serves a `tcp` channel that echoes.

mod common;

use common::echo;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use local_agent::{run_agent, AgentConfig, Target};
use public_server::{run, Config, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}

/// A server run with `shutdown`, an agent serving `tcp` by echoing, and a
/// user whose stream is open (one round trip made).
struct Setup {
    addr: SocketAddr,
    server: JoinHandle<anyhow::Result<()>>,
    agent: CancellationToken,
    user: TcpStream,
}

async fn setup(shutdown: impl Into<Shutdown>) -> Setup {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(run(listener, Config::new("t0ken"), shutdown.into()));
    let url = format!("http://{addr}").parse().unwrap();
    let channels = vec![("tcp".to_string(), Target::from(echo().await))];
    let agent = CancellationToken::new();
    tokio::spawn(run_agent(
        AgentConfig::new(url, "t0ken", channels),
        agent.clone(),
    ));
    // The user waits for the agent to register (the connect timeout).
    let mut user = TcpStream::connect(addr).await.unwrap();
    user.write_all(&[0, 1, 2]).await.unwrap();
    let mut back = [0u8; 3];
    bounded("the first echo", user.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(back, [0, 1, 2]);
    Setup {
        addr,
        server,
        agent,
        user,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_keeps_a_stream_working_and_closes_the_port() {
    let shutdown = Shutdown::new();
    let Setup {
        addr,
        mut server,
        agent,
        user,
    } = setup(shutdown.clone()).await;
    shutdown.drain();
    bounded("the port to close", async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    // The server waits on the open stream.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut server)
            .await
            .is_err(),
        "run returned while a stream was open"
    );

    // Still working after the drain began: 4 MiB each way, intact.
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    let (mut r, mut w) = user.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    bounded("the echo", r.read_to_end(&mut got)).await.unwrap();
    writer.await.unwrap();
    assert!(got == data, "the echo differs from what was sent");

    bounded("run after the last stream", server)
        .await
        .unwrap()
        .unwrap();
    agent.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_cuts_an_open_stream_when_the_grace_runs_out() {
    let shutdown = Shutdown::new();
    let mut setup = setup(shutdown.clone()).await;
    let grace = Duration::from_millis(300);
    let asked = Instant::now();
    shutdown.stop(grace);
    bounded("run", setup.server).await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(took >= grace, "returned after {took:?}, inside the grace");
    assert!(took < grace + Duration::from_secs(1), "took {took:?}");
    let mut rest = Vec::new();
    let err = bounded("the user's end", setup.user.read_to_end(&mut rest))
        .await
        .expect_err("a cut stream must not end like a finished one");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    setup.agent.cancel();
}

/// A `CancellationToken`, as `run` took before `Shutdown`, still stops it;
/// an agent link with nothing on it gets GOAWAY and does not hold the exit.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_agent_link_does_not_hold_the_exit() {
    let token = CancellationToken::new();
    let setup = setup(token.clone()).await;
    // The user finishes: its stream ends within moments, and the agent
    // link stays up with nothing on it.
    drop(setup.user);
    let asked = Instant::now();
    token.cancel();
    bounded("run", setup.server).await.unwrap().unwrap();
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "took {took:?} with nothing open"
    );
    setup.agent.cancel();
}
