//! Routing: what classification saw (the facts) and the ordered rules in,
//! what to do with a user out. Pure: no sockets and no clocks, so every rule
//! is tested by feeding it facts. First match wins; a rule that could still
//! match once more bytes come makes the answer "read more", so a slow start
//! is never decided on a prefix of itself.

use std::time::Duration;

use bytes::Bytes;
use uptun_protocol::valid_channel_name;

use crate::pattern::{Pattern, PatternMatch};

/// What classification saw of a user connection so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The first bytes, as read so far.
    pub bytes: &'a [u8],
    /// The request head, if the bytes began an HTTP request and it is whole.
    pub http: Option<HttpFacts<'a>>,
    /// Nothing arrived within the sniff timeout.
    pub silent: bool,
    /// No more bytes will come for classification (the bounds are reached,
    /// or the user half-closed): rules must decide on what is here.
    pub complete: bool,
    /// The TLS ClientHello, if the bytes begin one (`None` for anything
    /// else, a hello that cannot be read included).
    pub tls: Option<TlsFacts<'a>>,
}

/// The parts of an HTTP request head that rules look at.
#[derive(Debug, Clone, Copy)]
pub struct HttpFacts<'a> {
    /// `GET`, `POST`, …
    pub method: &'a str,
    pub path: &'a str,
    pub host: Option<&'a str>,
}

/// What classification saw of a TLS ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFacts<'a> {
    /// The bytes begin a TLS handshake but the ClientHello is not whole yet.
    Partial,
    /// A whole ClientHello, and the server name it asks for (SNI), if any.
    Hello { sni: Option<&'a str> },
}

/// What a rule looks for. A rule with several matchers wants all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Any HTTP request (a whole head was read).
    Http,
    /// An HTTP request for this host (the `Host` header without its port),
    /// or a TLS ClientHello asking for it (SNI), compared
    /// case-insensitively; `*.example.com` matches any name that ends in
    /// `.example.com`.
    Host(String),
    /// An HTTP request with this method (`POST`), compared exactly.
    Method(String),
    /// An HTTP request whose path is this prefix, whole segments only:
    /// `/api` matches `/api`, `/api/v1` and `/api?x`, not `/apix`.
    Path(String),
    /// The first bytes start with these.
    Prefix(Vec<u8>),
    /// A regular expression over the first bytes, from the first byte.
    Regex(Box<Pattern>),
    /// Nothing arrived within the sniff timeout.
    Silent,
    /// Anything: the last resort.
    Any,
}

/// What to do with a user a rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Carry the user to an agent of this channel. The name may hold `$1`
    /// or `${name}`: the captures of the rule's regex.
    Channel(String),
    /// Send these bytes to the user, then carry it to the channel if one is
    /// given, else route it again on the bytes it sends next, with the
    /// rules after this one.
    Reply {
        bytes: Vec<u8>,
        then: Option<String>,
    },
    /// Send these bytes (maybe none) and close the connection.
    Close(Vec<u8>),
}

/// Timeouts a rule sets for the users it routes; `None` keeps the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// How long a user waits for an agent of its channel and its ACCEPT.
    pub connect: Option<Duration>,
    /// Reset the user after this long without a byte either way.
    pub idle: Option<Duration>,
    /// For a `silent` rule: how long nothing must arrive.
    pub sniff: Option<Duration>,
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// All must match; none matches anything.
    pub matchers: Vec<Matcher>,
    pub action: Action,
    pub timeouts: RouteTimeouts,
}

impl Rule {
    /// A rule with one matcher, one action and the server's timeouts.
    pub fn new(matcher: Matcher, action: Action) -> Rule {
        Rule {
            matchers: vec![matcher],
            action,
            timeouts: RouteTimeouts::default(),
        }
    }
}

/// Where a routed user goes, with the timeouts its rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub channel: String,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
}

impl Destination {
    /// A channel with the server's timeouts (a client's stream: clients
    /// name their channel, no rule routes them).
    pub fn plain(channel: &str) -> Destination {
        Destination {
            channel: channel.to_string(),
            connect_timeout: None,
            idle_timeout: None,
        }
    }
}

/// What routing asks the server to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// Carry the user to a channel.
    Channel(Destination),
    /// Send `bytes`, then carry the user to `then`, or, without one, route
    /// again from rule number `resume` on the bytes that come next.
    Reply {
        bytes: Bytes,
        then: Option<Destination>,
        resume: usize,
    },
    /// Send `bytes` and close.
    Close(Bytes),
}

/// The outcome of routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule matched.
    Act(Routed),
    /// An earlier rule could still match once more bytes come.
    ReadMore,
    /// No rule matches (a rule set without a catch-all).
    NoRoute,
}

/// Whether a rule matches: yes, no, or not yet.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Yes,
    No,
    NotYet,
}

impl Matcher {
    fn verdict(&self, facts: &Facts<'_>) -> Verdict {
        let known = |yes: bool| if yes { Verdict::Yes } else { Verdict::No };
        let more_may_come = !facts.complete && !facts.silent;
        match self {
            Matcher::Http => known(facts.http.is_some()),
            Matcher::Host(pattern) => host_verdict(pattern, facts),
            Matcher::Method(method) => known(facts.http.is_some_and(|h| h.method == method)),
            Matcher::Path(prefix) => {
                known(facts.http.is_some_and(|h| path_matches(prefix, h.path)))
            }
            Matcher::Silent => known(facts.silent),
            Matcher::Any => Verdict::Yes,
            Matcher::Prefix(prefix) => {
                if facts.bytes.starts_with(prefix) {
                    Verdict::Yes
                } else if more_may_come && prefix.starts_with(facts.bytes) {
                    Verdict::NotYet
                } else {
                    Verdict::No
                }
            }
            Matcher::Regex(pattern) if facts.silent => Verdict::No,
            Matcher::Regex(pattern) => match pattern.verdict(facts.bytes, !more_may_come) {
                PatternMatch::Yes => Verdict::Yes,
                PatternMatch::No => Verdict::No,
                PatternMatch::NotYet => Verdict::NotYet,
            },
        }
    }
}

impl Rule {
    /// Yes only if every matcher says yes; no if any says no.
    fn verdict(&self, facts: &Facts<'_>) -> Verdict {
        let mut verdict = Verdict::Yes;
        for matcher in &self.matchers {
            match matcher.verdict(facts) {
                Verdict::No => return Verdict::No,
                Verdict::NotYet => verdict = Verdict::NotYet,
                Verdict::Yes => {}
            }
        }
        verdict
    }

    /// The channel this rule names for these facts: its template with the
    /// regex's captures filled in. `None` when the result is not a channel
    /// name (a capture held something else): the rule then does not match.
    fn channel(&self, template: &str, facts: &Facts<'_>) -> Option<String> {
        if !template.contains('$') {
            return Some(template.to_string());
        }
        let pattern = self.matchers.iter().find_map(|m| match m {
            Matcher::Regex(pattern) => Some(pattern),
            _ => None,
        })?;
        pattern
            .expand(template, facts.bytes)
            .filter(|name| valid_channel_name(name))
    }

    fn destination(&self, channel: String) -> Destination {
        Destination {
            channel,
            connect_timeout: self.timeouts.connect,
            idle_timeout: self.timeouts.idle,
        }
    }

    /// What this rule does for these facts, or `None` if its channel
    /// template does not give a valid name.
    fn routed(&self, facts: &Facts<'_>, index: usize) -> Option<Routed> {
        Some(match &self.action {
            Action::Channel(template) => {
                Routed::Channel(self.destination(self.channel(template, facts)?))
            }
            Action::Reply { bytes, then } => Routed::Reply {
                bytes: Bytes::copy_from_slice(bytes),
                then: match then {
                    Some(template) => Some(self.destination(self.channel(template, facts)?)),
                    None => None,
                },
                resume: index + 1,
            },
            Action::Close(bytes) => Routed::Close(Bytes::copy_from_slice(bytes)),
        })
    }
}

fn host_verdict(pattern: &str, facts: &Facts<'_>) -> Verdict {
    let sni = match facts.tls {
        Some(TlsFacts::Hello { sni }) => sni,
        _ => None,
    };
    let host = facts.http.and_then(|h| h.host);
    if host.or(sni).is_some_and(|name| host_matches(pattern, name)) {
        Verdict::Yes
    } else if facts.tls == Some(TlsFacts::Partial) && !facts.complete {
        // The name is in the part of the hello still to come.
        Verdict::NotYet
    } else {
        Verdict::No
    }
}

fn host_matches(pattern: &str, host: &str) -> bool {
    // A Host header may carry a port (`example.com:8080`); an IPv6 literal
    // keeps its brackets and the colons inside them.
    let name = match host.rfind(']') {
        Some(end) => &host[..=end],
        None => host.split(':').next().unwrap_or(host),
    };
    let name = name.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(parent) => name.len().checked_sub(parent.len() + 1).is_some_and(|cut| {
            name.as_bytes()[cut] == b'.' && name[cut + 1..].eq_ignore_ascii_case(parent)
        }),
        None => name.eq_ignore_ascii_case(pattern),
    }
}

fn path_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', '?', '#']),
        None => false,
    }
}

/// Routes a user: the first rule that matches decides, unless a rule
/// before it could still match with more bytes.
#[cfg(test)]
pub fn decide(rules: &[Rule], facts: &Facts<'_>) -> Decision {
    decide_from(rules, 0, facts)
}

/// Routes a user with the rules from number `first` on (after a reply, the
/// rules past it): the first rule that matches decides, unless a rule
/// before it could still match with more bytes.
pub fn decide_from(rules: &[Rule], first: usize, facts: &Facts<'_>) -> Decision {
    for (index, rule) in rules.iter().enumerate().skip(first) {
        match rule.verdict(facts) {
            Verdict::Yes => match rule.routed(facts, index) {
                Some(routed) => return Decision::Act(routed),
                None => continue,
            },
            Verdict::NotYet => return Decision::ReadMore,
            Verdict::No => {}
        }
    }
    Decision::NoRoute
}

/// How long a connection must stay silent before the rules from `first`
/// on see silence: the sniff timeout of the first rule that could match a
/// silent connection, else `default`.
pub fn sniff_timeout(rules: &[Rule], first: usize, default: Duration) -> Duration {
    let silent = Facts {
        silent: true,
        complete: true,
        ..Facts::default()
    };
    rules
        .iter()
        .skip(first)
        .find(|rule| rule.verdict(&silent) == Verdict::Yes)
        .and_then(|rule| rule.timeouts.sniff)
        .unwrap_or(default)
}

/// The rules the server uses without a config file, from its flags: HTTP
/// requests to the http channel, `SSH-` to the ssh channel, silence and
/// everything else to the tcp channel.
pub fn default_rules(http: &str, ssh: &str, tcp: &str) -> Vec<Rule> {
    let to = |channel: &str| Action::Channel(channel.to_string());
    vec![
        Rule::new(Matcher::Http, to(http)),
        Rule::new(Matcher::Prefix(b"SSH-".to_vec()), to(ssh)),
        Rule::new(Matcher::Silent, to(tcp)),
        Rule::new(Matcher::Any, to(tcp)),
    ]
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
