//! Proxy URLs, the choice between flag and environment, and CONNECT against
//! a scripted proxy on a real socket (the end-to-end tests use tinyproxy).

use std::collections::HashMap;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::answer::{head_end, ProxyRefused};
use super::parse::proxy as parse;
use super::{choose, connect, Proxy};
use crate::transport::ServerUrl;

#[test]
fn debug_and_display_hide_the_credentials() {
    let p: Proxy = "http://alice:s3cret@proxy.corp:3128".parse().unwrap();
    for shown in [format!("{p:?}"), format!("{p:#?}"), p.to_string()] {
        assert!(
            !shown.contains("s3cret") && !shown.contains("alice"),
            "{shown}"
        );
    }
    assert_eq!(p.to_string(), "http://proxy.corp:3128");
    assert!(format!("{p:?}").contains("***"));
}

fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| vars.get(name).cloned()
}

/// (proxy address, where it came from) chosen for `server`.
fn chosen(
    flag: Option<&str>,
    server: &str,
    vars: &[(&str, &str)],
) -> Option<(String, &'static str)> {
    let server: ServerUrl = server.parse().unwrap();
    choose(flag, &server, env_of(vars))
        .unwrap()
        .map(|p| (p.addr.clone(), p.source()))
}

#[test]
fn the_environment_is_read_as_curl_reads_it() {
    let http = "http://tunnel.example.com:8080";
    let some = |addr: &str, from| Some((addr.to_string(), from));
    assert_eq!(chosen(None, http, &[]), None);
    assert_eq!(
        chosen(None, http, &[("HTTP_PROXY", "p1:1")]),
        some("p1:1", "HTTP_PROXY")
    );
    assert_eq!(
        chosen(
            None,
            http,
            &[("HTTP_PROXY", "p1:1"), ("http_proxy", "p2:2")]
        ),
        some("p2:2", "http_proxy"),
        "lowercase first"
    );
    assert_eq!(
        chosen(None, http, &[("HTTPS_PROXY", "p1:1")]),
        None,
        "https_proxy is for https://"
    );
    assert_eq!(
        chosen(None, http, &[("ALL_PROXY", "p3:3")]),
        some("p3:3", "ALL_PROXY")
    );
    assert_eq!(
        chosen(None, http, &[("ALL_PROXY", "p3:3"), ("http_proxy", "p2:2")]),
        some("p2:2", "http_proxy"),
        "the scheme's own variable before ALL_PROXY"
    );
    assert_eq!(
        chosen(None, http, &[("http_proxy", " "), ("ALL_PROXY", "p3:3")]),
        some("p3:3", "ALL_PROXY"),
        "empty is unset"
    );
    let exempt = [
        ("HTTP_PROXY", "p1:1"),
        ("NO_PROXY", "localhost,.example.com"),
    ];
    assert_eq!(chosen(None, http, &exempt), None);
    let exempt = [
        ("HTTP_PROXY", "p1:1"),
        ("no_proxy", "*"),
        ("NO_PROXY", "other"),
    ];
    assert_eq!(
        chosen(None, http, &exempt),
        None,
        "lowercase no_proxy first"
    );
    // A bad variable is an error only when it would be used.
    let bad = [("HTTP_PROXY", "socks5://p:1"), ("NO_PROXY", "example.com")];
    assert_eq!(chosen(None, http, &bad), None);
    let server: ServerUrl = http.parse().unwrap();
    let err = choose(None, &server, env_of(&bad[..1])).unwrap_err();
    assert!(err.starts_with("HTTP_PROXY socks5://p:1: SOCKS"), "{err}");
}

#[test]
fn the_flag_beats_the_environment_and_none_turns_proxies_off() {
    let http = "http://tunnel.example.com:8080";
    let env = [("HTTP_PROXY", "p1:1"), ("ALL_PROXY", "p3:3")];
    assert_eq!(
        chosen(Some("http://f:9"), http, &env),
        Some(("f:9".into(), "--proxy"))
    );
    assert_eq!(chosen(Some("none"), http, &env), None);
    assert_eq!(chosen(Some("NONE"), http, &env), None);
    assert_eq!(chosen(Some(""), http, &env), None);
    // NO_PROXY exempts from the flag too, as in curl.
    assert_eq!(
        chosen(Some("http://f:9"), http, &[("NO_PROXY", "example.com")]),
        None
    );
    // … but a broken flag is reported even then.
    let server: ServerUrl = http.parse().unwrap();
    assert!(choose(Some("socks5://f:9"), &server, env_of(&[("NO_PROXY", "*")])).is_err());
}

#[test]
fn the_head_end_is_found_across_reads() {
    // The blank line ends at 19; every earlier read that stopped short of
    // it (up to 18 bytes, the last 3 of them part of it) still finds it.
    let head = b"HTTP/1.1 200 OK\r\n\r\nrest";
    for searched in 0..=18 {
        assert_eq!(head_end(head, searched), Some(19), "searched {searched}");
    }
    assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r", 0), None);
}

/// A proxy that reads one CONNECT head, answers `answer`, and returns the
/// head it read. `None` makes it stall without answering.
async fn scripted(answer: Option<Vec<u8>>) -> (Proxy, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while head_end(&head, 0).is_none() {
            let mut byte = [0u8; 1];
            if socket.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        match answer {
            Some(answer) => socket.write_all(&answer).await.unwrap(),
            None => std::future::pending().await,
        }
        String::from_utf8(head).unwrap()
    });
    let proxy = parse(&format!("http://{addr}"), "--proxy").unwrap();
    (proxy, task)
}

fn with_credentials(mut proxy: Proxy, userinfo: &str) -> Proxy {
    let url = format!("http://{userinfo}@{}", proxy.addr);
    proxy.credentials = parse(&url, "--proxy").unwrap().credentials;
    proxy
}

#[tokio::test]
async fn a_tunnel_starts_right_after_the_answer() {
    let answer = b"HTTP/1.0 200 Connection established\r\nProxy-Agent: t\r\n\r\nfirst tunnel bytes";
    let (proxy, task) = scripted(Some(answer.to_vec())).await;
    let proxy = with_credentials(proxy, "dom%5Calice:p%40ss");
    let mut socket = connect(&proxy, "tunnel.example.com:443").await.unwrap();
    let mut tunnel = vec![0u8; 18];
    socket.read_exact(&mut tunnel).await.unwrap();
    assert_eq!(
        tunnel, b"first tunnel bytes",
        "not a byte of the tunnel was taken"
    );
    let request = task.await.unwrap();
    assert!(
        request.starts_with("CONNECT tunnel.example.com:443 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains("\r\nHost: tunnel.example.com:443\r\n"),
        "{request}"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("dom\\alice:p@ss");
    assert!(
        request.contains(&format!("\r\nProxy-Authorization: Basic {basic}\r\n")),
        "{request}"
    );
}

/// The refusal `answer` gets from `connect`.
async fn refusal(proxy_answer: &str, userinfo: Option<&str>, target: &str) -> ProxyRefused {
    let (proxy, _task) = scripted(Some(proxy_answer.as_bytes().to_vec())).await;
    let proxy = match userinfo {
        Some(u) => with_credentials(proxy, u),
        None => proxy,
    };
    let err = connect(&proxy, target).await.unwrap_err();
    let refused = err.get_ref().and_then(|e| e.downcast_ref::<ProxyRefused>());
    refused
        .unwrap_or_else(|| panic!("not a refusal: {err}"))
        .clone()
}

const ASK_BASIC: &str =
    "HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n";

#[tokio::test]
async fn a_407_says_to_give_credentials_or_that_they_were_wrong() {
    let r = refusal(ASK_BASIC, None, "t.example:8080").await;
    let line = r.to_string();
    assert!(r.is_fatal() && r.status == 407);
    assert!(
        line.contains("wants credentials (407 Proxy Authentication Required)"),
        "{line}"
    );
    assert!(
        line.contains("give them in --proxy http://USER:PASS@127.0.0.1:"),
        "{line}"
    );
    let r = refusal(ASK_BASIC, Some("alice:pw-XYZ"), "t.example:8080").await;
    let line = r.to_string();
    assert!(
        r.is_fatal() && line.contains("refused the credentials given in --proxy"),
        "{line}"
    );
    // tinyproxy's answer to wrong credentials.
    let r = refusal(
        "HTTP/1.0 401 Unauthorized\r\n\r\n",
        Some("alice:pw-XYZ"),
        "t:1",
    )
    .await;
    assert!(r.is_fatal(), "{r}");
    assert!(
        r.to_string()
            .contains("refused the credentials given in --proxy (401 Unauthorized)"),
        "{r}"
    );
    assert!(
        !line.contains("pw-XYZ") && !line.contains("alice"),
        "{line}"
    );
    let ntlm =
        "HTTP/1.1 407 Auth\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\n\r\n";
    let line = refusal(ntlm, None, "t.example:8080").await.to_string();
    assert!(
        line.contains("wants NTLM, Negotiate authentication") && line.contains("only Basic"),
        "{line}"
    );
}

#[tokio::test]
async fn a_403_names_the_destination_and_port_443() {
    let r = refusal(
        "HTTP/1.1 403 Access violation\r\n\r\n",
        None,
        "t.example:8080",
    )
    .await;
    let line = r.to_string();
    assert!(r.is_fatal());
    assert!(
        line.contains("forbids CONNECT to t.example:8080 (403 Access violation)"),
        "{line}"
    );
    assert!(line.contains("only to port 443"), "{line}");
    let line = refusal("HTTP/1.1 403 Forbidden\r\n\r\n", None, "t.example:443")
        .await
        .to_string();
    assert!(line.contains("NO_PROXY=t.example"), "{line}");
}

#[tokio::test]
async fn other_answers_are_retried_and_shown_sanitized() {
    let r = refusal("HTTP/1.1 502 Bad Gateway\r\n\r\n", None, "t.example:8080").await;
    assert!(!r.is_fatal());
    assert!(
        r.to_string()
            .ends_with("answered 502 Bad Gateway to CONNECT t.example:8080"),
        "{r}"
    );
    let long = format!("HTTP/1.1 503 {}\r\n\r\n", "why ".repeat(100));
    let line = refusal(&long, None, "t.example:1").await.to_string();
    // 64 characters of the reason, then the rest of the line.
    assert!(
        line.contains(&format!("503 {}to CONNECT", "why ".repeat(16))),
        "{line}"
    );
}

/// The io error `connect` gives for a proxy answering `answer`.
async fn failure(answer: Vec<u8>) -> std::io::Error {
    let (proxy, _task) = scripted(Some(answer)).await;
    connect(&proxy, "t.example:1").await.unwrap_err()
}

#[tokio::test]
async fn broken_answers_say_what_the_proxy_did() {
    let err = failure(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()).await;
    assert!(err.to_string().contains("is it an HTTP proxy?"), "{err}");
    let err = failure(b"HTTP/1.1 200 OK\r\n".to_vec()).await;
    assert!(
        err.to_string()
            .contains("closed the connection without answering"),
        "{err}"
    );
    let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b"X-Pad: yes\r\n".as_slice(), 2000).flatten());
    let err = failure(huge).await;
    assert!(err.to_string().contains("answer head over 16 KiB"), "{err}");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = listener.local_addr().unwrap();
    drop(listener);
    let proxy = parse(&format!("http://u:pw-XYZ@{gone}"), "HTTPS_PROXY").unwrap();
    let err = connect(&proxy, "t.example:1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "could not reach the proxy http://{gone} (from HTTPS_PROXY)"
        )),
        "{err}"
    );
    assert!(!err.contains("pw-XYZ"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_silent_proxy_is_given_up_on() {
    let (proxy, _task) = scripted(None).await;
    let err = connect(&proxy, "t.example:1").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(
        err.to_string()
            .contains("did not answer CONNECT t.example:1 within 10 s"),
        "{err}"
    );
}
