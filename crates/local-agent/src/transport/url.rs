//! The server URL an agent or client is given: which transport to use
//! (its scheme), where to connect, and the `Host` a router in front expects.

/// How to reach the server: the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http://` (or no scheme): plain TCP, `Upgrade: tcp`.
    Http,
    /// `https://`: TLS, then `Upgrade: tcp`.
    Https,
    /// `ws://`: plain TCP, frames in WebSocket messages.
    Ws,
    /// `wss://`: TLS, frames in WebSocket messages.
    Wss,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http | Scheme::Ws => 80,
            Scheme::Https | Scheme::Wss => 443,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

/// Where the public server is: `http://host:port` (or just `host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    pub scheme: Scheme,
    /// `host:port` to connect to.
    pub addr: String,
    /// Value of the `Host` header: what a router in front expects.
    pub host: String,
}

impl std::str::FromStr for ServerUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (scheme, rest) = match s.split_once("://") {
            None => (Scheme::Http, s),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("ws", rest)) => (Scheme::Ws, rest),
            Some(("wss", rest)) => (Scheme::Wss, rest),
            Some((other, _)) => {
                return Err(format!(
                    "{s}: {other}:// is not a server URL scheme; use http://, https://, ws:// or wss://"
                ))
            }
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(format!(
                "{s:?} has no host; write it like http://tunnel.example.com:8080"
            ));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']');
        let addr = match has_port {
            true => authority.to_string(),
            false => format!("{authority}:{}", scheme.default_port()),
        };
        Ok(ServerUrl {
            scheme,
            addr,
            host: authority.to_string(),
        })
    }
}

impl std::fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme.name(), self.host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        let u: ServerUrl = "http://tunnel.example.com:8080/".parse().unwrap();
        assert_eq!(
            (u.scheme, u.addr.as_str(), u.host.as_str()),
            (
                Scheme::Http,
                "tunnel.example.com:8080",
                "tunnel.example.com:8080"
            )
        );
        let u: ServerUrl = "http://app.herokuapp.com".parse().unwrap();
        assert_eq!(
            (u.addr.as_str(), u.host.as_str()),
            ("app.herokuapp.com:80", "app.herokuapp.com")
        );
        assert_eq!(u.to_string(), "http://app.herokuapp.com");
        let u: ServerUrl = "127.0.0.1:9".parse().unwrap();
        assert_eq!(u.addr, "127.0.0.1:9");
        let u: ServerUrl = "https://tunnel.example.com".parse().unwrap();
        assert_eq!(
            (u.scheme, u.addr.as_str(), u.host.as_str()),
            (
                Scheme::Https,
                "tunnel.example.com:443",
                "tunnel.example.com"
            )
        );
        assert!("ftp://x"
            .parse::<ServerUrl>()
            .unwrap_err()
            .contains("ftp://"));
        assert!("http://".parse::<ServerUrl>().is_err());
        let u: ServerUrl = "ws://tunnel.example.com".parse().unwrap();
        assert_eq!(
            (u.scheme, u.addr.as_str()),
            (Scheme::Ws, "tunnel.example.com:80")
        );
        assert_eq!(u.to_string(), "ws://tunnel.example.com");
        let u: ServerUrl = "wss://tunnel.example.com".parse().unwrap();
        assert_eq!(
            (u.scheme, u.addr.as_str()),
            (Scheme::Wss, "tunnel.example.com:443")
        );
    }
}
