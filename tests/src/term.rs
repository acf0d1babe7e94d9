//! A terminal client inside the test: one client link to a public server
//! (the handshake and mux of `uptun_protocol`, as `local-agent connect`
//! dials it), a stream to a channel, and what a terminal sends and gets:
//! bytes, sizes (RESIZE) and the end with its exit status. Plus a look at
//! `/proc` for the processes a terminal left behind.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uptun_protocol::handshake::{read_answer, LinkAnswer, LinkRequest, PeerKind};
use uptun_protocol::{
    spawn_link, Config, ExitStatus, LinkHandle, MuxStream, Role, Secret, StreamError, StreamEvent,
    TermSize, PROTOCOL_VERSION,
};

use crate::server::Server;
use crate::{wait_for, WAIT};

/// One stream to a channel, on a client link of its own. Dropping it
/// resets the stream and closes the link: a user who went away.
pub struct Term {
    pub stream: MuxStream,
    pub link: LinkHandle,
}

impl Term {
    /// Opens `channel` on `server` with its client token and waits for the
    /// agent's ACCEPT; panics saying why if it does not come.
    pub async fn open(server: &Server, channel: &str) -> Term {
        Term::open_at(server.addr, &server.client_token, channel)
            .await
            .unwrap_or_else(|err| panic!("channel {channel}: {err}"))
    }

    /// Like [`Term::open`], for any server address and token; the error is
    /// the refusal (or the link's failure) as text.
    pub async fn open_at(addr: SocketAddr, token: &str, channel: &str) -> Result<Term, String> {
        let link = client_link(addr, token).await?;
        let stream = link
            .open(channel, "term-test")
            .await
            .map_err(|e| e.to_string())?;
        crate::bounded("the agent's ACCEPT", stream.accepted())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Term { stream, link })
    }

    /// Types `bytes`.
    pub async fn send(&self, bytes: &[u8]) {
        let sent = self.stream.send(Bytes::copy_from_slice(bytes));
        crate::bounded("send", sent).await.expect("send");
    }

    /// Tells the agent the terminal is `cols`×`rows`.
    pub async fn send_resize(&self, cols: u16, rows: u16) {
        let sent = self.stream.send_resize(TermSize { cols, rows });
        crate::bounded("RESIZE", sent).await.expect("send RESIZE");
    }

    /// The user's FIN: nothing more will be typed.
    pub async fn finish(&self) {
        crate::bounded("FIN", self.stream.finish())
            .await
            .expect("send FIN");
    }

    /// The next event, bounded by [`WAIT`].
    pub async fn recv_event(&self) -> Result<StreamEvent, StreamError> {
        crate::bounded("the next stream event", self.stream.recv_event()).await
    }

    /// Reads output until it contains `needle` (terminal `\r` dropped);
    /// returns all of it. Panics with what came if the stream ends first
    /// or `WAIT` passes.
    pub async fn read_until(&self, needle: &str) -> String {
        let mut seen = String::new();
        let read = async {
            while !seen.contains(needle) {
                match self.stream.recv_event().await {
                    Ok(StreamEvent::Data(chunk)) => push_text(&mut seen, &chunk),
                    Ok(StreamEvent::Resize(_)) => {}
                    other => return Err(format!("{other:?}")),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(WAIT, read).await {
            Ok(Ok(())) => seen,
            Ok(Err(end)) => panic!("the stream ended ({end}) before {needle:?}; got {seen:?}"),
            Err(_) => panic!("no {needle:?} within {WAIT:?}; got {seen:?}"),
        }
    }

    /// Reads until the end; returns the output (without `\r`) and the
    /// status the FIN carried, or the error that ended the stream.
    pub async fn read_to_end(&self) -> (String, Result<Option<ExitStatus>, StreamError>) {
        let mut seen = String::new();
        let read = async {
            loop {
                match self.stream.recv_event().await {
                    Ok(StreamEvent::Data(chunk)) => push_text(&mut seen, &chunk),
                    Ok(StreamEvent::Resize(_)) => {}
                    Ok(StreamEvent::End(status)) => return Ok(status),
                    Err(err) => return Err(err),
                }
            }
        };
        let end = crate::bounded("the end of the stream", read).await;
        (seen, end)
    }
}

fn push_text(seen: &mut String, chunk: &[u8]) {
    seen.push_str(&String::from_utf8_lossy(chunk).replace('\r', ""));
}

/// A client link to the server at `addr`: the `Upgrade: tcp` handshake
/// with `token`, then the mux, refusing streams from the server.
pub async fn client_link(addr: SocketAddr, token: &str) -> Result<LinkHandle, String> {
    let config = Config {
        accept_incoming: false,
        ..Config::default()
    };
    let request = LinkRequest {
        kind: PeerKind::Client,
        host: addr.to_string(),
        token: Some(Secret::new(token.to_string())),
        version: PROTOCOL_VERSION,
        channels: Vec::new(),
        window: config.window,
        name: None,
    };
    let dial = async {
        let mut socket = TcpStream::connect(addr).await?;
        socket.set_nodelay(true)?;
        socket.write_all(request.to_http().as_bytes()).await?;
        let mut leftover = BytesMut::new();
        let answer = read_answer(&mut socket, &mut leftover).await?;
        Ok::<_, std::io::Error>((socket, leftover, answer))
    };
    let (socket, leftover, answer) = crate::bounded("the link handshake", dial)
        .await
        .map_err(|e| format!("could not reach {addr}: {e}"))?;
    let window = match answer {
        LinkAnswer::Accepted { window } => window,
        LinkAnswer::Refused(refusal) => {
            return Err(format!("refused ({}): {}", refusal.status, refusal.reason))
        }
    };
    let (read, write) = socket.into_split();
    let (link, _incoming) = spawn_link(read, write, leftover, Role::Dialer, config, window);
    Ok(link)
}

/// Whether process `pid` still runs: its `/proc` entry is there and it is
/// not a zombie (an orphan's zombie waits for whoever reaps orphans here,
/// which in a container may be no one; it runs nothing).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "PID (COMM) STATE …": COMM may hold spaces and parentheses.
    let state = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest.trim_start());
    !state.starts_with('Z')
}

/// Waits until process `pid` no longer runs; panics after `limit`.
pub async fn wait_pid_gone(pid: u32, limit: Duration) {
    wait_for(&format!("process {pid} to end"), limit, || async move {
        (!pid_alive(pid)).then_some(())
    })
    .await
}

/// The numbers in `text` that follow `label` (as in `pid=1234`), in order.
pub fn numbers_after(text: &str, label: &str) -> Vec<u32> {
    text.match_indices(label)
        .filter_map(|(at, _)| {
            let rest = &text[at + label.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_of_running_and_finished_processes() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
        assert_eq!(numbers_after("pid=12 x pid=7\npid=", "pid="), [12, 7]);
    }

    /// The handshake is real: a wrong token is refused with the server's
    /// reason, the right one gets a link whose OPEN is answered.
    #[tokio::test]
    async fn a_client_link_is_refused_or_opens_streams() {
        let server = crate::inproc::InProcess::start(|config| {
            config.tokens.clients = vec![public_server::Grant::any("c1ient")];
            config.connect_timeout = Duration::from_millis(200);
        })
        .await;
        let err = client_link(server.addr, "wrong").await.err().unwrap();
        assert!(err.contains("refused (401)"), "{err}");
        let err = Term::open_at(server.addr, "c1ient", "nothing")
            .await
            .err()
            .unwrap();
        assert!(err.contains("refused"), "{err}");
    }
}
