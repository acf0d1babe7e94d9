//! Who may link, and to which channels: agent and client tokens, each either
//! unrestricted or limited to a list of channels. Flags fill [`Tokens`]
//! today; a config file can fill the same structure later.

use uptun_protocol::handshake::{LinkRequest, PeerKind, Refusal};
use uptun_protocol::{valid_channel_name, Secret};

/// The channels a token covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channels {
    /// Every channel: a token given without a list.
    All,
    /// Only these: exact names, or `prefix*` (`dev-*`), or `*`.
    Only(Vec<String>),
}

impl Channels {
    pub fn allows(&self, channel: &str) -> bool {
        match self {
            Channels::All => true,
            Channels::Only(patterns) => patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => p == channel,
            }),
        }
    }

    /// What either of two lists allows: a token listed twice covers both.
    fn union(self, other: &Channels) -> Channels {
        match (self, other) {
            (Channels::Only(mut mine), Channels::Only(theirs)) => {
                mine.extend(theirs.iter().cloned());
                Channels::Only(mine)
            }
            _ => Channels::All,
        }
    }

    /// Parses `web,ssh,dev-*`. Names follow `valid_channel_name`; a `*` may
    /// end a pattern. The error never repeats anything but the bad item.
    pub fn parse(list: &str) -> Result<Channels, String> {
        let items: Vec<String> = list.split(',').map(|c| c.trim().to_string()).collect();
        if let Some(bad) = items.iter().find(|p| !valid_pattern(p)) {
            return Err(format!(
                "channel {bad:?} in a token's list is invalid: use letters, digits, '-', '_' or '.' (at most 64), optionally ending in '*'"
            ));
        }
        Ok(Channels::Only(items))
    }
}

fn valid_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => valid_channel_name(prefix),
        None => valid_channel_name(pattern),
    }
}

/// One token and the channels it covers, written `TOKEN` or
/// `TOKEN:CHANNEL,CHANNEL…`. `Debug` shows the token as `***`.
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: Secret,
    pub channels: Channels,
}

impl Grant {
    /// A token good for every channel.
    pub fn any(token: impl Into<Secret>) -> Grant {
        Grant {
            token: token.into(),
            channels: Channels::All,
        }
    }

    /// Parses `TOKEN[:CHANNELS]`, split at the first `:` (so a token cannot
    /// hold one; generated, hex and base64 tokens never do). Errors name
    /// the mistake, never the token.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (token, channels) = match text.split_once(':') {
            None => (text, Channels::All),
            Some((token, list)) => (token, Channels::parse(list)?),
        };
        // Trimmed like the bearer token on the wire, or it could never match.
        let token = token.trim();
        if token.is_empty() {
            return Err("a token is empty: write TOKEN or TOKEN:CHANNEL,CHANNEL".into());
        }
        Ok(Grant {
            token: Secret::new(token),
            channels,
        })
    }
}

/// clap parser for `--agent-token` / `--client-token`. Hand-written because
/// clap's own "invalid value '…'" message would print the token.
#[derive(Debug, Clone, Copy)]
pub struct GrantParser;

impl clap::builder::TypedValueParser for GrantParser {
    type Value = Grant;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Grant, clap::Error> {
        let flag = arg.map_or("token".into(), |a| {
            let flag = a.get_id().as_str().replace('_', "-");
            match a.get_env() {
                Some(env) => format!("--{flag} ({})", env.to_string_lossy()),
                None => format!("--{flag}"),
            }
        });
        let fail = |why: String| {
            let kind = clap::error::ErrorKind::ValueValidation;
            clap::Error::raw(kind, format!("{flag}: {why}\n")).with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| fail("not UTF-8".into()))?;
        Grant::parse(text).map_err(fail)
    }
}

/// Every token the server accepts, by kind of peer.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// What agents may present.
    pub agents: Vec<Grant>,
    /// What clients (`forward`, `connect`) may present; none: clients are
    /// refused with 403.
    pub clients: Vec<Grant>,
}

impl Tokens {
    fn of(&self, kind: PeerKind) -> &[Grant] {
        match kind {
            PeerKind::Agent => &self.agents,
            PeerKind::Client => &self.clients,
        }
    }

    /// The channels `presented` covers for this kind of peer, or `None` if no
    /// token matches. Every token is compared (`Secret::matches`, constant
    /// time), with no early exit, so timing does not tell which one matched.
    pub(crate) fn scope(&self, kind: PeerKind, presented: &str) -> Option<Channels> {
        self.of(kind)
            .iter()
            .filter(|grant| grant.token.matches(presented))
            .fold(None, |acc: Option<Channels>, grant| match acc {
                None => Some(grant.channels.clone()),
                Some(acc) => Some(acc.union(&grant.channels)),
            })
    }

    /// Checks a link request's token and, for an agent, every channel it
    /// wants to serve. Ok: the channels the link may serve (agent) or open
    /// (client). Refusals name flags and channels, never a token.
    pub(crate) fn authorize(&self, req: &LinkRequest) -> Result<Channels, Refusal> {
        let (flag, env) = match req.kind {
            PeerKind::Agent => ("--agent-token", "UPTUN_AGENT_TOKEN"),
            PeerKind::Client => ("--client-token", "UPTUN_CLIENT_TOKEN"),
        };
        // Clients get no token by default: one that could serve a channel is
        // not thereby one that may open every channel.
        if self.of(req.kind).is_empty() {
            return Err(Refusal::new(
                403,
                format!("this server accepts no clients (forward, connect): it was started without {flag} ({env})"),
            ));
        }
        let Some(token) = &req.token else {
            return Err(Refusal::new(
                401,
                "missing token: pass --token or set UPTUN_TOKEN",
            ));
        };
        let Some(scope) = self.scope(req.kind, token.expose()) else {
            return Err(Refusal::new(401, self.wrong_token(req.kind, token)));
        };
        let denied: Vec<String> = req
            .channels
            .iter()
            .filter(|c| !scope.allows(c))
            .map(|c| format!("{c:?}"))
            .collect();
        if !denied.is_empty() {
            return Err(Refusal::new(
                403,
                format!(
                    "this token may not serve channel {}: the server limits it ({flag} TOKEN:CHANNEL,…)",
                    denied.join(", ")
                ),
            ));
        }
        Ok(scope)
    }

    /// Why a token matched nothing, true for this server: an agent's token
    /// may have been generated (none was given), and a client may hold an
    /// agent token, which does not open channels. Never names a token.
    fn wrong_token(&self, kind: PeerKind, presented: &Secret) -> String {
        match kind {
            PeerKind::Agent => "wrong token: agents present the server's --agent-token \
                 (UPTUN_AGENT_TOKEN), or, if it was started without one, the token it \
                 printed at start"
                .into(),
            PeerKind::Client if self.scope(PeerKind::Agent, presented.expose()).is_some() => {
                "this is an agent token, and it opens no channels: clients (forward, \
                 connect) present one of the server's --client-token (UPTUN_CLIENT_TOKEN)"
                    .into()
            }
            PeerKind::Client => "wrong token: clients (forward, connect) present one of \
                 the server's --client-token (UPTUN_CLIENT_TOKEN)"
                .into(),
        }
    }
}

/// The REFUSE reason for a client stream its token may not open.
pub(crate) fn may_not_open(channel: &str) -> String {
    format!(
        "this token may not open channel {channel:?}: the server limits it (--client-token TOKEN:CHANNEL,…)"
    )
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
