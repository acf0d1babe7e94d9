//! Proxy URLs: `http://[USER:PASS@]HOST[:PORT]`, with the user and password
//! percent-decoded. Every message shows the URL with its credentials as
//! `***`, because the value being complained about is the one holding them.

use uptun_protocol::Secret;

use super::{Credentials, Proxy};

/// Port of a proxy URL that names none: 1080, as curl assumes.
const DEFAULT_PORT: u16 = 1080;

/// Parses `value`, given in `source` (`--proxy`, `HTTPS_PROXY`, …).
pub(super) fn proxy(value: &str, source: &'static str) -> Result<Proxy, String> {
    let fail = |why: &str| format!("{source} {}: {why}", redact(value));
    let value = value.trim();
    let rest = match value.split_once("://") {
        None => value,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
            return Err(fail(
                "https:// proxies (TLS to the proxy itself) are not supported; give the \
                 proxy's plain http:// address (an https:// server stays encrypted end to end \
                 inside the tunnel)",
            ))
        }
        Some((scheme, _)) if scheme.to_ascii_lowercase().starts_with("socks") => {
            return Err(fail(
                "SOCKS proxies are not supported; give an HTTP proxy that allows CONNECT, as in \
                 http://proxy.example.com:3128",
            ))
        }
        Some(_) => return Err(fail("write the proxy as http://HOST:PORT")),
    };
    // The last `@` ends the user information: a password with an `@` that
    // was not written as %40 still parses.
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, rest),
    };
    let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
    if hostport.contains(['/', '?', '#']) {
        return Err(fail("a proxy URL has no path; write http://HOST:PORT"));
    }
    let addr = host_and_port(hostport).map_err(&fail)?;
    let credentials = userinfo
        .map(|userinfo| {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Ok::<_, &str>(Credentials {
                user: percent_decode(user)?,
                password: Secret::new(percent_decode(password)?),
            })
        })
        .transpose()
        .map_err(&fail)?;
    Ok(Proxy {
        addr,
        credentials,
        source,
    })
}

/// `HOST[:PORT]` → `host:port`, IPv6 addresses kept in brackets.
fn host_and_port(hostport: &str) -> Result<String, &'static str> {
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (ip, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 address needs its closing bracket, as in http://[::1]:3128")?;
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("the address in brackets is not an IPv6 address");
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("write the port after the bracket, as in http://[::1]:3128")?,
            ),
        };
        (&hostport[..ip.len() + 2], port)
    } else {
        match hostport.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err("write an IPv6 address in brackets, as in http://[::1]:3128")
            }
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("no proxy host; write http://HOST:PORT");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the proxy host has a space or control character in it");
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or("the port must be a number from 1 to 65535")?,
    };
    Ok(format!("{host}:{port}"))
}

/// Decodes `%XX` escapes (user names and passwords with `:`, `@`, `/` in
/// them are written that way in a URL).
fn percent_decode(s: &str) -> Result<String, &'static str> {
    const BAD_ESCAPE: &str =
        "a % in the user name or password must start a %XX escape (write % itself as %25)";
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).ok_or(BAD_ESCAPE)?;
        let digit = |b: u8| (b as char).to_digit(16).ok_or(BAD_ESCAPE);
        out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| "the user name or password is not UTF-8 once decoded")
}

/// `value` for a message: user information replaced by `***`, control
/// characters by `?`, and at most 200 characters.
pub(super) fn redact(value: &str) -> String {
    let value = value.trim();
    let shown = match value.rsplit_once('@') {
        Some((before, host)) => {
            let scheme = before.split_once("://").map_or("", |(s, _)| s);
            match scheme.is_empty() {
                true => format!("***@{host}"),
                false => format!("{scheme}://***@{host}"),
            }
        }
        None => value.to_string(),
    };
    shown
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr_and_user(p: &Proxy) -> (String, Option<(String, String)>) {
        let creds = p
            .credentials
            .as_ref()
            .map(|c| (c.user.clone(), c.password.expose().to_string()));
        (p.addr.clone(), creds)
    }

    #[test]
    fn proxy_urls_parse_as_curl_reads_them() {
        let ok =
            |s: &str| addr_and_user(&proxy(s, "--proxy").unwrap_or_else(|e| panic!("{s}: {e}")));
        assert_eq!(
            ok("http://proxy.corp:3128"),
            ("proxy.corp:3128".into(), None)
        );
        assert_eq!(
            ok("HTTP://proxy.corp:3128/"),
            ("proxy.corp:3128".into(), None)
        );
        assert_eq!(
            ok("proxy.corp:8080"),
            ("proxy.corp:8080".into(), None),
            "no scheme: http"
        );
        assert_eq!(
            ok("http://proxy.corp"),
            ("proxy.corp:1080".into(), None),
            "curl's default port"
        );
        assert_eq!(ok("http://[::1]:3128"), ("[::1]:3128".into(), None));
        assert_eq!(ok("http://[::1]"), ("[::1]:1080".into(), None));
        let creds = |u: &str, p: &str| Some((u.to_string(), p.to_string()));
        assert_eq!(
            ok("http://alice:s3cret@proxy:3128").1,
            creds("alice", "s3cret")
        );
        assert_eq!(ok("http://alice@proxy:3128").1, creds("alice", ""));
        assert_eq!(
            ok("http://dom%5Calice:p%40ss%3Aw%2Fd%25@proxy:3128").1,
            creds("dom\\alice", "p@ss:w/d%"),
            "percent-decoded"
        );
        assert_eq!(
            ok("http://alice:p@ss@proxy:3128").1,
            creds("alice", "p@ss"),
            "the last @ ends it"
        );
        assert_eq!(ok("http://al%C3%AFce:x@proxy:1").1, creds("alïce", "x"));
    }

    #[test]
    fn bad_proxy_urls_say_what_to_write_and_never_show_the_password() {
        let cases = [
            ("https://u:pw-XYZ@proxy:3128", "https:// proxies"),
            (
                "socks5://u:pw-XYZ@proxy:1080",
                "SOCKS proxies are not supported",
            ),
            (
                "ftp://u:pw-XYZ@proxy:21",
                "write the proxy as http://HOST:PORT",
            ),
            ("http://u:pw-XYZ@proxy:99999", "port must be a number"),
            ("http://u:pw-XYZ@proxy:0", "port must be a number"),
            ("http://u:pw-XYZ@proxy:x", "port must be a number"),
            ("http://u:pw-XYZ@:3128", "no proxy host"),
            ("http://u:pw-XYZ@proxy:3128/path", "no path"),
            ("http://u:pw-XYZ%@proxy:3128", "%XX escape"),
            ("http://u:pw-XYZ%zz@proxy:3128", "%XX escape"),
            ("http://u:pw-XYZ%ff@proxy:3128", "not UTF-8"),
            ("http://u:pw-XYZ@::1:3128", "IPv6 address in brackets"),
            ("http://u:pw-XYZ@[::1:3128", "closing bracket"),
            ("http://u:pw-XYZ@[nope]:3128", "not an IPv6 address"),
            ("http://u:pw-XYZ@[::1]3128", "after the bracket"),
        ];
        for (input, want) in cases {
            let err = proxy(input, "HTTPS_PROXY").unwrap_err();
            assert!(err.contains(want), "{input}: {err}");
            assert!(err.starts_with("HTTPS_PROXY "), "{input}: {err}");
            assert!(
                !err.contains("pw-XYZ") && !err.contains("u:"),
                "{input}: {err}"
            );
            assert!(err.contains("***@"), "{input}: {err}");
        }
        assert_eq!(redact("alice:pw@proxy:1"), "***@proxy:1");
        assert_eq!(redact("http://a:b@c@proxy:1"), "http://***@proxy:1");
        assert_eq!(redact("http://proxy\n:1"), "http://proxy?:1");
        assert_eq!(redact(&"x".repeat(500)).len(), 200);
    }
}
