//! The flags as users write them: examples, mistakes, secrets.

use clap::Parser;

use crate::cli::help::EXAMPLES;
use crate::cli::*;

/// Each `local-agent …` command in the help parses as printed, and its
/// channels and PROXY settings agree.
#[test]
fn help_examples_parse_as_printed() {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in EXAMPLES.lines().map(str::trim) {
        if line.starts_with("local-agent") || !current.is_empty() {
            current.push_str(line.trim_end_matches('\\'));
            current.push(' ');
            if !line.ends_with('\\') {
                commands.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(commands.len() >= 4, "{commands:?}");
    assert!(commands
        .iter()
        .any(|c| c.contains("--proxy-protocol web=v2")));
    for command in commands {
        let cli = Cli::try_parse_checked(command.split_whitespace())
            .unwrap_or_else(|e| panic!("{command}: {e}"));
        if cli.command.is_none() {
            cli.check_agent()
                .unwrap_or_else(|e| panic!("{command}: {e}"));
        }
    }
}

fn parse(args: &[&str]) -> Result<Cli, String> {
    let base = [
        "local-agent",
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
    ];
    Cli::try_parse_checked(base.iter().chain(args)).map_err(|e| e.to_string())
}

#[test]
fn an_agent_flag_before_a_client_subcommand_is_refused_with_the_fix() {
    let err = parse(&["--channel", "web=127.0.0.1:3000", "forward", "2222=ssh"]).unwrap_err();
    assert!(
        err.contains("--channel configures the agent")
            && err.contains("`forward` is a client")
            && err.contains("leave --channel out"),
        "{err}"
    );
    let err = parse(&["--name", "x", "--links", "2", "connect", "ssh"]).unwrap_err();
    assert!(err.contains("--name, --links configure the agent"), "{err}");
    // Flags every command takes may come before the subcommand.
    let cli = parse(&["--window", "65536", "connect", "ssh"]).unwrap();
    assert_eq!(cli.common.link.window, 65536);
    // The agent itself still takes them, defaults do not count.
    let cli = parse(&["--channel", "web=127.0.0.1:3000", "--links", "2"]).unwrap();
    assert!(cli.command.is_none() && cli.check_agent().is_ok());
    let cli = parse(&["forward", "2222=ssh"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Forward { .. })));
}

#[test]
fn session_flags_parse_and_say_what_they_take() {
    let cli = parse(&["-c", "top=session:htop"]).unwrap();
    assert_eq!(cli.session_restart, local_agent::SessionRestart::OnExit);
    assert_eq!(cli.session_replay, 64 * 1024);
    let cli = parse(&["--session-restart", "never", "--session-replay", "1MiB"]).unwrap();
    assert_eq!(cli.session_restart, local_agent::SessionRestart::Never);
    assert_eq!(cli.session_replay, 1 << 20);
    assert_eq!(parse_replay("4096"), Ok(4096));
    assert_eq!(parse_replay("0"), Ok(0));
    for bad in ["17MiB", "-1", "64k", "KiB"] {
        let err = parse_replay(bad).unwrap_err();
        assert!(err.contains("as in 64KiB or 1MiB"), "{err}");
    }
    let err = parse(&["--session-restart", "always"]).unwrap_err();
    assert!(err.contains("use never or on-exit"), "{err}");
    let err = parse(&["-c", "top=session:"]).unwrap_err();
    assert!(err.contains("session:bash"), "{err}");
}

#[test]
fn an_agent_without_channels_or_with_a_stray_proxy_setting_is_told_the_fix() {
    let err = parse(&[]).unwrap().check_agent().unwrap_err();
    assert!(err.contains("no --channel given"), "{err}");
    let err = parse(&["-c", "web=127.0.0.1:1", "--proxy-protocol", "db=v1"])
        .unwrap()
        .check_agent()
        .unwrap_err();
    assert!(err.contains("add --channel db="), "{err}");
    let err = parse(&["-c", "web=127.0.0.1:1", "--idle-timeout", "web=1m"])
        .unwrap()
        .check_agent()
        .unwrap_err();
    assert!(err.contains("only pty: and session: channels"), "{err}");
    let err = parse(&["-c", "c=pty:sh", "--idle-timeout", "c=0s"]).unwrap_err();
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn debug_of_flags_and_configs_hides_the_token() {
    let cli = Cli::parse_from([
        "local-agent",
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "s3cret",
        "--channel",
        "web=127.0.0.1:1",
        "--proxy",
        "http://user:pr0xy-s3cret@proxy.example:3128",
    ]);
    let (server, token) = cli.common.server_and_token().unwrap();
    let proxy: local_agent::Proxy = "http://user:pr0xy-s3cret@proxy.example:3128"
        .parse()
        .unwrap();
    let mut agent = local_agent::AgentConfig::new(server.clone(), token.clone(), Vec::new());
    agent.proxy = Some(proxy.clone());
    let client = local_agent::ClientConfig {
        server,
        token,
        proxy: Some(proxy),
        transport: Default::default(),
        mux: Default::default(),
        grace: uptun_cli::DEFAULT_GRACE,
    };
    for shown in [
        format!("{cli:?}"),
        format!("{agent:?}"),
        format!("{client:#?}"),
    ] {
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
