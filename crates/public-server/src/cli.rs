//! Command-line flags of `public-server`; every flag also reads an
//! environment variable, so a PaaS can configure it without a shell.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use uptun_cli::channel_and_value;
pub use uptun_cli::{init_logging, LinkArgs, LogFormat};
use uptun_protocol::Secret;

use crate::acme::{check_domain, LETS_ENCRYPT};
use crate::auth::{Grant, GrantParser};
use crate::limits::Limits;
use crate::timeouts;

const EXAMPLES: &str = "\
Examples:
  # On a VPS: one port for agents, web users and ssh users
  public-server --listen 0.0.0.0:443 --agent-token \"$(openssl rand -hex 16)\"

  # On a PaaS (Heroku, Fly, Render): the platform sets PORT
  UPTUN_AGENT_TOKEN=s3cret public-server

  # Then, on the machine behind NAT. The URL is http:// with the port the server
  # listens on, or https:// where a router in front terminates TLS (a PaaS)
  local-agent --server http://tunnel.example.com:443 --token s3cret \\
      --channel web=127.0.0.1:3000 --channel ssh=127.0.0.1:22

  # Let clients (local-agent forward / connect) in with a token of their own,
  # and turn on status (JSON), metrics (Prometheus) and the dashboard for
  # whoever holds the admin token (a browser logs in with it as the password)
  public-server --listen 0.0.0.0:443 --agent-token s3cret --client-token c1ient --admin-token adm1n
  curl -H \"Authorization: Bearer adm1n\" http://tunnel.example.com:443/_uptun/status
  curl -u admin:adm1n http://tunnel.example.com:443/_uptun/metrics

  # On a VPS without a proxy in front: TLS on the same port, with a certificate
  # from files (HUP reloads them) or from Let's Encrypt; plain ssh still works there
  public-server --listen 0.0.0.0:443 --tls-cert fullchain.pem --tls-key privkey.pem
  public-server --listen 0.0.0.0:443 --acme-domain tunnel.example.com \\
      --acme-cache /var/lib/uptun/acme --acme-contact mailto:ops@example.com

  # Several tokens, some limited to channels (names, or a prefix ending in *):
  # agents with w3b may serve only web and dev-…; clients with 0ps may open only ssh
  public-server --agent-token s3cret --agent-token 'w3b:web,dev-*' --client-token '0ps:ssh'
  # The same in the environment: ';' between tokens
  UPTUN_AGENT_TOKEN='s3cret;w3b:web,dev-*' UPTUN_CLIENT_TOKEN='0ps:ssh' public-server

rhost (extra-tunnel) agents and clients: KEYS_<NAME>=KEY sets the key of legacy channel
/<name> (KEYS_SSH=… for /ssh, KEYS_=… for /); without one they are refused. Also [legacy]
in the config file; see docs/rhost-compat.md.";

/// uptun public server: one port for agents, clients, web and TCP users.
///
/// Agents dial this port with an HTTP upgrade and serve named channels; ordinary
/// HTTP users go to the HTTP channel, connections starting with `SSH-` to the
/// ssh channel, everything else to the TCP channel.
#[derive(Debug, Clone, Parser)]
#[command(name = "public-server", version, after_help = EXAMPLES)]
pub struct Cli {
    /// Config file (TOML; see examples/uptun.toml): everything a flag says, plus [[route]] rules.
    /// Flags and environment variables override it; HUP reloads its routes and tokens.
    #[arg(long, env = "UPTUN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Check the config file (and the flags) and exit: 0 if good, else 2 with the file, line and mistake
    #[arg(long, requires = "config")]
    pub check_config: bool,

    /// Address to listen on [default: 0.0.0.0:$PORT, or 0.0.0.0:8080 without PORT]
    #[arg(long, env = "UPTUN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Token agents must present, optionally limited to channels: TOKEN or TOKEN:CHANNEL,… (names, `prefix*`); repeat for several (`;` between them in the env var). Without one, a random token is generated and printed once.
    #[arg(long, env = "UPTUN_AGENT_TOKEN", hide_env_values = true, value_name = "TOKEN[:CHANNELS]",
          value_delimiter = ';', value_parser = GrantParser)]
    pub agent_token: Vec<Grant>,

    /// Token clients (forward, connect) must present, optionally limited to the channels they may open; repeatable like --agent-token [default: none, clients are refused]
    #[arg(long, env = "UPTUN_CLIENT_TOKEN", hide_env_values = true, value_name = "TOKEN[:CHANNELS]",
          value_delimiter = ';', value_parser = GrantParser)]
    pub client_token: Vec<Grant>,

    /// Token for GET <prefix>/status (JSON; a dashboard page for a browser) and <prefix>/metrics (Prometheus), sent as `Authorization: Bearer TOKEN` or as the password of Basic auth, any user name (`curl -u admin:TOKEN`, a browser's login prompt) [default: none, both are off]
    #[arg(
        long,
        env = "UPTUN_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = admin_token
    )]
    pub admin_token: Option<Secret>,

    /// Channel that ordinary HTTP users are routed to
    #[arg(
        long,
        env = "UPTUN_HTTP_CHANNEL",
        default_value = "web",
        value_name = "NAME"
    )]
    pub http_channel: String,

    /// Channel for raw connections that start with `SSH-`
    #[arg(
        long,
        env = "UPTUN_SSH_CHANNEL",
        default_value = "ssh",
        value_name = "NAME"
    )]
    pub ssh_channel: String,

    /// Channel for every other raw TCP connection
    #[arg(
        long,
        env = "UPTUN_TCP_CHANNEL",
        default_value = "tcp",
        value_name = "NAME"
    )]
    pub tcp_channel: String,

    /// Path prefix of the built-in endpoints (health, status, metrics)
    #[arg(
        long,
        env = "UPTUN_ENDPOINT_PREFIX",
        default_value = "/_uptun",
        value_name = "PATH"
    )]
    pub endpoint_prefix: String,

    /// How long a user waits for an agent of its channel (rides out agent restarts), 100ms to 10m
    #[arg(long, env = "UPTUN_CONNECT_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = timeouts::connect)]
    pub connect_timeout: Duration,

    /// Silence after which a raw connection is routed without its first bytes, 10ms to 60s
    #[arg(long, env = "UPTUN_SNIFF_TIMEOUT", default_value = "500ms", value_name = "DURATION",
          value_parser = timeouts::sniff)]
    pub sniff_timeout: Duration,

    /// Time an HTTP request head may take to arrive, 100ms to 10m
    #[arg(long, env = "UPTUN_HEADER_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = timeouts::header)]
    pub header_timeout: Duration,

    /// Reset a channel's users after this long without a byte either way, CHANNEL=DURATION
    /// (1s to 24h; repeatable, as in --idle-timeout ssh=30m). Other channels have none.
    #[arg(long = "idle-timeout", env = "UPTUN_IDLE_TIMEOUTS", value_delimiter = ',',
          value_name = "CHANNEL=DURATION", value_parser = parse_idle_timeout)]
    pub idle_timeouts: Vec<(String, Duration)>,

    /// Connections still being classified (not yet a link, endpoint or user) at once, from everyone
    #[arg(long, env = "UPTUN_MAX_UNCLASSIFIED", default_value_t = Limits::default().unclassified,
          value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_unclassified: usize,

    /// Connections still being classified at once from one IP address (slowloris guard)
    #[arg(long, env = "UPTUN_MAX_UNCLASSIFIED_PER_SOURCE", default_value_t = Limits::default().unclassified_per_source,
          value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_unclassified_per_source: usize,

    /// Links (agent or client) one token may hold at once; one more is refused with 429
    #[arg(long, env = "UPTUN_MAX_LINKS_PER_TOKEN", default_value_t = Limits::default().links_per_token,
          value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_links_per_token: usize,

    /// After TERM or INT, how long open streams get to finish before the rest is closed,
    /// 0s to 1h (QUIT waits for them without a limit)
    #[arg(long, env = "UPTUN_GRACE", default_value = "10s", value_name = "DURATION",
          value_parser = uptun_cli::grace_in_range())]
    pub grace: Duration,

    /// Terminate TLS on the port with this certificate chain (PEM, leaf first); needs --tls-key.
    /// Plain connections are still served on the same port. HUP reloads both files.
    #[arg(long, env = "UPTUN_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// Private key (PEM) of --tls-cert
    #[arg(long, env = "UPTUN_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Terminate TLS with a certificate for NAME from an ACME CA (Let's Encrypt), proved on this
    /// port (TLS-ALPN-01: the CA must reach it as NAME:443); repeatable; needs --acme-cache
    #[arg(long, env = "UPTUN_ACME_DOMAIN", value_delimiter = ',', value_name = "NAME",
          value_parser = acme_domain)]
    pub acme_domain: Vec<String>,

    /// ACME directory URL of the CA
    #[arg(long, env = "UPTUN_ACME_DIRECTORY", default_value = LETS_ENCRYPT, value_name = "URL")]
    pub acme_directory: String,

    /// Directory for the ACME account key and certificate, kept across restarts (created mode 700)
    #[arg(long, env = "UPTUN_ACME_CACHE", value_name = "DIR")]
    pub acme_cache: Option<PathBuf>,

    /// Contact for the ACME account, as mailto:you@example.com; repeatable
    #[arg(long, env = "UPTUN_ACME_CONTACT", value_delimiter = ',', value_name = "mailto:ADDRESS",
          value_parser = acme_contact)]
    pub acme_contact: Vec<String>,

    /// CA certificate (PEM) of a private ACME server's HTTPS, such as pebble or step-ca [default: Mozilla's roots]
    #[arg(long, env = "UPTUN_ACME_CA", value_name = "FILE")]
    pub acme_ca: Option<PathBuf>,

    #[command(flatten)]
    pub link: LinkArgs,
}

fn acme_domain(name: &str) -> Result<String, String> {
    check_domain(name).map_err(|err| err.to_string())?;
    Ok(name.to_string())
}

pub(crate) fn acme_contact(contact: &str) -> Result<String, String> {
    match contact.starts_with("mailto:") && contact.contains('@') {
        true => Ok(contact.to_string()),
        false => Err(format!(
            "{contact:?} is not a mailto: address: write mailto:you@example.com"
        )),
    }
}

/// `CHANNEL=DURATION`, as in `ssh=30m`.
fn parse_idle_timeout(text: &str) -> Result<(String, Duration), String> {
    let (channel, limit) = channel_and_value(text, "CHANNEL=DURATION, as in ssh=30m")?;
    let limit = timeouts::idle(limit)?;
    Ok((channel.to_string(), limit))
}

/// A fresh random token: 32 characters of letters and digits.
pub fn generate_token() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// An empty admin token would let anyone in (Basic auth with an empty
/// password), and a platform's settings form leaves a variable empty
/// easily: refused, rather than read as "off".
pub(crate) fn admin_token(token: &str) -> Result<Secret, String> {
    match token.is_empty() {
        true => Err("the admin token is empty, which would let anyone in: give a long random one, or leave it unset to keep status and metrics off".into()),
        false => Ok(Secret::new(token)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_token_flag_is_explained_without_the_token() {
        let err = Cli::try_parse_from(["public-server", "--client-token", "s3cret:a b"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--client-token") && err.contains("\"a b\""),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn an_empty_admin_token_is_refused_not_a_blank_password() {
        let err = Cli::try_parse_from(["public-server", "--admin-token", ""])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--admin-token") && err.contains("is empty"),
            "{err}"
        );
    }
}
