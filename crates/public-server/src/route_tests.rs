//! Routing tests: facts in, decisions out, no sockets.

use super::*;

fn channel(decision: Decision) -> String {
    match decision {
        Decision::Act(Routed::Channel(to)) => to.channel,
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
            method: "GET",
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
    let rules = vec![Rule::new(
        Matcher::Prefix(b"PING".to_vec()),
        Action::Channel("redis".into()),
    )];
    assert_eq!(decide(&rules, &raw(b"QUIT", true)), Decision::NoRoute);
    assert_eq!(channel(decide(&rules, &raw(b"PING", true))), "redis");
}

fn request<'a>(host: Option<&'a str>, path: &'a str) -> Facts<'a> {
    Facts {
        bytes: b"GET",
        http: Some(HttpFacts {
            method: "GET",
            path,
            host,
        }),
        complete: true,
        ..Facts::default()
    }
}

#[test]
fn hosts_match_by_name_or_wildcard_without_port_or_case() {
    let rules = vec![
        Rule::new(
            Matcher::Host("*.api.example.com".into()),
            Action::Channel("api".into()),
        ),
        Rule::new(
            Matcher::Host("example.com".into()),
            Action::Channel("site".into()),
        ),
        Rule::new(Matcher::Any, Action::Channel("web".into())),
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
        Rule::new(Matcher::Path("/api".into()), Action::Channel("api".into())),
        Rule::new(Matcher::Any, Action::Channel("web".into())),
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

fn regex(pattern: &str) -> Matcher {
    Matcher::Regex(Box::new(Pattern::new(pattern).unwrap()))
}

#[test]
fn a_regex_capture_names_the_channel_and_a_bad_capture_does_not_match() {
    let rules = vec![
        Rule::new(
            regex(r"[0-9a-f]{4}git-upload-pack /([^ \x00]+)\.git"),
            Action::Channel("git-$1".into()),
        ),
        Rule::new(Matcher::Any, Action::Channel("tcp".into())),
    ];
    let alpha = b"0032git-upload-pack /alpha.git\0host=h\0";
    assert_eq!(channel(decide(&rules, &raw(alpha, false))), "git-alpha");
    // A start of the request waits; a different start is decided at once.
    assert_eq!(
        decide(&rules, &raw(b"0032git-up", false)),
        Decision::ReadMore
    );
    assert_eq!(channel(decide(&rules, &raw(b"SSH-2.0", false))), "tcp");
    // `a/b` is no channel name: the rule is skipped, the next one decides.
    let odd = b"0032git-upload-pack /a/b.git\0";
    assert_eq!(channel(decide(&rules, &raw(odd, false))), "tcp");
}

#[test]
fn every_matcher_of_a_rule_must_match() {
    let both = Rule {
        matchers: vec![
            Matcher::Host("api.example.com".into()),
            Matcher::Path("/v2".into()),
        ],
        ..Rule::new(Matcher::Any, Action::Channel("v2".into()))
    };
    let rules = vec![both, Rule::new(Matcher::Any, Action::Channel("web".into()))];
    let route = |host, path| channel(decide(&rules, &request(Some(host), path)));
    assert_eq!(route("api.example.com", "/v2/x"), "v2");
    assert_eq!(route("api.example.com", "/v1"), "web");
    assert_eq!(route("example.com", "/v2"), "web");
}

#[test]
fn replies_and_closes_carry_their_bytes_and_a_reply_resumes_after_itself() {
    let rules = vec![
        Rule::new(
            Matcher::Prefix(b"QUIT".to_vec()),
            Action::Close(b"bye\n".to_vec()),
        ),
        Rule::new(
            Matcher::Prefix(b"HELLO".to_vec()),
            Action::Reply {
                bytes: b"who?\n".to_vec(),
                then: None,
            },
        ),
        Rule::new(
            Matcher::Prefix(b"HELLO me".to_vec()),
            Action::Channel("me".into()),
        ),
    ];
    assert_eq!(
        decide(&rules, &raw(b"QUIT\r\n", false)),
        Decision::Act(Routed::Close(Bytes::from_static(b"bye\n")))
    );
    let hello = raw(b"HELLO\n", false);
    assert_eq!(
        decide(&rules, &hello),
        Decision::Act(Routed::Reply {
            bytes: Bytes::from_static(b"who?\n"),
            then: None,
            resume: 2
        })
    );
    let answered = raw(b"HELLO me\n", false);
    assert_eq!(channel(decide_from(&rules, 2, &answered)), "me");
    assert_eq!(
        decide_from(&rules, 2, &raw(b"HELLO you", true)),
        Decision::NoRoute
    );
}

#[test]
fn a_rule_hands_its_timeouts_to_its_users_and_silence_waits_for_its_own() {
    let slow = RouteTimeouts {
        connect: Some(Duration::from_secs(30)),
        idle: Some(Duration::from_secs(60)),
        sniff: Some(Duration::from_secs(2)),
    };
    let rules = vec![
        Rule::new(Matcher::Http, Action::Channel("web".into())),
        Rule {
            timeouts: slow,
            ..Rule::new(Matcher::Silent, Action::Channel("smtp".into()))
        },
        Rule::new(Matcher::Any, Action::Channel("tcp".into())),
    ];
    let silent = Facts {
        silent: true,
        complete: true,
        ..Facts::default()
    };
    match decide(&rules, &silent) {
        Decision::Act(Routed::Channel(to)) => {
            assert_eq!(to.channel, "smtp");
            assert_eq!(to.connect_timeout, slow.connect);
            assert_eq!(to.idle_timeout, slow.idle);
        }
        other => panic!("{other:?}"),
    }
    let default = Duration::from_millis(500);
    assert_eq!(sniff_timeout(&rules, 0, default), Duration::from_secs(2));
    // Past the silent rule, the catch-all takes silence at the default.
    assert_eq!(sniff_timeout(&rules, 2, default), default);
    assert_eq!(
        sniff_timeout(&default_rules("w", "s", "t"), 0, default),
        default
    );
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
        Rule::new(
            Matcher::Host("a.example.test".into()),
            Action::Channel("a".into()),
        ),
        Rule::new(
            Matcher::Host("*.b.example.test".into()),
            Action::Channel("b".into()),
        ),
    ];
    rules.extend(default_rules("web", "ssh", "tcp"));
    rules
}

#[test]
fn hosts_match_the_tls_server_name_as_they_match_the_host_header() {
    let rules = sni_rules();
    let route = |sni: Option<&str>| channel(decide(&rules, &hello(TlsFacts::Hello { sni }, false)));
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
    let mut first = vec![Rule::new(
        Matcher::Prefix(b"\x16".to_vec()),
        Action::Channel("tls".into()),
    )];
    first.extend(sni_rules());
    assert_eq!(channel(decide(&first, &facts)), "tls");
}

#[test]
fn methods_match_exactly() {
    let rules = vec![
        Rule::new(
            Matcher::Method("POST".into()),
            Action::Channel("writes".into()),
        ),
        Rule::new(Matcher::Any, Action::Channel("web".into())),
    ];
    let with = |method| Facts {
        bytes: b"x",
        http: Some(HttpFacts {
            method,
            path: "/",
            host: None,
        }),
        complete: true,
        ..Facts::default()
    };
    assert_eq!(channel(decide(&rules, &with("POST"))), "writes");
    assert_eq!(channel(decide(&rules, &with("GET"))), "web");
    assert_eq!(
        channel(decide(&rules, &raw(b"POST / HTTP/1.1", true))),
        "web"
    );
}
