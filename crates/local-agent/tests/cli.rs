//! The command line as a person meets it: help with examples on every
//! command, and clear errors for missing or malformed flags.

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_local-agent"))
        .args(args)
        .env_remove("UPTUN_SERVER")
        .env_remove("UPTUN_TOKEN")
        .env_remove("UPTUN_CA")
        .env_remove("UPTUN_INSECURE")
        .output()
        .unwrap()
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        &["--help"][..],
        &["forward", "--help"],
        &["connect", "--help"],
    ] {
        let out = agent(cmd);
        assert!(out.status.success(), "{cmd:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example"),
            "{cmd:?} help lacks an example:\n{help}"
        );
        assert!(
            help.contains("--server") && help.contains("--token"),
            "{help}"
        );
    }
}

#[test]
fn version_is_printed_by_every_command() {
    for cmd in [
        &["--version"][..],
        &["forward", "--version"],
        &["connect", "--version"],
        &["-V"],
    ] {
        let out = agent(cmd);
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("local-agent {}", env!("CARGO_PKG_VERSION")),
            "{cmd:?}"
        );
    }
}

#[test]
fn an_agent_flag_before_a_client_command_is_an_error_that_says_what_to_do() {
    let base = ["--server", "http://127.0.0.1:1", "--token", "t"];
    for client in [&["forward", "2222=ssh"][..], &["connect", "ssh"]] {
        let args = [&["--channel", "web=127.0.0.1:3000"][..], &base, client].concat();
        let out = agent(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("--channel configures the agent")
                && err.contains(&format!("`{}` is a client", client[0]))
                && err.contains("leave --channel out"),
            "{err}"
        );
        // Nothing was dialed: the mistake is reported, not a refused link.
        assert!(!err.contains("could not reach"), "{err}");
    }
    // The same channels in the environment are ignored by clients, so one
    // environment can serve an agent and its clients.
    let out = Command::new(env!("CARGO_BIN_EXE_local-agent"))
        .args([&base[..], &["connect", "ssh"]].concat())
        .env("UPTUN_CHANNELS", "web=127.0.0.1:3000")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not reach the server"), "{err}");
}

#[test]
fn missing_and_malformed_flags_say_what_to_do() {
    let out = agent(&["--token", "t", "--channel", "web=127.0.0.1:80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server is required"));

    let out = agent(&["--server", "http://127.0.0.1:1", "--token", "t"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no --channel given"));

    let out = agent(&[
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
        "--channel",
        "web",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=TARGET"));

    let out = agent(&[
        "--server",
        "ftp://x",
        "--token",
        "t",
        "--channel",
        "web=a:1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use http://, https://"));

    // A --ca file that cannot be read is said before any dial.
    let out = agent(&[
        "--server",
        "https://x",
        "--token",
        "t",
        "--channel",
        "web=a:1",
        "--ca",
        "/nonexistent/ca.pem",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--ca /nonexistent/ca.pem: cannot read"),
        "{err}"
    );
}

#[test]
fn out_of_range_link_flags_exit_2_on_every_command() {
    for cmd in [&[][..], &["forward", "8080=web"], &["connect", "ssh"]] {
        for (flag, value, needle) in [
            ("--ping-interval", "0", "use 100ms to 50s"),
            ("--ping-interval", "1m", "use 100ms to 50s"),
            ("--ping-misses", "1", "2..=10"),
            ("--window", "0", "16384..="),
        ] {
            let mut args = cmd.to_vec();
            args.extend(["--server", "http://127.0.0.1:1", "--token", "t"]);
            args.extend(["--channel", "web=127.0.0.1:1", flag, value]);
            if !cmd.is_empty() {
                // --channel belongs to the agent, not to its subcommands.
                args.retain(|a| *a != "--channel" && *a != "web=127.0.0.1:1");
            }
            let out = agent(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(flag) && err.contains(needle),
                "{args:?}: {err}"
            );
        }
    }
    let out = agent(&[
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
        "--channel",
        "web=127.0.0.1:1",
        "--target-timeout",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use 100ms to 600s"));
}

#[test]
fn proxy_protocol_flags_are_checked_before_dialing() {
    let base = ["--server", "http://127.0.0.1:1", "--token", "t"];
    let channel = ["--channel", "web=127.0.0.1:1"];

    let out = agent(&[&base[..], &channel, &["--proxy-protocol", "web=v3"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--proxy-protocol") && err.contains("write v1 or v2"),
        "{err}"
    );

    let out = agent(&[&base[..], &channel, &["--proxy-protocol", "web"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CHANNEL=VERSION"), "{err}");

    // A channel the agent does not serve: exit 2 at once, naming the fix.
    let out = Command::new(env!("CARGO_BIN_EXE_local-agent"))
        .args([&base[..], &channel].concat())
        .env("UPTUN_PROXY_PROTOCOL", "web=v1,ssh=v2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("serves no channel \"ssh\"") && err.contains("--channel ssh=HOST:PORT"),
        "{err}"
    );
}

#[test]
fn a_transport_that_contradicts_the_url_is_refused_before_dialing() {
    for cmd in [
        &["--channel", "web=127.0.0.1:1"][..],
        &["connect", "ssh"],
        &["forward", "2222=ssh"],
    ] {
        let base = [
            "--server",
            "ws://127.0.0.1:1",
            "--token",
            "t",
            "--transport",
            "tcp",
        ];
        let out = agent(&[&base[..], cmd].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("--transport tcp contradicts"), "{err}");
        assert!(!err.contains("could not reach"), "{err}");
    }
    let out = agent(&[
        "--server",
        "http://127.0.0.1:1",
        "--token",
        "t",
        "--transport",
        "udp",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("auto") && err.contains("websocket"), "{err}");
}
