//! PROXY protocol headers (HAProxy's v1 text and v2 binary forms) that tell a
//! target the real user's address, written ahead of the stream's first byte.
//! Spec: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>.
//!
//! Source: the user's address from the OPEN frame. Destination: the target's
//! address as the agent reached it (the agent never learns which address the
//! user dialed on the public server). When the user's text is not a socket
//! address (a `forward`/`connect` client, reported as `ADDR via client`), the
//! header says so: v1 `PROXY UNKNOWN`, v2 `LOCAL`, and the target uses the
//! connection's own endpoints.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ppp::v2::{Builder, Command, Protocol, Version};

/// Which PROXY protocol header a channel's target gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The text line, `PROXY TCP4 SRC DST SPORT DPORT\r\n`.
    V1,
    /// The binary header (nginx, HAProxy, Envoy and most load balancers read both).
    V2,
}

impl std::str::FromStr for ProxyProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "v1" => Ok(ProxyProtocol::V1),
            "v2" => Ok(ProxyProtocol::V2),
            _ => Err(format!(
                "{s:?} is not a PROXY protocol version: write v1 or v2"
            )),
        }
    }
}

impl std::fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        })
    }
}

/// The header for a stream from `user` (the OPEN frame's address text) to a
/// target reached at `target` (`None` for a Unix socket: the destination is
/// then the unspecified address of the user's family, port 0).
pub(crate) fn header(version: ProxyProtocol, user: &str, target: Option<SocketAddr>) -> Vec<u8> {
    let addresses = user
        .parse::<SocketAddr>()
        .ok()
        .map(|user| same_family(unmap(user), target.map(unmap)));
    match (version, addresses) {
        (ProxyProtocol::V1, Some(pair)) => ppp::v1::Addresses::from(pair).to_string().into_bytes(),
        (ProxyProtocol::V1, None) => ppp::v1::Addresses::Unknown.to_string().into_bytes(),
        (ProxyProtocol::V2, Some(pair)) => {
            Builder::with_addresses(Version::Two | Command::Proxy, Protocol::Stream, pair)
                .build()
                .expect("two socket addresses fit a v2 header")
        }
        (ProxyProtocol::V2, None) => Builder::with_addresses(
            Version::Two | Command::Local,
            Protocol::Unspecified,
            ppp::v2::Addresses::Unspecified,
        )
        .build()
        .expect("an empty v2 header fits"),
    }
}

/// Both ends in one address family, as the header demands. Mixed families
/// become IPv6 with the IPv4 side mapped (`::ffff:a.b.c.d`), as HAProxy does,
/// so the user's address is never dropped.
fn same_family(user: SocketAddr, target: Option<SocketAddr>) -> (SocketAddr, SocketAddr) {
    let target = target.unwrap_or_else(|| {
        let any = match user {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        SocketAddr::new(any, 0)
    });
    if user.is_ipv4() == target.is_ipv4() {
        return (user, target);
    }
    (to_v6(user), to_v6(target))
}

fn to_v6(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) => SocketAddr::new(IpAddr::V6(ip.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    }
}

/// An IPv4 address a dual-stack socket reported as `::ffff:a.b.c.d`, back
/// to IPv4, so a service logs `203.0.113.5`, not `::ffff:203.0.113.5`.
fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
#[path = "proxy_header_tests.rs"]
mod tests;
