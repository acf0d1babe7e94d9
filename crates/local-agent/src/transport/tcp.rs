//! Plain TCP to the server (or to a proxy or router in front of it), trying
//! every address its name resolves to, IPv6 and IPv4, as curl does: a server
//! that listens on `[::1]` only is still found through `localhost`, and one
//! dead address (an IPv6 route that goes nowhere) costs a fraction of a
//! second, not the whole dial.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long one attempt has alone before the next address is tried beside
/// it (curl's happy-eyeballs delay, RFC 8305 §5 suggests 250 ms).
const STAGGER: Duration = Duration::from_millis(200);

/// Connects to `addr` (`host:port`) with Nagle off: frames are written
/// whole, and a small one (a PING, a keystroke) must not wait.
pub(crate) async fn connect(addr: &str) -> io::Result<TcpStream> {
    let addrs = resolve(addr).await?;
    let socket = connect_any(&addrs, STAGGER).await?;
    let _ = socket.set_nodelay(true);
    Ok(socket)
}

/// The addresses of `host:port`, the two families taken in turn (RFC 8305
/// §4), starting with the one the resolver put first.
///
/// `localhost` and `*.localhost` are the loopback addresses without asking
/// the resolver (RFC 6761 §6.3, and curl since 7.78): many `/etc/hosts`
/// name only 127.0.0.1, and a server bound to `[::1]` would then be out of
/// reach through the name everyone types.
async fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    if let Some(port) = localhost_port(addr) {
        return Ok(vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        ]);
    }
    let found: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{addr} resolves to no address"),
        ));
    }
    Ok(interleave(found))
}

/// The port of `localhost:PORT` (or `x.localhost:PORT`), any case.
fn localhost_port(addr: &str) -> Option<u16> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    (host == "localhost" || host.ends_with(".localhost"))
        .then(|| port.parse().ok())
        .flatten()
}

/// Alternates the address families, keeping the order within each.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_is_v6 = addrs[0].is_ipv6();
    let (mut first, mut second): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_is_v6);
    let mut out = Vec::with_capacity(first.len() + second.len());
    first.reverse();
    second.reverse();
    while !first.is_empty() || !second.is_empty() {
        out.extend(first.pop());
        out.extend(second.pop());
    }
    out
}

/// Tries `addrs` in order; each attempt that fails starts the next at once,
/// and one still pending after `stagger` gets the next beside it. The first
/// to connect wins; the others are dropped. When all fail, the error names
/// each address and why.
async fn connect_any(addrs: &[SocketAddr], stagger: Duration) -> io::Result<TcpStream> {
    let mut pending = addrs.iter().copied();
    let mut attempts = JoinSet::new();
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    let mut start_next = true;
    loop {
        if std::mem::take(&mut start_next) {
            if let Some(addr) = pending.next() {
                attempts.spawn(async move { (addr, TcpStream::connect(addr).await) });
            }
        }
        if attempts.is_empty() {
            break;
        }
        let more = pending.len() > 0;
        tokio::select! {
            Some(done) = attempts.join_next() => match done {
                Ok((_, Ok(socket))) => return Ok(socket),
                Ok((addr, Err(err))) => {
                    failures.push((addr, err));
                    start_next = true;
                }
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => start_next = true,
            },
            () = tokio::time::sleep(stagger), if more => start_next = true,
        }
    }
    Err(all_failed(failures))
}

/// One failure as it is; several as one line naming each address.
fn all_failed(mut failures: Vec<(SocketAddr, io::Error)>) -> io::Error {
    if failures.len() == 1 {
        return failures.remove(0).1;
    }
    let kind = failures
        .last()
        .map_or(io::ErrorKind::NotFound, |(_, e)| e.kind());
    let each: Vec<String> = failures
        .iter()
        .map(|(addr, err)| format!("{addr}: {err}"))
        .collect();
    io::Error::new(kind, format!("tried every address: {}", each.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[tokio::test]
    async fn localhost_is_both_loopbacks_ipv6_first() {
        for name in ["localhost:7", "LocalHost.:7", "app.localhost:7"] {
            assert_eq!(
                resolve(name).await.unwrap(),
                addrs(&["[::1]:7", "127.0.0.1:7"]),
                "{name}"
            );
        }
        assert_eq!(localhost_port("notlocalhost:7"), None);
        assert_eq!(
            resolve("127.0.0.1:7").await.unwrap(),
            addrs(&["127.0.0.1:7"])
        );
    }

    #[test]
    fn families_take_turns_from_the_resolvers_first() {
        let mixed = addrs(&["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]);
        assert_eq!(
            interleave(mixed),
            addrs(&["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"])
        );
        let v4_first = addrs(&["10.0.0.1:1", "[::1]:1"]);
        assert_eq!(interleave(v4_first.clone()), v4_first);
    }

    /// A port nothing listens on: bound, then released.
    fn closed_port(ip: &str) -> SocketAddr {
        std::net::TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[tokio::test]
    async fn a_refused_address_moves_on_to_the_next_at_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let refused = closed_port("127.0.0.1");
        // A stagger longer than the test's bound: only the refusal can
        // start the second attempt.
        let socket = tokio::time::timeout(
            Duration::from_secs(5),
            connect_any(&[refused, good], Duration::from_secs(3600)),
        )
        .await
        .expect("the refusal started the next attempt")
        .unwrap();
        assert_eq!(socket.peer_addr().unwrap(), good);
    }

    #[tokio::test]
    async fn when_every_address_fails_each_is_named() {
        let (a, b) = (closed_port("127.0.0.1"), closed_port("127.0.0.1"));
        let err = connect_any(&[a, b], STAGGER).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        let text = err.to_string();
        assert!(
            text.starts_with("tried every address")
                && text.contains(&a.to_string())
                && text.contains(&b.to_string()),
            "{text}"
        );
        // One address: its error as it is, as before.
        let err = connect_any(&[a], STAGGER).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(!err.to_string().contains("tried every"), "{err}");
    }
}
