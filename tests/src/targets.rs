//! Targets that agents dial in the tests, served from the test process on
//! 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::data::{pattern, sha256_hex};

async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(handler(socket));
        }
    });
    addr
}

/// An HTTP/1.1 server with keep-alive. `GET /bytes/LEN/SEED` answers
/// `pattern(SEED, LEN)`; `GET /hello` answers a short greeting; HEAD works.
pub async fn http() -> SocketAddr {
    serve(|socket| async move {
        let _ = http_connection(socket).await;
    })
    .await
}

async fn http_connection(mut socket: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut words = head.split_whitespace();
        let method = words.next().unwrap_or_default().to_string();
        let path = words.next().unwrap_or_default().to_string();
        let close = head.to_ascii_lowercase().contains("connection: close");
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (status, body) = match parts.as_slice() {
            ["bytes", len, seed] => match (len.parse::<usize>(), seed.parse::<u64>()) {
                (Ok(len), Ok(seed)) => ("200 OK", pattern(seed, len)),
                _ => ("400 Bad Request", b"bad numbers\n".to_vec()),
            },
            ["hello"] => ("200 OK", b"hello from the target\n".to_vec()),
            _ => ("404 Not Found", b"no such path\n".to_vec()),
        };
        let header = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        socket.write_all(header.as_bytes()).await?;
        if method != "HEAD" {
            socket.write_all(&body).await?;
        }
        if close {
            return socket.shutdown().await;
        }
    }
}

/// Echoes every byte back; on EOF, finishes echoing and shuts its write side.
pub async fn echo() -> SocketAddr {
    serve(|socket| async move {
        let (mut r, mut w) = socket.into_split();
        if tokio::io::copy(&mut r, &mut w).await.is_ok() {
            let _ = w.shutdown().await;
        }
    })
    .await
}

/// Reads until EOF, then answers `LEN SHA256\n` and closes: only a client
/// whose half-close arrived, and that can still read, gets the answer.
pub async fn digest() -> SocketAddr {
    serve(|mut socket| async move {
        let mut all = Vec::new();
        if socket.read_to_end(&mut all).await.is_ok() {
            let reply = format!("{} {}\n", all.len(), sha256_hex(&all));
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    })
    .await
}

/// Sends `pattern(seed, len)` to every connection in 64 KiB writes, then
/// closes. The counter tells how many bytes the sockets have taken so far.
pub async fn flood(seed: u64, len: usize) -> (SocketAddr, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let addr = serve(move |mut socket| {
        let written = written.clone();
        async move {
            let data = pattern(seed, len);
            for chunk in data.chunks(64 * 1024) {
                if socket.write_all(chunk).await.is_err() {
                    return;
                }
                written.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            let _ = socket.shutdown().await;
        }
    })
    .await;
    (addr, counter)
}

/// Sends the same 64 KiB of `pattern(seed, …)` to every connection, over and
/// over, until the connection fails: a transfer that is always in progress.
pub async fn endless(seed: u64) -> SocketAddr {
    serve(move |mut socket| async move {
        let chunk = pattern(seed, 64 * 1024);
        while socket.write_all(&chunk).await.is_ok() {}
    })
    .await
}

/// How a connection to [`sink`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A clean FIN: `read` returned 0.
    Eof,
    /// `ECONNRESET`.
    Reset,
    /// Any other error.
    Other,
}

/// What a [`sink`] has seen.
#[derive(Debug, Default)]
pub struct Sunk {
    /// Connections that have received at least 1 MiB.
    pub busy: AtomicU64,
    /// How each connection ended, in order.
    pub endings: std::sync::Mutex<Vec<Ending>>,
}

/// Reads and discards everything; records how each connection ended.
pub async fn sink() -> (SocketAddr, Arc<Sunk>) {
    let sunk = Arc::new(Sunk::default());
    let record = sunk.clone();
    let addr = serve(move |mut socket| {
        let record = record.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            let ending = loop {
                match socket.read(&mut buf).await {
                    Ok(0) => break Ending::Eof,
                    Ok(n) => {
                        if total < 1 << 20 && total + n >= 1 << 20 {
                            record.busy.fetch_add(1, Ordering::SeqCst);
                        }
                        total += n;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        break Ending::Reset
                    }
                    Err(_) => break Ending::Other,
                }
            };
            record.endings.lock().unwrap().push(ending);
        }
    })
    .await;
    (addr, sunk)
}

/// What a [`recorder`] target has seen.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Connections accepted so far.
    pub connections: AtomicU64,
    /// Connections that have ended (any way).
    pub ended: AtomicU64,
    /// Every byte received, from all connections.
    pub bytes: std::sync::Mutex<Vec<u8>>,
}

/// Sends `banner` (if any) on each connection, then records everything it
/// receives until the connection ends.
pub async fn recorder(banner: Option<&'static [u8]>) -> (SocketAddr, Arc<Recorded>) {
    let seen = Arc::new(Recorded::default());
    let record = seen.clone();
    let addr = serve(move |mut socket| {
        let record = record.clone();
        async move {
            record.connections.fetch_add(1, Ordering::SeqCst);
            if let Some(banner) = banner {
                let _ = socket.write_all(banner).await;
            }
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = socket.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                record.bytes.lock().unwrap().extend_from_slice(&buf[..n]);
            }
            record.ended.fetch_add(1, Ordering::SeqCst);
        }
    })
    .await;
    (addr, seen)
}

/// A TCP relay to `to` whose connections can be frozen: a frozen
/// connection stays open but forwards nothing more, like a network path
/// that died without a word. Connections made after the freeze work.
pub async fn freezable_relay(to: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    let addr = serve(move |socket| {
        let mut frozen = frozen.clone();
        async move {
            // Only connections open at the time of a freeze are frozen.
            frozen.mark_unchanged();
            let Ok(upstream) = TcpStream::connect(to).await else {
                return;
            };
            let (mut a_read, mut a_write) = socket.into_split();
            let (mut b_read, mut b_write) = upstream.into_split();
            let copy = async {
                tokio::select! {
                    _ = tokio::io::copy(&mut a_read, &mut b_write) => {}
                    _ = tokio::io::copy(&mut b_read, &mut a_write) => {}
                }
            };
            tokio::select! {
                _ = copy => {}
                _ = frozen.changed() => {
                    // Hold both sockets open, silent, until the far ends give up.
                    std::future::pending::<()>().await;
                }
            }
        }
    })
    .await;
    (addr, freeze)
}
