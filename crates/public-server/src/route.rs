//! Routing: what classification saw (the facts) and the ordered rules in,
//! what to do with a user out. Pure: no sockets and no clocks, so every rule
//! is tested by feeding it facts. First match wins; a rule that could still
//! match once more bytes come makes the answer "read more", so a slow start
//! is never decided on a prefix of itself.

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

/// What a rule looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// Any HTTP request (a whole head was read).
    Http,
    /// An HTTP request for this host (the `Host` header without its port),
    /// or a TLS ClientHello asking for it (SNI), compared
    /// case-insensitively; `*.example.com` matches any name that ends in
    /// `.example.com`.
    Host(String),
    /// An HTTP request whose path is this prefix, whole segments only:
    /// `/api` matches `/api`, `/api/v1` and `/api?x`, not `/apix`.
    Path(String),
    /// The first bytes start with these.
    Prefix(Vec<u8>),
    /// Nothing arrived within the sniff timeout.
    Silent,
    /// Anything: the last resort.
    Any,
}

/// What to do with a user a rule matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Carry the user to an agent of this channel.
    Channel(String),
}

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matcher: Matcher,
    pub action: Action,
}

/// The outcome of routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A rule matched.
    Act(Action),
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
        match self {
            Matcher::Http => known(facts.http.is_some()),
            Matcher::Host(pattern) => host_verdict(pattern, facts),
            Matcher::Path(prefix) => {
                known(facts.http.is_some_and(|h| path_matches(prefix, h.path)))
            }
            Matcher::Silent => known(facts.silent),
            Matcher::Any => Verdict::Yes,
            Matcher::Prefix(prefix) => {
                if facts.bytes.starts_with(prefix) {
                    Verdict::Yes
                } else if !facts.complete && !facts.silent && prefix.starts_with(facts.bytes) {
                    Verdict::NotYet
                } else {
                    Verdict::No
                }
            }
        }
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
pub fn decide(rules: &[Rule], facts: &Facts<'_>) -> Decision {
    for rule in rules {
        match rule.matcher.verdict(facts) {
            Verdict::Yes => return Decision::Act(rule.action.clone()),
            Verdict::NotYet => return Decision::ReadMore,
            Verdict::No => {}
        }
    }
    Decision::NoRoute
}

/// The rules the server uses without a config file, from its flags: HTTP
/// requests to the http channel, `SSH-` to the ssh channel, silence and
/// everything else to the tcp channel.
pub fn default_rules(http: &str, ssh: &str, tcp: &str) -> Vec<Rule> {
    let to = |channel: &str| Action::Channel(channel.to_string());
    vec![
        Rule {
            matcher: Matcher::Http,
            action: to(http),
        },
        Rule {
            matcher: Matcher::Prefix(b"SSH-".to_vec()),
            action: to(ssh),
        },
        Rule {
            matcher: Matcher::Silent,
            action: to(tcp),
        },
        Rule {
            matcher: Matcher::Any,
            action: to(tcp),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(decision: Decision) -> String {
        match decision {
            Decision::Act(Action::Channel(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    fn raw(bytes: &[u8], complete: bool) -> Facts<'_> {
        Facts {
            bytes,
            complete,
            ..Facts::default()
        }
    }

    #[test]
    fn the_default_rules_route_as_the_flags_say() {
        let rules = default_rules("web", "ssh", "tcp");
        let http = Facts {
            bytes: b"GET / HTTP/1.1\r\n\r\n",
            http: Some(HttpFacts {
                path: "/",
                host: None,
            }),
            ..Facts::default()
        };
        assert_eq!(channel(decide(&rules, &http)), "web");
        assert_eq!(channel(decide(&rules, &raw(b"SSH-2.0-x", false))), "ssh");
        assert_eq!(channel(decide(&rules, &raw(b"\x16\x03\x01", false))), "tcp");
        let silent = Facts {
            silent: true,
            ..Facts::default()
        };
        assert_eq!(channel(decide(&rules, &silent)), "tcp");
    }

    #[test]
    fn a_prefix_that_may_still_match_reads_more_until_the_bytes_are_complete() {
        let rules = default_rules("web", "ssh", "tcp");
        assert_eq!(decide(&rules, &raw(b"SS", false)), Decision::ReadMore);
        assert_eq!(channel(decide(&rules, &raw(b"SS", true))), "tcp");
        assert_eq!(channel(decide(&rules, &raw(b"SX", false))), "tcp");
    }

    #[test]
    fn without_a_catch_all_nothing_routes() {
        let rules = vec![Rule {
            matcher: Matcher::Prefix(b"PING".to_vec()),
            action: Action::Channel("redis".into()),
        }];
        assert_eq!(decide(&rules, &raw(b"QUIT", true)), Decision::NoRoute);
        assert_eq!(channel(decide(&rules, &raw(b"PING", true))), "redis");
    }

    fn request<'a>(host: Option<&'a str>, path: &'a str) -> Facts<'a> {
        Facts {
            bytes: b"GET",
            http: Some(HttpFacts { path, host }),
            complete: true,
            ..Facts::default()
        }
    }

    #[test]
    fn hosts_match_by_name_or_wildcard_without_port_or_case() {
        let rules = vec![
            Rule {
                matcher: Matcher::Host("*.api.example.com".into()),
                action: Action::Channel("api".into()),
            },
            Rule {
                matcher: Matcher::Host("example.com".into()),
                action: Action::Channel("site".into()),
            },
            Rule {
                matcher: Matcher::Any,
                action: Action::Channel("web".into()),
            },
        ];
        let route = |host: &str| channel(decide(&rules, &request(Some(host), "/")));
        assert_eq!(route("v1.api.example.com"), "api");
        assert_eq!(route("a.b.API.Example.com:8443"), "api");
        assert_eq!(
            route("api.example.com"),
            "web",
            "the wildcard needs a label"
        );
        assert_eq!(route("xapi.example.com"), "web");
        assert_eq!(route("EXAMPLE.com:80"), "site");
        assert_eq!(route("example.com."), "site");
        assert_eq!(route("[::1]:8080"), "web");
        assert_eq!(channel(decide(&rules, &request(None, "/"))), "web");
    }

    #[test]
    fn paths_match_whole_segments() {
        let rules = vec![
            Rule {
                matcher: Matcher::Path("/api".into()),
                action: Action::Channel("api".into()),
            },
            Rule {
                matcher: Matcher::Any,
                action: Action::Channel("web".into()),
            },
        ];
        let route = |path: &str| channel(decide(&rules, &request(None, path)));
        for path in ["/api", "/api/v1/users", "/api?x=1"] {
            assert_eq!(route(path), "api", "{path}");
        }
        for path in ["/apix", "/", "/v1/api"] {
            assert_eq!(route(path), "web", "{path}");
        }
        // Raw bytes never match an HTTP matcher.
        assert_eq!(channel(decide(&rules, &raw(b"/api", true))), "web");
    }

    fn hello(tls: TlsFacts<'_>, complete: bool) -> Facts<'_> {
        Facts {
            bytes: b"\x16\x03\x01",
            tls: Some(tls),
            complete,
            ..Facts::default()
        }
    }

    /// The acceptance routes of `tests/tests/sni.rs`, before the defaults.
    fn sni_rules() -> Vec<Rule> {
        let mut rules = vec![
            Rule {
                matcher: Matcher::Host("a.example.test".into()),
                action: Action::Channel("a".into()),
            },
            Rule {
                matcher: Matcher::Host("*.b.example.test".into()),
                action: Action::Channel("b".into()),
            },
        ];
        rules.extend(default_rules("web", "ssh", "tcp"));
        rules
    }

    #[test]
    fn hosts_match_the_tls_server_name_as_they_match_the_host_header() {
        let rules = sni_rules();
        let route =
            |sni: Option<&str>| channel(decide(&rules, &hello(TlsFacts::Hello { sni }, false)));
        assert_eq!(route(Some("a.example.test")), "a");
        assert_eq!(route(Some("A.Example.TEST.")), "a");
        assert_eq!(route(Some("x.y.b.example.test")), "b");
        assert_eq!(
            route(Some("b.example.test")),
            "tcp",
            "the wildcard needs a label"
        );
        assert_eq!(route(Some("xa.example.test")), "tcp");
        assert_eq!(route(None), "tcp", "a hello without SNI");
        // The same rule still takes the HTTP Host header.
        assert_eq!(
            channel(decide(&rules, &request(Some("v.b.example.test:80"), "/"))),
            "b"
        );
    }

    #[test]
    fn a_host_rule_waits_for_a_whole_hello_but_not_past_the_bounds() {
        let rules = sni_rules();
        let partial = |complete| decide(&rules, &hello(TlsFacts::Partial, complete));
        assert_eq!(partial(false), Decision::ReadMore);
        assert_eq!(channel(partial(true)), "tcp");
        // Raw bytes that are not a hello are decided at once.
        assert_eq!(channel(decide(&rules, &raw(b"\x17\x03\x03", false))), "tcp");
        // Without a host rule a hello is not waited for: the defaults alone
        // route it as the first bytes arrive, as before SNI was read.
        let defaults = default_rules("web", "ssh", "tcp");
        let facts = hello(TlsFacts::Partial, false);
        assert_eq!(channel(decide(&defaults, &facts)), "tcp");
        // A rule that matches before the host rule decides without waiting.
        let mut first = vec![Rule {
            matcher: Matcher::Prefix(b"\x16".to_vec()),
            action: Action::Channel("tls".into()),
        }];
        first.extend(sni_rules());
        assert_eq!(channel(decide(&first, &facts)), "tls");
    }
}
