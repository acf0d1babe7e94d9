//! Built-in endpoints under the prefix (`/_uptun` by default): `health`
//! for load balancers, open to all, and `status` for people, only with the
//! admin token: it names agents, their addresses and channels.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use uptun_protocol::handshake::{status_text, RequestHead};

use crate::state::State;

pub(crate) async fn serve(mut socket: TcpStream, head: &RequestHead, state: &State) {
    let path = head.path.split('?').next().unwrap_or_default();
    let config = state.config();
    let prefix = config.endpoint_prefix.as_str();
    let name = path.strip_prefix(prefix).unwrap_or_default();
    let mut extra = "";
    let (status, body) = match name {
        "/health" => (200, "ok\n".to_string()),
        "/status" => match authorize_admin(head, state) {
            Ok(()) => (200, status(state)),
            Err((status, body)) => {
                if status == 401 {
                    extra = "WWW-Authenticate: Bearer realm=\"uptun status\"\r\n";
                }
                (status, body)
            }
        },
        _ => (
            404,
            format!("no such endpoint; try {prefix}/health or {prefix}/status\n"),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{extra}Connection: close\r\n\r\n",
        status_text(status),
        body.len()
    );
    if head.method != "HEAD" {
        response.push_str(&body);
    }
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// `status` is off without `--admin-token` (404, saying how to turn it on)
/// and wants that token as a bearer (401 otherwise). Neither answer names
/// the token or says how a wrong one differs.
fn authorize_admin(head: &RequestHead, state: &State) -> Result<(), (u16, String)> {
    let config = state.config();
    let Some(admin) = &config.admin_token else {
        return Err((
            404,
            "status is off: start the server with --admin-token TOKEN (or UPTUN_ADMIN_TOKEN) and send Authorization: Bearer TOKEN\n".into(),
        ));
    };
    match head.bearer_token() {
        Some(presented) if admin.matches(presented) => Ok(()),
        Some(_) => Err((401, "wrong admin token: send Authorization: Bearer with the server's --admin-token\n".into())),
        None => Err((401, "status needs the admin token: send Authorization: Bearer with the server's --admin-token\n".into())),
    }
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
