//! rhost's upgrade request: `HEAD <channel path> HTTP/1.1`, `Upgrade: tcp`,
//! and the peer's role and secrets in its User-Agent —
//! `tunnel/server <key> <token>` from a legacy agent, `tunnel/client
//! <token>` from a legacy client, each URI-encoded. The answer is a bare
//! 101; a refusal is a closed socket.

use percent_encoding::percent_decode_str;

use crate::handshake::RequestHead;
use crate::Secret;

/// The whole answer to an accepted legacy request.
pub const LEGACY_ACCEPT: &str =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n";

const AGENT_PREFIX: &str = "tunnel/server ";
const CLIENT_PREFIX: &str = "tunnel/client ";

/// Who sent a legacy request, with what it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyPeer {
    /// `etunnel server`: serves the channel; `token` is what its clients
    /// must present from now on.
    Agent { key: Secret, token: Secret },
    /// `etunnel client`: opens connections to the channel.
    Client { token: Secret },
}

/// A legacy link request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRequest {
    pub peer: LegacyPeer,
    /// The request path as sent: `/` or `/ssh`.
    pub path: String,
}

/// Whether this head is rhost's upgrade: a `HEAD` with `Upgrade: tcp` and a
/// `tunnel/server` or `tunnel/client` User-Agent.
pub fn is_legacy(head: &RequestHead) -> bool {
    head.method == "HEAD" && head.has_token("upgrade", "tcp") && legacy_user_agent(head).is_some()
}

/// A User-Agent value that carries legacy secrets, for `Debug` to hide.
pub(crate) fn hides_secrets(value: &str) -> bool {
    let value = value.trim_start();
    [AGENT_PREFIX, CLIENT_PREFIX]
        .iter()
        .any(|p| starts_with_ignore_case(value, p.trim_end()))
}

fn starts_with_ignore_case(value: &str, prefix: &str) -> bool {
    value
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

fn legacy_user_agent(head: &RequestHead) -> Option<&str> {
    let ua = head.header("user-agent")?.trim();
    [AGENT_PREFIX, CLIENT_PREFIX]
        .iter()
        .any(|p| starts_with_ignore_case(ua, p))
        .then_some(ua)
}

impl LegacyRequest {
    /// Reads a head that [`is_legacy`] recognised. The error is a reason
    /// for the log; it never holds what the peer presented.
    pub fn from_head(head: &RequestHead) -> Result<LegacyRequest, String> {
        let ua = legacy_user_agent(head).ok_or("not a legacy User-Agent")?;
        let (role, rest) = ua.split_at(AGENT_PREFIX.len());
        let words: Vec<&str> = rest.split_whitespace().collect();
        let peer = match (role.trim().to_ascii_lowercase().as_str(), &words[..]) {
            ("tunnel/server", [key, token]) => LegacyPeer::Agent {
                key: decode(key, "key")?,
                token: decode(token, "token")?,
            },
            ("tunnel/server", _) => {
                return Err(
                    "a legacy agent's User-Agent must be \"tunnel/server KEY TOKEN\"".into(),
                )
            }
            (_, [token]) => LegacyPeer::Client {
                token: decode(token, "token")?,
            },
            _ => return Err("a legacy client's User-Agent must be \"tunnel/client TOKEN\"".into()),
        };
        Ok(LegacyRequest {
            peer,
            path: head.path.clone(),
        })
    }
}

/// A URI-decoded secret; `what` names it in the error, never its value.
fn decode(raw: &str, what: &str) -> Result<Secret, String> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| Secret::new(s.into_owned()))
        .map_err(|_| format!("the legacy {what} is not URI-encoded UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_request_head;

    fn head(method: &str, ua: &str) -> RequestHead {
        let text = format!(
            "{method} /ssh HTTP/1.1\r\nHost: t\r\nOrigin: t\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nUser-Agent: {ua}\r\n\r\n"
        );
        parse_request_head(text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn agents_and_clients_are_read_with_their_secrets_decoded() {
        let req = LegacyRequest::from_head(&head("HEAD", "tunnel/server ad%20min t%2Fk")).unwrap();
        assert_eq!(req.path, "/ssh");
        assert_eq!(
            req.peer,
            LegacyPeer::Agent {
                key: "ad min".into(),
                token: "t/k".into()
            }
        );
        let req = LegacyRequest::from_head(&head("HEAD", "tunnel/client tok")).unwrap();
        assert_eq!(
            req.peer,
            LegacyPeer::Client {
                token: "tok".into()
            }
        );
    }

    #[test]
    fn only_a_head_with_the_upgrade_and_the_user_agent_is_legacy() {
        assert!(is_legacy(&head("HEAD", "tunnel/server k t")));
        assert!(is_legacy(&head("HEAD", "Tunnel/Client t")));
        assert!(!is_legacy(&head("GET", "tunnel/server k t")));
        assert!(!is_legacy(&head("HEAD", "uptun-agent/1.0")));
        assert!(!is_legacy(&head("HEAD", "tunnel/serverish k t")));
        let text = "HEAD / HTTP/1.1\r\nUser-Agent: tunnel/client t\r\n\r\n";
        let plain = parse_request_head(text.as_bytes()).unwrap().unwrap();
        assert!(!is_legacy(&plain), "curl -I with that User-Agent is a user");
    }

    #[test]
    fn malformed_requests_say_what_to_send_and_never_echo_a_secret() {
        for ua in [
            "tunnel/server onlykey",
            "tunnel/server a b c",
            "tunnel/client",
            "tunnel/client a b",
            "tunnel/client %FF%FE",
        ] {
            let err = LegacyRequest::from_head(&head("HEAD", ua)).unwrap_err();
            assert!(err.contains("legacy"), "{ua}: {err}");
            for secret in ["onlykey", "%FF"] {
                assert!(!err.contains(secret), "{err}");
            }
        }
    }

    #[test]
    fn debug_of_a_legacy_head_hides_the_user_agent() {
        let shown = format!(
            "{:?}",
            head("HEAD", "tunnel/server sekrit-key sekrit-token")
        );
        assert!(!shown.contains("sekrit"), "{shown}");
    }
}
