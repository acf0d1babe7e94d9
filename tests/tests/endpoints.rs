//! The built-in endpoints against a known workload: `status` (JSON) and
//! `metrics` (OpenMetrics) count what the workload did, both want the admin
//! token (a bearer, or the password of Basic auth), and the dashboard,
//! loaded in a real headless Chromium, shows the workload's agents and
//! channels.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uptun_e2e::data::{pattern, sha256_hex};
use uptun_e2e::procs::{have, run_bounded, skip, Proc};
use uptun_e2e::server::Server;
use uptun_e2e::{bounded, targets, tempdir_path, wait_for, WAIT};

const RAW_USERS: u64 = 5;
/// Not a multiple of the 64 KiB step in which streams publish bytes.
const RAW_LEN: usize = 3 * 64 * 1024 + 123;
const WEB_USERS: u64 = 3;
const CLIENT_LEN: usize = 100_000;
/// Sent and echoed on the stream held open through the checks.
const HELD_LEN: usize = 200_000;
/// A stream holds back under this many bytes each way until it ends.
const STEP: u64 = 64 * 1024;

/// Two agents (alpha: web and tcp; beta: tcp), a client link, finished
/// raw, web and client users, one user held open, a client stream to a
/// channel nobody serves, and a link handshake with a wrong token.
struct Workload {
    server: Server,
    _agents: [Proc; 2],
    _forward: Proc,
    _held: TcpStream,
    /// Bytes web users sent and received, all told.
    web_sent: u64,
    web_received: u64,
}

async fn workload() -> Workload {
    let (echo, http) = (targets::echo().await, targets::http().await);
    let server = Server::start(&["--connect-timeout", "2s"]).await;
    let alpha = server
        .agent_with(
            &[format!("web={http}"), format!("tcp={echo}")],
            &["--name", "alpha"],
        )
        .await;
    server.wait_agents(1).await;
    let beta = server
        .agent_with(&[format!("tcp={echo}")], &["--name", "beta"])
        .await;
    server.wait_agents(2).await;

    for i in 0..RAW_USERS {
        echo_through(server.addr, pattern(i, RAW_LEN)).await;
    }
    let (mut web_sent, mut web_received) = (0, 0);
    for i in 0..WEB_USERS {
        let len = 10_000 + 1000 * i as usize;
        let request =
            format!("GET /bytes/{len}/{i} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let reply = exchange(server.addr, request.as_bytes()).await;
        assert!(reply.ends_with(&pattern(i, len)), "web user {i}");
        web_sent += request.len() as u64;
        web_received += reply.len() as u64;
    }

    let forward = server.client("forward", &["127.0.0.1:0=tcp", "127.0.0.1:0=nowhere"]);
    let log = forward.wait_log_count("forwarding", 2).await;
    let listens = listen_addrs(&log);
    echo_through(listens["tcp"], pattern(100, CLIENT_LEN)).await;
    // Nobody serves `nowhere`: the server refuses the stream after the
    // connect timeout and the forward resets its user.
    let mut lost = TcpStream::connect(listens["nowhere"]).await.unwrap();
    lost.write_all(b"anyone?").await.unwrap();
    let mut nothing = Vec::new();
    let ended = bounded("the refused user's end", lost.read_to_end(&mut nothing)).await;
    assert!(
        ended.is_err() || nothing.is_empty(),
        "{ended:?} {nothing:?}"
    );

    let mut held = TcpStream::connect(server.addr).await.unwrap();
    let data = pattern(200, HELD_LEN);
    held.write_all(&data).await.unwrap();
    let mut back = vec![0u8; HELD_LEN];
    bounded("the held user's echo", held.read_exact(&mut back))
        .await
        .unwrap();
    assert_eq!(sha256_hex(&back), sha256_hex(&data));

    let wrong = "HEAD /_uptun/link HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nUser-Agent: uptun-agent/0.1.0\r\nAuthorization: Bearer wrong\r\nUptun-Version: 1\r\nUptun-Channels: tcp\r\n\r\n";
    let refused = exchange(server.addr, wrong.as_bytes()).await;
    assert!(refused.starts_with(b"HTTP/1.1 401"), "{refused:?}");

    // Finished streams leave their channel's active count as they end.
    wait_for("only the held stream open", WAIT, || async {
        let s = server.status_json().await?;
        let open = [
            channel(&s, "tcp")["streams"]["active"].as_i64()?,
            channel(&s, "web")["streams"]["active"].as_i64()?,
        ];
        (open == [1, 0] && s["links"]["clients"] == 1).then_some(())
    })
    .await;
    Workload {
        server,
        _agents: [alpha, beta],
        _forward: forward,
        _held: held,
        web_sent,
        web_received,
    }
}

/// Sends `data` (first byte 0: a raw user, routed to `tcp`), half-closes,
/// and checks the echo that comes back.
async fn echo_through(addr: SocketAddr, mut data: Vec<u8>) {
    data[0] = 0;
    let back = exchange(addr, &data).await;
    assert_eq!(sha256_hex(&back), sha256_hex(&data), "echo through {addr}");
}

/// Writes `request`, half-closes, and reads everything until EOF.
async fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    socket.shutdown().await.unwrap();
    let mut reply = Vec::new();
    bounded("a reply", socket.read_to_end(&mut reply))
        .await
        .unwrap();
    reply
}

/// Channel name → listening address, from a forward's `forwarding` lines.
fn listen_addrs(log: &str) -> HashMap<String, SocketAddr> {
    log.lines()
        .filter(|l| l.contains("forwarding"))
        .map(|l| {
            let field = |name: &str| {
                let rest = l.split(&format!("{name}=")).nth(1).unwrap();
                rest.split_whitespace().next().unwrap().to_string()
            };
            (field("channel"), field("listen").parse().unwrap())
        })
        .collect()
}

fn channel<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["channels"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn names(list: &Value) -> Vec<&str> {
    let all = list.as_array().expect("a list");
    all.iter().map(|m| m["name"].as_str().unwrap()).collect()
}

/// `GET path` with more header lines: (head, body).
async fn get(addr: SocketAddr, path: &str, headers: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n");
    let raw = exchange(addr, request.as_bytes()).await;
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {encoded}\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reports_the_workload() {
    let w = workload().await;
    let s = w.server.status_json().await.unwrap();
    assert_eq!(
        s["links"],
        serde_json::json!({"agents": 2, "clients": 1}),
        "{s:#}"
    );
    assert_eq!(names(&s["agents"]), ["alpha", "beta"]);
    assert_eq!(s["clients"].as_array().unwrap().len(), 1);
    let (tcp, web, nowhere) = (
        channel(&s, "tcp"),
        channel(&s, "web"),
        channel(&s, "nowhere"),
    );
    assert_eq!(names(&tcp["members"]), ["alpha", "beta"]);
    assert_eq!(names(&web["members"]), ["alpha"]);
    assert_eq!(names(&nowhere["members"]), Vec::<&str>::new());

    // Raw users, the held one and the client's stream went to tcp; the
    // client's stream was not routed (clients pick their channel).
    assert_eq!(tcp["routed"], RAW_USERS + 1);
    assert_eq!(tcp["streams"]["opened"], RAW_USERS + 2);
    assert_eq!(tcp["streams"]["refused"], 0);
    let finished = RAW_USERS * RAW_LEN as u64 + CLIENT_LEN as u64;
    for way in ["to_agents", "from_agents"] {
        let held = tcp["bytes"][way].as_u64().unwrap() - finished;
        // The held stream shows all but under one step of its bytes.
        assert!(
            held > HELD_LEN as u64 - STEP && held <= HELD_LEN as u64,
            "{way}: {held}"
        );
    }
    assert_eq!(
        (web["routed"].as_u64(), web["streams"]["opened"].as_u64()),
        (Some(WEB_USERS), Some(WEB_USERS))
    );
    assert_eq!(web["bytes"]["to_agents"], w.web_sent);
    assert_eq!(web["bytes"]["from_agents"], w.web_received);
    assert_eq!(nowhere["streams"]["refused_by_reason"]["no_agent"], 1);
    assert_eq!(nowhere["streams"]["opened"], 0);

    assert_eq!(s["streams"]["active"], 1);
    assert_eq!(w.server.streams_per_agent().await.iter().sum::<usize>(), 1);
    assert_eq!(s["connections"]["web"], WEB_USERS);
    assert_eq!(s["connections"]["raw"], RAW_USERS + 1);
    // Two agents, one client, one refused handshake.
    assert_eq!(s["connections"]["link"], 4);
    assert_eq!(s["handshake_failures"]["bad_token"], 1);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_the_workload() {
    let w = workload().await;
    let bearer = format!("Authorization: Bearer {}\r\n", w.server.admin_token);
    let (head, body) = get(w.server.addr, "/_uptun/metrics", &bearer).await;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.contains("openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let m: HashMap<&str, f64> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key, value.parse().unwrap())
        })
        .collect();
    let at = |key: &str| *m.get(key).unwrap_or_else(|| panic!("no {key} in\n{body}"));
    assert_eq!(at(r#"uptun_links{kind="agent"}"#), 2.0);
    assert_eq!(at(r#"uptun_links{kind="client"}"#), 1.0);
    assert_eq!(at(r#"uptun_channel_members{channel="tcp"}"#), 2.0);
    assert_eq!(
        at(r#"uptun_streams_opened_total{channel="tcp"}"#),
        (RAW_USERS + 2) as f64
    );
    assert_eq!(at(r#"uptun_streams_active{channel="tcp"}"#), 1.0);
    assert_eq!(at(r#"uptun_streams_active{channel="web"}"#), 0.0);
    assert_eq!(
        at(r#"uptun_streams_opened_total{channel="web"}"#),
        WEB_USERS as f64
    );
    assert_eq!(
        at(r#"uptun_streams_refused_total{channel="nowhere",reason="no_agent"}"#),
        1.0
    );
    assert_eq!(
        at(r#"uptun_bytes_total{channel="web",direction="to_agent"}"#),
        w.web_sent as f64
    );
    assert_eq!(
        at(r#"uptun_bytes_total{channel="web",direction="from_agent"}"#),
        w.web_received as f64
    );
    let tcp_up = at(r#"uptun_bytes_total{channel="tcp",direction="to_agent"}"#);
    let finished = (RAW_USERS * RAW_LEN as u64 + CLIENT_LEN as u64) as f64;
    assert!(
        tcp_up > finished + (HELD_LEN as u64 - STEP) as f64 && tcp_up <= finished + HELD_LEN as f64,
        "{tcp_up}"
    );
    assert_eq!(
        at(r#"uptun_routed_total{channel="tcp"}"#),
        (RAW_USERS + 1) as f64
    );
    assert_eq!(
        at(r#"uptun_connections_total{outcome="web"}"#),
        WEB_USERS as f64
    );
    assert_eq!(at(r#"uptun_connections_total{outcome="link"}"#), 4.0);
    assert_eq!(
        at(r#"uptun_handshake_failures_total{reason="bad_token"}"#),
        1.0
    );
    assert_eq!(at(r#"uptun_links_opened_total{kind="agent"}"#), 2.0);
    assert_eq!(at(r#"uptun_unrouted_total{kind="raw"}"#), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_metrics_want_the_admin_token_as_bearer_or_basic_password() {
    let echo = targets::echo().await;
    let server = Server::start(&[]).await;
    let _agent = server
        .agent_with(&[format!("tcp={echo}")], &["--name", "secret-laptop"])
        .await;
    let token = server.admin_token.clone();
    for path in ["/_uptun/status", "/_uptun/metrics"] {
        for (headers, why) in [
            (String::new(), "needs the admin token"),
            (basic("admin", "nope"), "wrong admin token"),
            (basic(&token, ""), "wrong admin token"),
            (
                format!("Authorization: Bearer {}\r\n", server.token),
                "wrong admin token",
            ),
        ] {
            let (head, body) = get(server.addr, path, &headers).await;
            assert!(
                head.starts_with("HTTP/1.1 401"),
                "{path} {headers:?}: {head}"
            );
            // Browsers prompt for a login on this challenge.
            assert!(head.contains("WWW-Authenticate: Basic realm="), "{head}");
            assert!(body.contains(why), "{path} {headers:?}: {body}");
            assert!(
                !body.contains("secret-laptop") && !body.contains(&token) && !head.contains(&token)
            );
        }
        for headers in [
            format!("Authorization: Bearer {token}\r\n"),
            basic("admin", &token),
            basic("", &token),
        ] {
            let (head, body) = get(server.addr, path, &headers).await;
            assert!(
                head.starts_with("HTTP/1.1 200"),
                "{path} {headers:?}: {head}"
            );
            assert!(body.contains("tcp"), "{body}");
        }
    }
    let (head, body) = get(server.addr, "/_uptun/health", "").await;
    assert!(head.starts_with("HTTP/1.1 200") && body == "ok\n", "{head}");
}

/// Loads `url` in headless Chromium and returns the DOM once its scripts
/// ran for `budget` of virtual time (the page refreshes every 3 s).
fn chromium_dom(url: &str, budget: Duration) -> String {
    let profile = tempdir_path();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        &format!("--user-data-dir={}", profile.path().display()),
        &format!("--virtual-time-budget={}", budget.as_millis()),
        "--dump-dom",
        url,
    ]);
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_shows_the_workload_in_a_real_browser() {
    if !have("chromium") {
        return skip("chromium is not installed (apt-get install chromium)");
    }
    let w = workload().await;
    let addr = w.server.addr;
    let token = &w.server.admin_token;
    let url = format!("http://admin:{token}@{addr}/_uptun/status");
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url, Duration::from_secs(8)))
        .await
        .unwrap();
    for agent in ["alpha", "beta"] {
        assert!(
            dom.contains(&format!(">{agent}<")),
            "agent {agent} not in\n{dom}"
        );
    }
    for channel in ["web", "tcp", "nowhere"] {
        assert!(
            dom.contains(&format!("data-channel=\"{channel}\"")),
            "channel {channel} not in\n{dom}"
        );
    }
    // The page refreshed itself from the JSON with the browser's login.
    let refreshes: u32 = dom
        .split("data-refreshes=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("a refresh count on the body");
    assert!(
        refreshes >= 1 && dom.contains("class=\"live\""),
        "refreshes {refreshes}:\n{dom}"
    );
    assert!(!dom.contains(token.as_str()), "the page shows the token");
    // tcp's row, as the page rendered it: open 1, opened RAW_USERS + 2.
    let row = dom.split("data-channel=\"tcp\"").nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    let counts = format!(
        "data-value=\"1\">1</td><td class=\"num\" data-value=\"{0}\">{0}<",
        RAW_USERS + 2
    );
    assert!(row.contains(&counts), "{counts} not in\n{row}");

    // Without the login the browser is refused (headless Chromium cannot
    // show the login prompt, so it shows nothing): no data.
    let url = format!("http://{addr}/_uptun/status");
    let dom = tokio::task::spawn_blocking(move || chromium_dom(&url, Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(
        !dom.contains("alpha") && !dom.contains("data-channel"),
        "{dom}"
    );
}
