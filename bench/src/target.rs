//! The target every system forwards to: one listener whose first byte picks
//! sink, responder or echo, and a tiny HTTP responder for the wrk cross-check.
//! It runs inside the bench process so workloads read its counters directly;
//! echo connections get a thread of their own, so their latency measures the
//! tunnel and not the queue behind the bench's own bulk tasks.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// First byte of a bulk or idle connection: everything after it is counted and dropped.
/// Not an ASCII letter, so no tunnel mistakes it for HTTP or SSH.
pub const MODE_SINK: u8 = 0x00;
/// First byte of a request: every `REQUEST_LEN` bytes read get a `REPLY_LEN` reply.
pub const MODE_REQUEST: u8 = 0x01;
/// First byte of an echo connection: every byte (this one too) is sent back.
pub const MODE_ECHO: u8 = 0x02;

pub const REQUEST_LEN: usize = 16;
pub const REPLY_LEN: usize = 1024;

const SINK_BUF: usize = 256 * 1024;

/// Counters the workloads read.
#[derive(Debug, Default)]
pub struct TargetStats {
    sink_bytes: AtomicU64,
    active: AtomicUsize,
}

impl TargetStats {
    /// Bytes received by sink connections so far (mode bytes not counted).
    pub fn sink_bytes(&self) -> u64 {
        self.sink_bytes.load(Ordering::Relaxed)
    }

    /// Connections that reached the target and are still open.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

/// Counts a connection as active for as long as it lives.
struct ActiveGuard(Arc<TargetStats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The running targets: raw (`addr`) and HTTP (`http_addr`).
pub struct Target {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub stats: Arc<TargetStats>,
}

pub async fn start() -> anyhow::Result<Target> {
    let raw = TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not bind the target on 127.0.0.1")?;
    let http = TcpListener::bind("127.0.0.1:0")
        .await
        .context("could not bind the HTTP target on 127.0.0.1")?;
    let stats = Arc::new(TargetStats::default());
    let echo_runtime = dedicated_runtime("uptun-bench-echo")?;
    let target = Target {
        addr: raw.local_addr()?,
        http_addr: http.local_addr()?,
        stats: stats.clone(),
    };
    tokio::spawn(accept_loop(raw, move |socket| {
        serve_raw(socket, stats.clone(), echo_runtime.clone())
    }));
    tokio::spawn(accept_loop(http, serve_http));
    Ok(target)
}

async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let _ = socket.set_nodelay(true);
                // Errors are the load generator hanging up mid-request: expected.
                tokio::spawn(serve(socket));
            }
            // Out of descriptors under the idle-connection load: back off briefly.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// A single-threaded runtime on its own OS thread, kept for the whole run.
fn dedicated_runtime(name: &str) -> anyhow::Result<Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not build a runtime")?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .context("could not start a thread")?;
    Ok(handle)
}

async fn serve_raw(
    mut socket: TcpStream,
    stats: Arc<TargetStats>,
    echo_runtime: Handle,
) -> std::io::Result<()> {
    let mode = socket.read_u8().await?;
    stats.active.fetch_add(1, Ordering::Relaxed);
    let guard = ActiveGuard(stats.clone());
    match mode {
        MODE_SINK => sink(socket, &stats).await,
        MODE_REQUEST => respond(socket).await,
        MODE_ECHO => {
            let socket = socket.into_std()?;
            echo_runtime.spawn(async move {
                let _guard = guard;
                echo(TcpStream::from_std(socket)?).await
            });
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn sink(mut socket: TcpStream, stats: &TargetStats) -> std::io::Result<()> {
    let mut buf = vec![0u8; SINK_BUF];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stats.sink_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

async fn respond(mut socket: TcpStream) -> std::io::Result<()> {
    let reply = [b'r'; REPLY_LEN];
    let mut request = [0u8; REQUEST_LEN];
    // The mode byte was the first byte of the first request.
    socket.read_exact(&mut request[1..]).await?;
    loop {
        socket.write_all(&reply).await?;
        if read_exact_or_eof(&mut socket, &mut request).await? {
            return Ok(());
        }
    }
}

async fn echo(mut socket: TcpStream) -> std::io::Result<()> {
    socket.write_all(&[MODE_ECHO]).await?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        socket.write_all(&buf[..n]).await?;
    }
}

/// Reads `buf.len()` bytes; `Ok(true)` on a clean close before the first byte.
async fn read_exact_or_eof(socket: &mut TcpStream, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = socket.read(&mut buf[filled..]).await?;
        if n == 0 {
            return if filled == 0 {
                Ok(true)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        filled += n;
    }
    Ok(false)
}

/// Answers every request on a keep-alive connection with a 1 KiB body.
async fn serve_http(mut socket: TcpStream) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {REPLY_LEN}\r\n\r\n"
    )
    .into_bytes();
    response.extend_from_slice(&[b'r'; REPLY_LEN]);
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Requests carry no body (wrk sends GETs), so each head ends one request.
        while let Some(end) = find_head_end(&buf) {
            buf.drain(..end);
            socket.write_all(&response).await?;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_is_found_after_the_blank_line() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[tokio::test]
    async fn modes_answer_as_documented() {
        let target = start().await.unwrap();
        let mut req = TcpStream::connect(target.addr).await.unwrap();
        req.write_all(&[MODE_REQUEST; REQUEST_LEN]).await.unwrap();
        let mut reply = [0u8; REPLY_LEN];
        req.read_exact(&mut reply).await.unwrap();

        let mut echo = TcpStream::connect(target.addr).await.unwrap();
        echo.write_all(&[MODE_ECHO, 7, 8]).await.unwrap();
        let mut back = [0u8; 3];
        echo.read_exact(&mut back).await.unwrap();
        assert_eq!(back, [MODE_ECHO, 7, 8]);

        let mut sink = TcpStream::connect(target.addr).await.unwrap();
        sink.write_all(&[MODE_SINK, 1, 2, 3]).await.unwrap();
        drop(sink);
        for _ in 0..100 {
            if target.stats.sink_bytes() == 3 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("sink counted {} bytes", target.stats.sink_bytes());
    }
}
