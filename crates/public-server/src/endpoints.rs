//! Built-in endpoints under the prefix (`/_uptun` by default): `health`
//! for load balancers, open to all; `status` (JSON, or a dashboard page for
//! a browser) and `metrics` (OpenMetrics text for Prometheus), only with the
//! admin token, since they name agents, their addresses and channels.

use base64::Engine;
use tokio::io::AsyncWriteExt;
use uptun_protocol::handshake::{status_text, RequestHead};

use crate::exposition::{metrics_text, CONTENT_TYPE as METRICS_TYPE};
use crate::socket::Socket;
use crate::state::State;
use crate::status::status;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// The dashboard: one page with its script and style inline, no assets.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Where the dashboard's first data goes; the page fetches the rest.
const DASHBOARD_SLOT: &str = "\"__UPTUN_STATUS__\"";

/// An answer: status, content type, extra header lines (each ending in
/// CRLF) and body.
struct Answer {
    status: u16,
    content_type: &'static str,
    extra: &'static str,
    body: String,
}

impl Answer {
    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            extra: "",
            body,
        }
    }
}

pub(crate) async fn serve(mut socket: Socket, head: &RequestHead, state: &State) {
    let path = head.path.split('?').next().unwrap_or_default();
    let config = state.config();
    let prefix = config.endpoint_prefix.as_str();
    let name = path.strip_prefix(prefix).unwrap_or_default();
    let answer = match name {
        "/health" => Answer::text(200, "ok\n".into()),
        "/status" | "/metrics" => match authorize_admin(head, state) {
            Ok(()) if name == "/metrics" => Answer {
                status: 200,
                content_type: METRICS_TYPE,
                extra: "",
                body: metrics_text(state),
            },
            Ok(()) => status_answer(head, state),
            Err(refused) => refused,
        },
        _ => Answer::text(
            404,
            format!("no such endpoint; try {prefix}/health, {prefix}/status or {prefix}/metrics\n"),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}Connection: close\r\n\r\n",
        answer.status,
        status_text(answer.status),
        answer.content_type,
        answer.body.len(),
        answer.extra,
    );
    if head.method != "HEAD" {
        response.push_str(&answer.body);
    }
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// `status` as JSON, or as the dashboard for a browser (one that accepts
/// `text/html`). The page carries the document it was served with, so it
/// shows data before its first refresh.
fn status_answer(head: &RequestHead, state: &State) -> Answer {
    let json = serde_json::to_string(&status(state)).expect("the status document serializes");
    let wants_html = head
        .header("accept")
        .is_some_and(|accept| accept.contains("text/html"));
    if !wants_html {
        return Answer {
            status: 200,
            content_type: JSON,
            extra: "Vary: Accept\r\n",
            body: json,
        };
    }
    // `<` only occurs inside JSON strings, where `\u003c` means the same:
    // so no name an agent chose can close the script element it sits in.
    let embedded = json.replace('<', "\\u003c");
    Answer {
        status: 200,
        content_type: HTML,
        extra: "Vary: Accept\r\nContent-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\n",
        body: DASHBOARD.replacen(DASHBOARD_SLOT, &embedded, 1),
    }
}

/// `status` and `metrics` are off without `--admin-token` (404, saying how
/// to turn them on) and want that token, as a bearer or as the password of
/// HTTP Basic auth (401 otherwise, with a challenge a browser answers with
/// its login prompt). No answer names the token.
fn authorize_admin(head: &RequestHead, state: &State) -> Result<(), Answer> {
    let config = state.config();
    let Some(admin) = &config.admin_token else {
        return Err(Answer::text(
            404,
            "status and metrics are off: start the server with --admin-token TOKEN (or UPTUN_ADMIN_TOKEN) and send Authorization: Bearer TOKEN\n".into(),
        ));
    };
    let why = match presented_token(head) {
        Some(presented) if admin.matches(&presented) => return Ok(()),
        Some(_) => "wrong admin token: send the server's --admin-token as Authorization: Bearer, or as the password of Basic auth\n",
        None => "status needs the admin token: send Authorization: Bearer with the server's --admin-token, or log in with it as the password (any user name)\n",
    };
    Err(Answer {
        status: 401,
        content_type: TEXT,
        // Basic first: browsers prompt for it and skip schemes they lack.
        extra: "WWW-Authenticate: Basic realm=\"uptun admin\", charset=\"UTF-8\"\r\nWWW-Authenticate: Bearer realm=\"uptun admin\"\r\n",
        body: why.into(),
    })
}

/// The token in `Authorization`: a bearer, or the password of Basic auth
/// (`user:password` in base64; the user name is ignored).
fn presented_token(head: &RequestHead) -> Option<String> {
    if let Some(token) = head.bearer_token() {
        return Some(token.to_string());
    }
    let (scheme, encoded) = head.header("authorization")?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (_user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uptun_protocol::handshake::parse_request_head;

    fn head(authorization: &str) -> RequestHead {
        let raw = format!("GET /_uptun/status HTTP/1.1\r\nAuthorization: {authorization}\r\n\r\n");
        parse_request_head(raw.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn the_token_comes_as_a_bearer_or_as_a_basic_password() {
        let basic = |creds: &str| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(creds);
            presented_token(&head(&format!("Basic {encoded}")))
        };
        assert_eq!(presented_token(&head("Bearer t0k")).as_deref(), Some("t0k"));
        assert_eq!(basic("anyone:t0k").as_deref(), Some("t0k"));
        // A colon in the password belongs to it; only the first one splits.
        assert_eq!(basic(":t0k:more").as_deref(), Some("t0k:more"));
        assert_eq!(basic("no-colon"), None);
        assert_eq!(presented_token(&head("Basic !!not-base64!!")), None);
        assert_eq!(presented_token(&head("Digest t0k")), None);
    }

    #[test]
    fn the_dashboard_has_one_slot_for_its_data() {
        assert_eq!(DASHBOARD.matches(DASHBOARD_SLOT).count(), 1);
        assert!(!DASHBOARD.contains("http://") && !DASHBOARD.contains("https://"));
    }
}
