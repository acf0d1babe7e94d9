//! Plain TCP to the server (or to a proxy or router in front of it).

use tokio::net::TcpStream;

/// Connects to `addr` (`host:port`) with Nagle off: frames are written
/// whole, and a small one (a PING, a keystroke) must not wait.
pub(crate) async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let socket = TcpStream::connect(addr).await?;
    let _ = socket.set_nodelay(true);
    Ok(socket)
}
