//! Every example a newcomer copies runs as printed: each `public-server` and
//! `local-agent` command line in the binaries' `--help`, in the README and
//! in docs/deploy.md (also inside ssh's `ProxyCommand`, and in the image
//! after `docker run … uptun`) parses with the binary's own flags and
//! passes the checks `main` makes before it starts; every URL in them has a
//! scheme this build can dial (`ServerUrl` refuses the others); and in
//! `--help`, every agent and client presents a token that one of the
//! help's server examples accepts.

use std::collections::HashMap;
use std::process::Command;

use clap::CommandFactory;
use uptun_e2e::procs::bin;

/// `local-agent`'s own flags: the binary's module, compiled in here too,
/// since the library exports no command line.
#[path = "../../crates/local-agent/src/cli/mod.rs"]
#[allow(dead_code)]
mod local_agent_cli;

/// One command line: environment assignments, program, arguments.
#[derive(Debug)]
struct Example {
    text: String,
    env: Vec<(String, String)>,
    program: String,
    args: Vec<String>,
}

/// What a parsed example asks of the server it talks to, or offers.
#[derive(Default)]
struct Tokens {
    servers: Vec<public_server::Tokens>,
    /// (token, is a client, the example) of every agent and client.
    presented: Vec<(String, bool, String)>,
}

fn help(program: &str, args: &[&str]) -> String {
    let out = Command::new(bin(program)).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of `text` that run one of our binaries, or `curl`, with `\`
/// continuations joined.
fn examples(text: &str) -> Vec<Example> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => logical.push(std::mem::take(&mut current) + line),
        }
    }
    logical.iter().filter_map(|l| example(l)).collect()
}

fn example(line: &str) -> Option<Example> {
    // A shell prompt goes; a program's own message (`public-server: …`) is
    // output shown beside a command, not one.
    let line = line.strip_prefix("$ ").unwrap_or(line);
    if line.starts_with("public-server:") || line.starts_with("local-agent:") {
        return None;
    }
    let starts = [
        "public-server",
        "local-agent",
        "UPTUN_",
        "ssh ",
        "ProxyCommand ",
        "curl ",
        "docker run ",
    ];
    if !starts.iter().any(|s| line.starts_with(s)) {
        return None;
    }
    let words = shlex::split(line).unwrap_or_else(|| panic!("unbalanced quotes: {line}"));
    if words[0] == "docker" {
        return docker_run(&words, line);
    }
    let inner = match words[0].as_str() {
        "ProxyCommand" => Some(words[1..].join(" ")),
        "ssh" => words
            .iter()
            .find_map(|w| w.strip_prefix("ProxyCommand=").map(str::to_string)),
        _ => None,
    };
    if let Some(inner) = inner {
        let mut found = example(&inner)?;
        found.text = line.to_string();
        return Some(found);
    }
    if words[0] == "ssh" {
        return None; // plain ssh to the public port: nothing of ours to parse
    }
    let split = words
        .iter()
        .position(|w| !w.contains('='))
        .unwrap_or(words.len());
    let env = words[..split]
        .iter()
        .map(|w| w.split_once('=').unwrap())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let program = words.get(split)?.clone();
    Some(Example {
        text: line.to_string(),
        env,
        program,
        args: words[split + 1..].to_vec(),
    })
}

/// `docker run [OPTIONS] uptun [COMMAND…]` runs COMMAND in the image, or
/// its CMD, `public-server` (deploy.rs holds the Dockerfile to that), with
/// the `-e NAME=VALUE` variables.
fn docker_run(words: &[String], line: &str) -> Option<Example> {
    // The image, not a container of the same name.
    let image = 1 + words
        .windows(2)
        .position(|w| w[1] == "uptun" && w[0] != "--name")?;
    let env = words[..image]
        .windows(2)
        .filter(|w| w[0] == "-e")
        .map(|w| {
            let (name, value) = w[1]
                .split_once('=')
                .unwrap_or_else(|| panic!("-e {}: write NAME=VALUE: {line}", w[1]));
            (name.to_string(), value.to_string())
        })
        .collect();
    let (program, args) = match words[image + 1..].split_first() {
        Some((program, args)) => (program.clone(), args.to_vec()),
        None => ("public-server".to_string(), Vec::new()),
    };
    Some(Example {
        text: line.to_string(),
        env,
        program,
        args,
    })
}

/// The flags an example's environment stands for: the flag whose `env` is
/// that variable, so a test need not change its own environment.
fn env_as_flags(command: &clap::Command, e: &Example) -> Vec<String> {
    let flags: HashMap<String, String> = command
        .get_arguments()
        .filter_map(|a| {
            Some((
                a.get_env()?.to_str()?.to_string(),
                a.get_long()?.to_string(),
            ))
        })
        .collect();
    e.env
        .iter()
        .map(|(var, value)| {
            let flag = flags
                .get(var)
                .unwrap_or_else(|| panic!("{var} is no flag's variable: {}", e.text));
            format!("--{flag}={value}")
        })
        .collect()
}

/// Parses and checks one example as its `main` would; records its tokens.
fn check(e: &Example, tokens: &mut Tokens) {
    for url in urls(&e.text) {
        url.parse::<local_agent::ServerUrl>()
            .unwrap_or_else(|err| panic!("{}: {err}", e.text));
    }
    match e.program.as_str() {
        "public-server" => {
            let mut args = vec!["public-server".to_string()];
            args.extend(env_as_flags(&public_server::Cli::command(), e));
            args.extend(e.args.iter().cloned());
            // A config file named in an example is looked for from the
            // repository's root, where the examples run from.
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            for at in 1..args.len() {
                if args[at - 1] == "--config" && !args[at].starts_with('/') {
                    args[at] = format!("{root}/{}", args[at]);
                }
            }
            let settings = public_server::Settings::try_parse_from(&args)
                .unwrap_or_else(|err| panic!("{}:\n{err}", e.text));
            let resolved = match settings.config_path() {
                // A file the README only names to show an error message.
                Some(path) if !path.exists() => return,
                _ => settings
                    .resolve()
                    .unwrap_or_else(|err| panic!("{}:\n{err}", e.text)),
            };
            let listen = resolved.listen;
            assert!(
                listen.parse::<std::net::SocketAddr>().is_ok(),
                "{listen}: {}",
                e.text
            );
            tokens.servers.push(resolved.config.tokens);
        }
        "local-agent" => {
            assert!(e.env.is_empty(), "{}", e.text);
            let args = std::iter::once("local-agent").chain(e.args.iter().map(String::as_str));
            let cli = local_agent_cli::Cli::try_parse_checked(args)
                .unwrap_or_else(|err| panic!("{}:\n{err}", e.text));
            let (server, token) = cli
                .common
                .server_and_token()
                .unwrap_or_else(|err| panic!("{}: {err}", e.text));
            cli.common
                .proxy_for(&server)
                .unwrap_or_else(|err| panic!("{}: {err}", e.text));
            if cli.command.is_none() {
                cli.check_agent()
                    .unwrap_or_else(|err| panic!("{}: {err}", e.text));
            }
            let client = cli.command.is_some();
            tokens
                .presented
                .push((token.expose().to_string(), client, e.text.clone()));
        }
        "curl" => {}
        other => panic!(
            "an example runs {other}, which this test does not know: {}",
            e.text
        ),
    }
}

/// Every `scheme://…` in `text`, from its scheme to the next space or quote.
fn urls(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .filter_map(|word| {
            let at = word.find("://")?;
            let start = word[..at]
                .rfind(|c: char| !c.is_ascii_alphanumeric())
                .map_or(0, |i| i + 1);
            Some(&word[start..])
        })
        .collect()
}

#[test]
fn every_command_line_in_help_parses_and_its_tokens_fit_its_servers() {
    let mut tokens = Tokens::default();
    for (program, args, at_least) in [
        ("public-server", &["--help"][..], 7),
        ("local-agent", &["--help"], 5),
        ("local-agent", &["forward", "--help"], 1),
        ("local-agent", &["connect", "--help"], 1),
        ("local-agent", &["attach", "--help"], 2),
    ] {
        let text = help(program, args);
        let examples = examples(&text);
        assert!(
            examples.len() >= at_least,
            "{program} {args:?}: found only {examples:#?} in\n{text}"
        );
        for e in &examples {
            check(e, &mut tokens);
        }
    }
    for (token, client, text) in &tokens.presented {
        let accepted = tokens.servers.iter().any(|s| {
            let grants = if *client { &s.clients } else { &s.agents };
            grants.iter().any(|g| g.token.matches(token))
        });
        let kind = if *client {
            "--client-token"
        } else {
            "--agent-token"
        };
        assert!(accepted, "no server example has {kind} {token}: {text}");
    }
}

#[test]
fn every_command_line_in_the_readme_parses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    // Only code blocks: prose may quote a flag without being a command.
    let code: String = readme
        .split("```")
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join("\n");
    let examples = examples(&code);
    let count = |p: &str| examples.iter().filter(|e| e.program == p).count();
    assert!(
        count("public-server") >= 3 && count("local-agent") >= 5,
        "{examples:#?}"
    );
    let mut tokens = Tokens::default();
    for e in &examples {
        check(e, &mut tokens);
    }
}

#[test]
fn the_extractor_finds_what_a_person_would_copy() {
    let found = examples(
        "  UPTUN_AGENT_TOKEN='a;b:web' public-server \\\n      --listen 127.0.0.1:0\n\
         ssh -o ProxyCommand='local-agent connect --token t ssh' me@host\n\
         ssh -p 443 me@tunnel.example.com\n\
         prose that mentions local-agent --help\n\
         docker run -d --name uptun -e UPTUN_AGENT_TOKEN=t uptun\n\
         docker run --network host uptun local-agent --token t\n",
    );
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_eq!(
        found[0].env,
        [("UPTUN_AGENT_TOKEN".into(), "a;b:web".into())]
    );
    assert_eq!(found[0].args, ["--listen", "127.0.0.1:0"]);
    assert_eq!(found[1].program, "local-agent");
    assert_eq!(found[1].args, ["connect", "--token", "t", "ssh"]);
    assert_eq!(
        urls("UPTUN_SERVER=https://a:1 x --server='wss://b' curl http://c/d"),
        ["https://a:1", "wss://b", "http://c/d"]
    );
    assert_eq!(found[2].program, "public-server");
    assert_eq!(found[2].env, [("UPTUN_AGENT_TOKEN".into(), "t".into())]);
    assert!(found[2].args.is_empty());
    assert_eq!(found[3].program, "local-agent");
    assert_eq!(found[3].args, ["--token", "t"]);
}

/// Whether this build's agents and clients dial `https://`.
fn dials_https() -> bool {
    let args = ["local-agent", "--server", "https://tunnel.example.com"];
    local_agent_cli::Cli::try_parse_checked(args).is_ok()
}

#[test]
fn every_command_line_in_the_deploy_guide_parses() {
    let guide =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/deploy.md")).unwrap();
    let code: String = guide.split("```").skip(1).step_by(2).collect();
    let examples = examples(&code);
    let count = |p: &str| examples.iter().filter(|e| e.program == p).count();
    let docker = examples
        .iter()
        .filter(|e| e.text.starts_with("docker"))
        .count();
    assert!(
        count("public-server") >= 2 && count("local-agent") >= 5 && docker >= 3,
        "{examples:#?}"
    );
    // The guide is written for agents behind a platform's TLS. A build
    // that cannot dial https:// yet checks each line with http://, so
    // every flag is still parsed as printed.
    let https = dials_https();
    let mut tokens = Tokens::default();
    for mut e in examples {
        if !https {
            e.text = e.text.replace("https://", "http://");
            for arg in &mut e.args {
                *arg = arg.replace("https://", "http://");
            }
        }
        check(&e, &mut tokens);
    }
}
