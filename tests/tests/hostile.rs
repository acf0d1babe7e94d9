//! A hostile authenticated agent, speaking the wire format from raw bytes,
//! cannot make the server hold more than its windows and a little per link.

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use uptun_e2e::hostile::{frame, writer_blocked_toward, Agent, ACCEPT, DATA, OPEN, PING};
use uptun_e2e::procs::Server;
use uptun_e2e::wait_for;

const PONG: u8 = 9;

/// A raw user with a small receive buffer, so what it does not read stays
/// in the server rather than in the kernel.
async fn user_with_rcvbuf(server: &Server, rcvbuf: u32) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    let mut user = socket.connect(server.addr).await.unwrap();
    user.write_all(b"\x00").await.unwrap();
    user
}

#[tokio::test(flavor = "multi_thread")]
async fn one_byte_frames_to_a_user_who_does_not_read_cost_their_bytes_only() {
    let server = Server::start(&[]).await;
    let mut agent = Agent::connect(server.addr, &server.token, "tcp").await;
    server.wait_channels(&["tcp"]).await;
    let _user = user_with_rcvbuf(&server, 4096).await;
    let (id, _) = agent.next_frame_of(OPEN).await;
    agent.send(&frame(ACCEPT, id, &[])).await;

    let before = server.proc.rss_kib();
    // 200,000 one-byte DATA frames: 200,000 bytes, inside the 256 KiB window.
    let flood: Vec<u8> = (0..200_000u32)
        .flat_map(|i| frame(DATA, id, &[i as u8]))
        .collect();
    agent.send(&flood).await;
    // The PONG comes back once the server has read every frame before it.
    agent.send(&frame(PING, 0, &7u64.to_be_bytes())).await;
    let (_, stamp) = agent.next_frame_of(PONG).await;
    assert_eq!(stamp, 7u64.to_be_bytes());
    let grown = server.proc.rss_kib().saturating_sub(before);
    eprintln!("one-byte frames: server RSS grew {grown} KiB");
    assert!(
        grown <= 6 * 1024,
        "server grew by {grown} KiB holding 200,000 bytes for one user"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pings_behind_a_blocked_writer_do_not_pin_read_buffers() {
    let server = Server::start(&[]).await;
    let mut agent = Agent::connect_with_rcvbuf(server.addr, &server.token, "tcp", Some(4096)).await;
    server.wait_channels(&["tcp"]).await;

    // 40 users each send 256 KiB the agent never reads. Only an OPEN and
    // the first bytes go out before ACCEPT, which the server's socket
    // buffer alone absorbs, so the agent ACCEPTs them blind (the server's
    // ids are odd, in order): then 10 MiB follow, and the server's writer
    // to the agent blocks once its socket holds a few MiB.
    let mut users = Vec::new();
    for _ in 0..40 {
        let mut user = TcpStream::connect(server.addr).await.unwrap();
        let mut data = vec![0x55u8; 256 * 1024];
        data[0] = 0;
        users.push(tokio::spawn(async move {
            let _ = user.write_all(&data).await;
            user
        }));
    }
    wait_for("40 streams on the agent link", uptun_e2e::WAIT, || async {
        let status = server.status_json().await?;
        (status["agents"][0]["streams"] == 40).then_some(())
    })
    .await;
    for i in 0..40u32 {
        agent.send(&frame(ACCEPT, 2 * i + 1, &[])).await;
    }
    let agent_port = agent.socket.local_addr().unwrap().port();
    wait_for(
        "the server's writer to the agent to block",
        uptun_e2e::WAIT,
        || async { writer_blocked_toward(agent_port).then_some(()) },
    )
    .await;
    let _users = users;

    // Then 200 large frames for a stream nobody has, each followed by a PING.
    let before = server.proc.rss_kib();
    let big = frame(DATA, 1_000_002, &vec![0xAA; 1 << 20]);
    let ping = frame(PING, 0, &1u64.to_be_bytes());
    for _ in 0..200 {
        agent.send(&big).await;
        agent.send(&ping).await;
    }
    let grown = server.proc.rss_kib().saturating_sub(before);
    eprintln!("PINGs behind a blocked writer: server RSS grew {grown} KiB");
    assert!(
        grown <= 16 * 1024,
        "server grew by {grown} KiB from 200 PINGs behind a blocked writer"
    );
}
