//! `NO_PROXY` matching, as curl does it: a comma (or space) separated list
//! of host names, domain suffixes (`example.com` and `.example.com` both
//! match `example.com` and every name under it), IP addresses, CIDR ranges
//! (`10.0.0.0/8`), or `*` for every host. Names are compared without DNS:
//! an IP entry matches only a server given by that IP. Entries carry no
//! port; one that does is compared without it.

use std::net::IpAddr;

/// Whether `list` exempts the server at `addr` (`host:port`).
pub(super) fn matches(list: &str, addr: &str) -> bool {
    let host = normalize(host_of(addr));
    let ip: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .any(|entry| entry_matches(entry, &host, ip))
}

fn entry_matches(entry: &str, host: &str, ip: Option<IpAddr>) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some(ip) = ip {
        return ip_matches(entry, ip);
    }
    let entry = normalize(host_of(entry.trim_start_matches('.')));
    if entry.is_empty() {
        return false;
    }
    host == entry
        || host
            .strip_suffix(entry.as_str())
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// An IP entry, or a CIDR range, against the server's IP.
fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let (net, bits) = match entry.split_once('/') {
        Some((net, bits)) => match bits.parse::<u8>() {
            Ok(bits) => (net, Some(bits)),
            Err(_) => return false,
        },
        None => (host_of(entry), None),
    };
    let Ok(net) = net
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            prefix_eq(&net.octets(), &ip.octets(), bits.unwrap_or(32))
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            prefix_eq(&net.octets(), &ip.octets(), bits.unwrap_or(128))
        }
        _ => false,
    }
}

/// Whether the first `bits` bits of `a` and `b` agree (all of them when
/// `bits` is larger than the address).
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits).min(a.len() * 8);
    let (whole, rest) = (bits / 8, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// The host of `host[:port]` or `[v6][:port]`, without the brackets.
fn host_of(addr: &str) -> &str {
    if let Some(bracketed) = addr.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default();
    }
    match addr.split_once(':') {
        // Two colons or more: a bare IPv6 address, no port.
        Some((_, rest)) if rest.contains(':') => addr,
        Some((host, _)) => host,
        None => addr,
    }
}

/// Lowercase, without the root's trailing dot (`example.com.`).
fn normalize(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn names_and_domain_suffixes() {
        let m = |list, addr| matches(list, addr);
        assert!(m("example.com", "example.com:443"));
        assert!(m("example.com", "www.example.com:443"));
        assert!(m(".example.com", "www.example.com:443"));
        assert!(
            m(".example.com", "example.com:80"),
            "curl ignores the leading dot"
        );
        assert!(!m("example.com", "notexample.com:443"));
        assert!(!m("www.example.com", "example.com:443"));
        assert!(
            m("EXAMPLE.com", "Tunnel.Example.COM.:443"),
            "no case, no root dot"
        );
        assert!(m(
            "other.org, tunnel.example.com",
            "tunnel.example.com:8080"
        ));
        assert!(m("other.org tunnel.example.com", "tunnel.example.com:8080"));
        assert!(
            m("tunnel.example.com:9999", "tunnel.example.com:8080"),
            "port ignored"
        );
        assert!(!m("", "example.com:443"));
        assert!(!m(" , ,", "example.com:443"));
        assert!(!m(".", "example.com:443"));
    }

    #[test]
    fn star_matches_everything_but_only_alone() {
        assert!(matches("*", "example.com:443"));
        assert!(matches("localhost,*", "10.1.2.3:80"));
        assert!(!matches("*.example.com", "www.example.com:443"));
    }

    #[test]
    fn ip_addresses_and_ranges() {
        let m = |list, addr| matches(list, addr);
        assert!(m("127.0.0.1", "127.0.0.1:8080"));
        assert!(!m("127.0.0.1", "127.0.0.2:8080"));
        assert!(m("10.0.0.0/8", "10.200.3.4:80"));
        assert!(!m("10.0.0.0/8", "11.0.0.1:80"));
        assert!(m("192.168.1.0/25", "192.168.1.127:80"));
        assert!(!m("192.168.1.0/25", "192.168.1.128:80"));
        assert!(m("0.0.0.0/0", "8.8.8.8:53"));
        assert!(m("::1", "[::1]:8080"));
        assert!(m("[::1]", "[::1]:8080"));
        assert!(m("fd00::/8", "[fd12:3456::1]:443"));
        assert!(!m("fd00::/8", "[fe80::1]:443"));
        assert!(!m("::1", "127.0.0.1:80"), "families differ");
        assert!(
            !m("127.0.0.1", "localhost:80"),
            "no DNS: a name is not its address"
        );
        assert!(!m("localhost", "127.0.0.1:80"));
        assert!(!m("10.0.0.0/x", "10.0.0.1:80"));
    }
}
