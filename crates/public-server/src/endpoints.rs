//! Built-in endpoints under the prefix (`/_uptun` by default): `health`
//! for load balancers and `status` for people.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uptun_protocol::handshake::{status_text, RequestHead};

use crate::server::State;

pub(crate) async fn serve(mut socket: TcpStream, head: &RequestHead, state: &State) {
    let path = head.path.split('?').next().unwrap_or_default();
    let name = path
        .strip_prefix(state.config.endpoint_prefix.as_str())
        .unwrap_or_default();
    let (status, body) = match name {
        "/health" => (200, "ok\n".to_string()),
        "/status" => (200, status(state)),
        _ => (
            404,
            format!(
                "no such endpoint; try {}/health or {}/status\n",
                state.config.endpoint_prefix, state.config.endpoint_prefix
            ),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        status_text(status),
        body.len()
    );
    if head.method != "HEAD" {
        response.push_str(&body);
    }
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

fn status(state: &State) -> String {
    let agents = state.registry.agents();
    let mut out = format!(
        "uptun public-server {}\nagents: {}\n",
        env!("CARGO_PKG_VERSION"),
        agents.len()
    );
    for a in agents {
        out.push_str(&format!(
            "  {} from {}: channels {} ({} streams)\n",
            a.name,
            a.addr,
            a.channels.join(","),
            a.streams
        ));
    }
    out
}
