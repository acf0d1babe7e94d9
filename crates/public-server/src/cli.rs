//! Command-line flags of `public-server`; every flag also reads an
//! environment variable, so a PaaS can configure it without a shell.

use std::time::Duration;

use clap::Parser;
use uptun_cli::{channel_and_value, duration_in};
pub use uptun_cli::{init_logging, LinkArgs, LogFormat};
use uptun_protocol::Secret;

use crate::auth::{Grant, GrantParser};
use crate::config::Config;
use crate::limits::Limits;
use crate::route::default_rules;

const EXAMPLES: &str = "\
Examples:
  # On a VPS: one port for agents, web users and ssh users
  public-server --listen 0.0.0.0:443 --agent-token \"$(openssl rand -hex 16)\"

  # On a PaaS (Heroku, Fly, Render): the platform sets PORT
  UPTUN_AGENT_TOKEN=s3cret public-server

  # Then, on the machine behind NAT. The URL is plain http:// with the port the
  # server listens on (none behind a PaaS router): agents cannot dial https:// yet
  local-agent --server http://tunnel.example.com:443 --token s3cret \\
      --channel web=127.0.0.1:3000 --channel ssh=127.0.0.1:22

  # Let clients (local-agent forward / connect) in with a token of their own,
  # and turn on the status page for whoever holds the admin token
  public-server --listen 0.0.0.0:443 --agent-token s3cret --client-token c1ient --admin-token adm1n
  curl -H \"Authorization: Bearer adm1n\" http://tunnel.example.com:443/_uptun/status

  # Several tokens, some limited to channels (names, or a prefix ending in *):
  # agents with w3b may serve only web and dev-…; clients with 0ps may open only ssh
  public-server --agent-token s3cret --agent-token 'w3b:web,dev-*' --client-token '0ps:ssh'
  # The same in the environment: ';' between tokens
  UPTUN_AGENT_TOKEN='s3cret;w3b:web,dev-*' UPTUN_CLIENT_TOKEN='0ps:ssh' public-server";

/// uptun public server: one port for agents, clients, web and TCP users.
///
/// Agents dial this port with an HTTP upgrade and serve named channels; ordinary
/// HTTP users go to the HTTP channel, connections starting with `SSH-` to the
/// ssh channel, everything else to the TCP channel.
#[derive(Debug, Parser)]
#[command(name = "public-server", version, after_help = EXAMPLES)]
pub struct Cli {
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

    /// Token for GET <prefix>/status, sent as `Authorization: Bearer TOKEN` [default: none, status is off]
    #[arg(
        long,
        env = "UPTUN_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
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

    /// Path prefix of the built-in endpoints (health, status)
    #[arg(
        long,
        env = "UPTUN_ENDPOINT_PREFIX",
        default_value = "/_uptun",
        value_name = "PATH"
    )]
    pub endpoint_prefix: String,

    /// How long a user waits for an agent of its channel (rides out agent restarts), 100ms to 10m
    #[arg(long, env = "UPTUN_CONNECT_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(600)))]
    pub connect_timeout: Duration,

    /// Silence after which a raw connection is routed without its first bytes, 10ms to 60s
    #[arg(long, env = "UPTUN_SNIFF_TIMEOUT", default_value = "500ms", value_name = "DURATION",
          value_parser = duration_in(Duration::from_millis(10), Duration::from_secs(60)))]
    pub sniff_timeout: Duration,

    /// Time an HTTP request head may take to arrive, 100ms to 10m
    #[arg(long, env = "UPTUN_HEADER_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(600)))]
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

    #[command(flatten)]
    pub link: LinkArgs,
}

impl Cli {
    /// `--listen`, else `0.0.0.0:$PORT`, else `0.0.0.0:8080`.
    pub fn listen_addr(&self) -> String {
        self.listen.clone().unwrap_or_else(|| {
            let port = std::env::var("PORT")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "8080".into());
            format!("0.0.0.0:{port}")
        })
    }

    /// The server configuration, and whether the agent token was generated.
    pub fn into_config(self) -> (Config, bool) {
        let generated = self.agent_token.is_empty();
        let mut config = Config::new(Secret::default());
        config.tokens.agents = match generated {
            true => vec![Grant::any(generate_token())],
            false => self.agent_token,
        };
        config.tokens.clients = self.client_token;
        config.admin_token = self.admin_token;
        config.routes = default_rules(&self.http_channel, &self.ssh_channel, &self.tcp_channel);
        config.endpoint_prefix = self.endpoint_prefix.trim_end_matches('/').to_string();
        config.connect_timeout = self.connect_timeout;
        config.sniff_timeout = self.sniff_timeout;
        config.header_timeout = self.header_timeout;
        config.idle_timeouts = self.idle_timeouts;
        config.limits = Limits {
            unclassified: self.max_unclassified,
            unclassified_per_source: self.max_unclassified_per_source,
            links_per_token: self.max_links_per_token,
        };
        config.mux = self.link.mux();
        (config, generated)
    }
}

/// `CHANNEL=DURATION`, as in `ssh=30m`.
fn parse_idle_timeout(text: &str) -> Result<(String, Duration), String> {
    let (channel, limit) = channel_and_value(text, "CHANNEL=DURATION, as in ssh=30m")?;
    let limit = duration_in(Duration::from_secs(1), Duration::from_secs(24 * 3600))(limit)?;
    Ok((channel.to_string(), limit))
}

/// A fresh random token: 32 characters of letters and digits.
pub fn generate_token() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_flags_and_config_hides_every_token() {
        let cli = Cli::parse_from([
            "public-server",
            "--agent-token",
            "agent-s3cret",
            "--client-token",
            "client-s3cret",
            "--admin-token",
            "admin-s3cret",
        ]);
        let flags = format!("{cli:?}");
        let (config, generated) = cli.into_config();
        assert!(!generated);
        assert!(config.tokens.agents[0].token.matches("agent-s3cret"));
        for shown in [flags, format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
    }

    #[test]
    fn tokens_repeat_and_split_at_semicolons() {
        let cli = Cli::parse_from([
            "public-server",
            "--agent-token",
            "a",
            "--agent-token",
            "b:web,dev-*",
            "--client-token",
            "c:ssh;d",
        ]);
        let (config, _) = cli.into_config();
        let (agents, clients) = (&config.tokens.agents, &config.tokens.clients);
        assert_eq!((agents.len(), clients.len()), (2, 2));
        assert!(agents[1].token.matches("b") && agents[1].channels.allows("dev-1"));
        assert!(!agents[1].channels.allows("ssh"));
        assert!(clients[0].channels.allows("ssh") && !clients[0].channels.allows("web"));
        assert_eq!(clients[1].channels, crate::Channels::All);
    }

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
}
