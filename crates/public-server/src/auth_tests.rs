//! Unit tests of `auth.rs`: parsing `TOKEN[:CHANNELS]`, matching, scoping.

use super::*;

fn agent(token: &str, channels: &[&str]) -> LinkRequest {
    LinkRequest {
        kind: PeerKind::Agent,
        host: "t".into(),
        token: Some(Secret::new(token)),
        version: 1,
        channels: channels.iter().map(|c| c.to_string()).collect(),
        window: 256 * 1024,
        name: None,
    }
}

fn client(token: Option<&str>) -> LinkRequest {
    LinkRequest {
        kind: PeerKind::Client,
        token: token.map(Secret::new),
        channels: Vec::new(),
        ..agent("", &[])
    }
}

fn grants(specs: &[&str]) -> Vec<Grant> {
    specs.iter().map(|s| Grant::parse(s).unwrap()).collect()
}

#[test]
fn a_token_without_a_list_covers_every_channel() {
    let g = Grant::parse("s3cret").unwrap();
    assert!(g.token.matches("s3cret"));
    assert_eq!(g.channels, Channels::All);
    let g = Grant::parse(" s3cret ").unwrap();
    assert!(g.token.matches("s3cret"), "trimmed like a bearer token");
}

#[test]
fn a_list_limits_to_names_and_prefixes() {
    let g = Grant::parse("s3cret:web, ssh,dev-*").unwrap();
    assert!(g.token.matches("s3cret"));
    for ok in ["web", "ssh", "dev-", "dev-db"] {
        assert!(g.channels.allows(ok), "{ok}");
    }
    for no in ["tcp", "webx", "we", "dev", "prod-db"] {
        assert!(!g.channels.allows(no), "{no}");
    }
    assert!(Grant::parse("t:*").unwrap().channels.allows("anything"));
}

#[test]
fn bad_lists_are_refused_without_repeating_the_token() {
    for spec in [
        "s3cret:",
        "s3cret:web,",
        "s3cret:a b",
        "s3cret:*web",
        "s3cret:w*b",
        ":web",
        "   ",
    ] {
        let err = Grant::parse(spec).unwrap_err();
        assert!(!err.contains("s3cret"), "{spec}: {err}");
    }
    let err = Grant::parse("s3cret:a b").unwrap_err();
    assert!(err.contains("\"a b\"") && err.contains("invalid"), "{err}");
    let long = format!("t:{}", "x".repeat(65));
    assert!(Grant::parse(&long).is_err());
}

#[test]
fn an_agent_may_serve_only_its_tokens_channels() {
    let tokens = Tokens {
        agents: grants(&["all", "webonly:web", "dev:dev-*"]),
        clients: Vec::new(),
    };
    assert_eq!(
        tokens.authorize(&agent("all", &["db", "web"])).unwrap(),
        Channels::All
    );
    assert!(tokens.authorize(&agent("webonly", &["web"])).is_ok());
    assert!(tokens.authorize(&agent("dev", &["dev-1", "dev-2"])).is_ok());

    let refusal = tokens
        .authorize(&agent("webonly", &["web", "db", "ssh"]))
        .unwrap_err();
    assert_eq!(refusal.status, 403);
    assert!(
        refusal
            .reason
            .contains("may not serve channel \"db\", \"ssh\""),
        "{}",
        refusal.reason
    );
    assert!(!refusal.reason.contains("webonly"), "{}", refusal.reason);

    let refusal = tokens.authorize(&agent("nope", &["web"])).unwrap_err();
    assert_eq!(refusal.status, 401);
    assert!(refusal.reason.contains("wrong token") && refusal.reason.contains("--agent-token"));
    // A server given no agent token made one up and printed it.
    assert!(
        refusal.reason.contains("printed at start"),
        "{}",
        refusal.reason
    );
}

#[test]
fn a_token_listed_twice_covers_both_lists() {
    let tokens = Tokens {
        agents: grants(&["t:web", "t:ssh", "u:web", "u"]),
        clients: Vec::new(),
    };
    assert!(tokens.authorize(&agent("t", &["web", "ssh"])).is_ok());
    assert!(tokens.authorize(&agent("t", &["tcp"])).is_err());
    assert_eq!(
        tokens.authorize(&agent("u", &["tcp"])).unwrap(),
        Channels::All
    );
}

#[test]
fn clients_get_their_scope_and_agent_tokens_are_not_client_tokens() {
    let tokens = Tokens {
        agents: grants(&["agent"]),
        clients: grants(&["c:ssh"]),
    };
    let scope = tokens.authorize(&client(Some("c"))).unwrap();
    assert!(scope.allows("ssh") && !scope.allows("web"));
    assert_eq!(tokens.authorize(&client(None)).unwrap_err().status, 401);
    assert!(may_not_open("web").contains("channel \"web\""));

    let none = Tokens {
        agents: grants(&["agent"]),
        clients: Vec::new(),
    };
    // Without client tokens, every client hears that, whatever it holds.
    for held in [Some("agent"), Some("guess"), None] {
        let refusal = none.authorize(&client(held)).unwrap_err();
        assert_eq!(refusal.status, 403);
        assert!(
            refusal.reason.contains("accepts no clients"),
            "{}",
            refusal.reason
        );
        assert!(
            !refusal.reason.contains("wrong token"),
            "{}",
            refusal.reason
        );
    }
}

#[test]
fn a_client_is_told_the_truth_about_its_token_and_never_the_token() {
    let tokens = Tokens {
        agents: grants(&["agent-s3cret"]),
        clients: grants(&["client-s3cret"]),
    };
    let as_agent = tokens.authorize(&client(Some("agent-s3cret"))).unwrap_err();
    assert_eq!(as_agent.status, 401);
    assert!(
        as_agent.reason.contains("this is an agent token")
            && as_agent.reason.contains("--client-token"),
        "{}",
        as_agent.reason
    );
    let wrong = tokens.authorize(&client(Some("guess-s3cret"))).unwrap_err();
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.reason.starts_with("wrong token: clients") && wrong.reason.contains("--client-token"),
        "{}",
        wrong.reason
    );
    for reason in [&as_agent.reason, &wrong.reason] {
        assert!(!reason.contains("s3cret"), "{reason}");
    }
}
