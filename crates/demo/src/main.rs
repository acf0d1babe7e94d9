//! `uptun-demo`: a working tunnel on one machine in one command. Starts a
//! public server, a sample web page and an echo service, and an agent that
//! serves them, then prints what to try.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use local_agent::{run_agent, AgentConfig, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const HELP: &str = "\
uptun-demo: a public server, an agent, a sample web page and an echo service
on this machine, all behind one port.

Usage: uptun-demo [--listen ADDR] [--check]

  --listen ADDR  public port [default: 127.0.0.1:8080, or a free port if taken]
  --check        fetch the sample page through the tunnel, print the result, exit";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some((listen, check)) = parse_args()? else {
        println!("{HELP}");
        return Ok(());
    };
    uptun_cli::init_logging(Default::default());
    let public = bind(listen).await?;
    let addr = public.local_addr()?;
    let token = public_server::generate_token();
    let shutdown = CancellationToken::new();

    let page = serve(sample_page).await?;
    let echo = serve(echo).await?;
    let mut channels = vec![
        ("web".to_string(), Target::from(page)),
        ("tcp".to_string(), Target::from(echo)),
    ];
    let sshd = TcpStream::connect("127.0.0.1:22").await.is_ok();
    if sshd {
        channels.push((
            "ssh".to_string(),
            Target::from(SocketAddr::from(([127, 0, 0, 1], 22))),
        ));
    }

    // Clients (connect, forward) get a token of their own: the server lets
    // none in without one. So does the status page, which is off without one.
    let client_token = public_server::generate_token();
    let admin_token = public_server::generate_token();
    let mut config = public_server::Config::new(token.clone());
    config.tokens.clients = vec![public_server::Grant::any(client_token.clone())];
    config.admin_token = Some(admin_token.clone().into());
    config.connect_timeout = Duration::from_secs(5);
    tokio::spawn(public_server::run(public, config, shutdown.clone()));
    let server_url: local_agent::ServerUrl = format!("http://{addr}")
        .parse()
        .map_err(anyhow::Error::msg)?;
    let mut agent = AgentConfig::new(server_url, token.clone(), channels);
    agent.name = Some("demo-agent".into());
    let agent_task = tokio::spawn(run_agent(agent, shutdown.clone()));

    let body = fetch_through_tunnel(addr).await?;
    if check {
        let result = report_check(addr, &admin_token, body.len()).await;
        shutdown.cancel();
        let _ = agent_task.await;
        return result;
    }
    let agent_bin = local_agent_binary()?;
    let lines = Lines {
        url: format!("http://{addr}"),
        agent_bin,
        page,
        tokens: [token, client_token, admin_token],
    };
    print_instructions(addr, &lines, sshd);
    tokio::signal::ctrl_c().await?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(3), agent_task).await;
    Ok(())
}

/// `--check`: the status page lists the agent; says so with the page's size.
async fn report_check(addr: SocketAddr, admin_token: &str, page_len: usize) -> anyhow::Result<()> {
    let bearer = format!("Authorization: Bearer {admin_token}\r\n");
    let status = get(addr, "/_uptun/status", &bearer).await?;
    anyhow::ensure!(
        status.contains("demo-agent"),
        "the status page does not list the agent: {status}"
    );
    println!(
        "ok: the sample page came through the tunnel at http://{addr}/ ({page_len} bytes); status lists the agent"
    );
    Ok(())
}

/// `--listen` and `--check`, or `None` for `--help`.
fn parse_args() -> anyhow::Result<Option<(Option<String>, bool)>> {
    let mut listen = None;
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = Some(args.next().context("--listen needs an address")?),
            "--check" => check = true,
            "-h" | "--help" => return Ok(None),
            other => anyhow::bail!("unknown argument {other:?}\n\n{HELP}"),
        }
    }
    Ok(Some((listen, check)))
}

/// The public port: `listen`, else 127.0.0.1:8080, else a free port.
async fn bind(listen: Option<String>) -> anyhow::Result<TcpListener> {
    Ok(match listen {
        Some(addr) => TcpListener::bind(&addr)
            .await
            .with_context(|| format!("could not listen on {addr}"))?,
        None => match TcpListener::bind("127.0.0.1:8080").await {
            Ok(l) => l,
            Err(_) => TcpListener::bind("127.0.0.1:0").await?,
        },
    })
}

/// Waits for the agent to register, then GETs the sample page via the public port.
async fn fetch_through_tunnel(addr: SocketAddr) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(body) = get(addr, "/", "").await {
            if body.contains("uptun") {
                return Ok(body);
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the sample page did not come through within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET with `headers` (each line ending in `\r\n`); the whole response of a 200.
async fn get(addr: SocketAddr, path: &str, headers: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: demo\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut raw)).await??;
    anyhow::ensure!(
        raw.starts_with("HTTP/1.1 200"),
        "not a 200: {}",
        raw.lines().next().unwrap_or_default()
    );
    Ok(raw)
}

/// What the printed lines need beyond the public address.
struct Lines {
    url: String,
    /// `local-agent`, by absolute path when it could be found.
    agent_bin: String,
    /// The sample page's own address: a second agent can serve it too.
    page: SocketAddr,
    /// Agent, client and admin token.
    tokens: [String; 3],
}

/// Every command printed runs as is, from any directory: pasted whole
/// (explanations are shell comments), with the built `local-agent` named by
/// its absolute path. `tests/tests/demo.rs` runs them.
fn print_instructions(addr: SocketAddr, lines: &Lines, sshd: bool) {
    let Lines {
        url,
        agent_bin: agent,
        page,
        tokens: [token, client_token, admin_token],
    } = lines;
    let (ip, port) = (addr.ip(), addr.port());
    println!(
        "\nuptun demo: one public port, {url}, in front of an agent serving web, tcp{}\n",
        if sshd { " and ssh" } else { "" }
    );
    println!("  open    {url}/     the sample page, through the tunnel");
    println!("  curl    curl -i {url}/hello");
    println!("  tcp     nc {ip} {port}    # type a line: the echo service sends it back");
    println!("          echo hello | {agent} connect --server {url} --token {client_token} tcp    # the same through a client link");
    println!("  status  curl -H 'Authorization: Bearer {admin_token}' {url}/_uptun/status");
    if sshd {
        println!("  ssh     ssh -p {port} $USER@{ip}    # routed by its SSH- banner");
        println!(
            "          ssh -o ProxyCommand='{agent} connect --server {url} --token {client_token} ssh' $USER@localhost"
        );
    } else {
        println!(
            "  ssh     (no sshd on 127.0.0.1:22; with one, the demo serves it on channel ssh)"
        );
    }
    println!(
        "\n  another agent: a second member of channel web, serving the same page; each new user"
    );
    println!("  goes to the member with the fewest open streams (see both in status):");
    println!(
        "          {agent} --server {url} --token {token} --channel web={page} --name second-agent"
    );
    println!("\nPress Ctrl-C to stop.");
}

/// The `local-agent` the printed lines run. `cargo run -p uptun-demo` builds
/// only the demo, so when cargo started it, the demo builds `local-agent`
/// beside itself first (a no-op when it is fresh). Started directly, it takes
/// the one beside it, or the one on PATH (`cargo install`).
fn local_agent_binary() -> anyhow::Result<String> {
    let beside = std::env::current_exe()?.with_file_name("local-agent");
    if let (Ok(cargo), Ok(dir)) = (std::env::var("CARGO"), std::env::var("CARGO_MANIFEST_DIR")) {
        eprintln!("demo: building local-agent for the lines below (cargo build -p local-agent)");
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--quiet", "-p", "local-agent"])
            .current_dir(dir);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .context("could not run cargo to build local-agent")?;
        anyhow::ensure!(
            status.success(),
            "cargo build -p local-agent failed (its output is above)"
        );
    }
    if beside.exists() {
        return Ok(beside.display().to_string());
    }
    eprintln!(
        "demo: no local-agent beside {}; the lines below expect one on PATH \
         (cargo install --path crates/local-agent)",
        beside.display()
    );
    Ok("local-agent".into())
}

async fn serve<F, Fut>(handler: F) -> anyhow::Result<SocketAddr>
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(handler(socket));
        }
    });
    Ok(addr)
}

/// A one-request HTTP server that answers every path with a small page.
async fn sample_page(mut socket: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let body = format!(
        "<!doctype html><title>uptun demo</title><h1>It works: this page came through the uptun tunnel</h1>\n<p>Your request: <code>{}</code></p>\n<p>It entered the public server's one port, crossed the agent's link as frames on channel <code>web</code>, and the agent fetched it from a local web server.</p>\n",
        request_line.replace('<', "&lt;")
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

async fn echo(socket: TcpStream) {
    let (mut r, mut w) = socket.into_split();
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}
