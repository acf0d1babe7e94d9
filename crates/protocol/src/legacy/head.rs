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

const AGENT_ROLE: &str = "tunnel/server";
const CLIENT_ROLE: &str = "tunnel/client";

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
    role_and_rest(value).is_some()
}

/// The role word and what follows it. The role is the first word, alone:
/// rhost writes `tunnel/server KEY TOKEN` with empty secrets as
/// `tunnel/server  ` (its default key for `/` was empty), which arrives
/// trimmed to the bare role.
fn role_and_rest(ua: &str) -> Option<(&'static str, &str)> {
    let ua = ua.trim();
    let (word, rest) = ua.split_once(' ').unwrap_or((ua, ""));
    [AGENT_ROLE, CLIENT_ROLE]
        .into_iter()
        .find(|role| word.eq_ignore_ascii_case(role))
        .map(|role| (role, rest))
}

fn legacy_user_agent(head: &RequestHead) -> Option<(&'static str, &str)> {
    role_and_rest(head.header("user-agent")?)
}

impl LegacyRequest {
    /// Reads a head that [`is_legacy`] recognised. The error is a reason
    /// for the log; it never holds what the peer presented.
    pub fn from_head(head: &RequestHead) -> Result<LegacyRequest, String> {
        let (role, rest) = legacy_user_agent(head).ok_or("not a legacy User-Agent")?;
        // Single spaces separate the words, and an empty secret is an
        // empty word (the key check then refuses it), not a missing one.
        let words: Vec<&str> = match rest.is_empty() {
            true => Vec::new(),
            false => rest.split(' ').collect(),
        };
        let word = |i: usize| words.get(i).copied().unwrap_or_default();
        let peer = match role {
            AGENT_ROLE if words.len() <= 2 => LegacyPeer::Agent {
                key: decode(word(0), "key")?,
                token: decode(word(1), "token")?,
            },
            AGENT_ROLE => {
                return Err(
                    "a legacy agent's User-Agent must be \"tunnel/server KEY TOKEN\"".into(),
                )
            }
            _ if words.len() <= 1 => LegacyPeer::Client {
                token: decode(word(0), "token")?,
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
    fn rhosts_empty_secrets_are_read_as_empty_not_as_a_user() {
        let bare = head("HEAD", "tunnel/server  ");
        assert!(
            is_legacy(&bare),
            "the trimmed default must not become a web user"
        );
        let req = LegacyRequest::from_head(&bare).unwrap();
        let empty = LegacyPeer::Agent {
            key: "".into(),
            token: "".into(),
        };
        assert_eq!(req.peer, empty);
        let req = LegacyRequest::from_head(&head("HEAD", "tunnel/server  tok")).unwrap();
        assert!(
            matches!(req.peer, LegacyPeer::Agent { key, token } if key.is_empty() && token.expose() == "tok")
        );
        let req = LegacyRequest::from_head(&head("HEAD", "tunnel/client")).unwrap();
        assert_eq!(req.peer, LegacyPeer::Client { token: "".into() });
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
            "tunnel/server onlykey x y",
            "tunnel/server a b c",
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
