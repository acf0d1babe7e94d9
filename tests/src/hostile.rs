//! A hostile agent for tests: it speaks the wire format of
//! `docs/protocol.md` from raw bytes, not through the protocol crate, so a
//! mistake shared by the crate's encoder and decoder cannot hide, and it
//! misbehaves on purpose.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OPEN: u8 = 1;
pub const ACCEPT: u8 = 2;
pub const DATA: u8 = 4;
pub const PING: u8 = 8;

/// One frame on the wire: `length u32 BE | type u8 | stream id u32 BE | payload`.
pub fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An agent link, upgraded by hand.
pub struct Agent {
    pub socket: TcpStream,
    /// Bytes read past the 101 answer.
    pending: Vec<u8>,
}

impl Agent {
    /// Dials `addr` and asks to serve `channels` with `token`; panics unless
    /// the server answers 101.
    pub async fn connect(addr: SocketAddr, token: &str, channels: &str) -> Agent {
        Self::connect_with_rcvbuf(addr, token, channels, None).await
    }

    /// Like `connect`, with a small receive buffer, so a hostile agent that
    /// stops reading blocks the server's writer after a few KiB.
    pub async fn connect_with_rcvbuf(
        addr: SocketAddr,
        token: &str,
        channels: &str,
        rcvbuf: Option<u32>,
    ) -> Agent {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let mut socket = socket.connect(addr).await.unwrap();
        let request = format!(
            "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer {token}\r\nUptun-Version: 1\r\nUptun-Channels: {channels}\r\nUptun-Name: hostile\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = crate::bounded("the 101 answer", socket.read(&mut chunk))
                .await
                .unwrap();
            assert!(n > 0, "server closed during the handshake");
            got.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Agent {
            socket,
            pending: got[end..].to_vec(),
        }
    }

    /// Reads frames until one of `kind` arrives; returns its stream id and payload.
    pub async fn next_frame_of(&mut self, kind: u8) -> (u32, Vec<u8>) {
        loop {
            while self.pending.len() >= 9 {
                let len = u32::from_be_bytes(self.pending[..4].try_into().unwrap()) as usize;
                if self.pending.len() < 9 + len {
                    break;
                }
                let frame: Vec<u8> = self.pending.drain(..9 + len).collect();
                let id = u32::from_be_bytes(frame[5..9].try_into().unwrap());
                if frame[4] == kind {
                    return (id, frame[9..].to_vec());
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let n = crate::bounded("a frame from the server", self.socket.read(&mut chunk))
                .await
                .unwrap();
            assert!(n > 0, "server closed the link");
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }
}

/// Whether a 127.0.0.1 socket whose peer is `port` has queued its FIN
/// (state FIN_WAIT1 or later in /proc/net/tcp): its writer shut down.
pub fn fin_queued_toward(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let peer = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // 04 FIN_WAIT1, 05 FIN_WAIT2, 07 CLOSE, 0B CLOSING.
        fields.get(2) == Some(&peer.as_str())
            && matches!(fields.get(3), Some(&"04" | &"05" | &"07" | &"0B"))
    })
}

/// Bytes the local end of a 127.0.0.1 connection has queued but the peer
/// at `port` has not taken (Linux: `tx_queue` in /proc/net/tcp). Tells a
/// test that a writer toward a peer that reads nothing is truly blocked.
pub fn unsent_to(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let peer = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2) == Some(&peer.as_str())).then(|| {
                let tx = fields[4].split(':').next().unwrap();
                u64::from_str_radix(tx, 16).unwrap()
            })
        })
        .max()
        .unwrap_or(0)
}

/// Whether a 127.0.0.1 socket whose peer is `port` holds at least half the
/// most a TCP send buffer may grow to (`net.ipv4.tcp_wmem`, 4 MiB by
/// default): its writer is blocked, or about to be, by a peer that reads
/// nothing.
pub fn writer_blocked_toward(port: u16) -> bool {
    let wmem = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem").unwrap_or_default();
    let max: u64 = wmem
        .split_whitespace()
        .nth(2)
        .and_then(|m| m.parse().ok())
        .unwrap_or(4 << 20);
    unsent_to(port) >= (max / 2).min(2 << 20)
}
