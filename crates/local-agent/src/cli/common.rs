//! The flags every command takes: where the server is, the token, and how
//! to get there (proxy, TLS, transport).

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use local_agent::{Proxy, Secret, ServerUrl, TlsOptions, TransportMode, TransportOptions};
use uptun_cli::LinkArgs;

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The public server, as http://HOST[:PORT] or https://HOST[:PORT] (ws:// or wss:// for WebSocket links)
    #[arg(
        long,
        short = 's',
        env = "UPTUN_SERVER",
        global = true,
        value_name = "URL"
    )]
    pub server: Option<ServerUrl>,

    /// Token the server expects (its --agent-token, or --client-token for clients)
    #[arg(
        long,
        short = 't',
        env = "UPTUN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<Secret>,

    /// HTTP proxy to reach the server through (CONNECT), as in
    /// http://USER:PASS@proxy.example.com:3128; `none` turns proxies off.
    /// Without it, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are read
    /// as curl reads them
    // A `Secret`: it may hold a password, and `{:?}` of the flags shows ***.
    #[arg(
        long,
        env = "UPTUN_PROXY",
        hide_env_values = true,
        global = true,
        value_name = "URL"
    )]
    pub proxy: Option<Secret>,

    /// After TERM or INT, how long open streams get to finish before they are closed, 0s to 1h
    #[arg(long, env = "UPTUN_GRACE", global = true, default_value = "10s", value_name = "DURATION",
          value_parser = uptun_cli::grace_in_range())]
    pub grace: Duration,

    /// For https://: also trust the CA certificates in FILE (PEM), besides
    /// Mozilla's roots and this system's store, as in --ca /etc/uptun/ca.pem
    #[arg(long, env = "UPTUN_CA", global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// For https://: do not check the server's certificate at all. A last
    /// resort: anyone on the path could read the token; warns on every dial
    #[arg(long, env = "UPTUN_INSECURE", global = true)]
    pub insecure: bool,

    /// How links travel to the server (a ws:// or wss:// server URL means websocket)
    #[arg(
        long = "transport",
        env = "UPTUN_TRANSPORT",
        global = true,
        default_value = "auto",
        value_name = "TRANSPORT",
        value_parser = transport_modes()
    )]
    pub transport_mode: TransportMode,

    #[command(flatten)]
    pub link: LinkArgs,
}

impl Common {
    /// --server and --token, or a message saying how to give them.
    pub fn server_and_token(&self) -> Result<(ServerUrl, Secret), String> {
        let server = self.server.clone().ok_or(
            "--server is required (or set UPTUN_SERVER), as in --server http://tunnel.example.com",
        )?;
        let token = self.token.clone().ok_or(
            "--token is required (or set UPTUN_TOKEN): the public server printed it at start",
        )?;
        self.transport_mode.check(server.scheme)?;
        Ok((server, token))
    }

    /// The proxy links to `server` go through: `--proxy`, else the
    /// environment (`HTTPS_PROXY`, `NO_PROXY`, … as curl reads them), or
    /// what is wrong with the one given.
    pub fn proxy_for(&self, server: &ServerUrl) -> Result<Option<Proxy>, String> {
        local_agent::choose_proxy(self.proxy.as_ref().map(Secret::expose), server, |name| {
            std::env::var(name).ok()
        })
    }

    /// `--ca` (read now, so a bad file is said before any dial) and
    /// `--insecure`.
    pub fn transport(&self) -> Result<TransportOptions, String> {
        let mut tls = TlsOptions::default().insecure(self.insecure);
        if let Some(path) = &self.ca {
            tls = tls.with_ca_file(path)?;
        }
        Ok(TransportOptions {
            tls,
            mode: self.transport_mode,
        })
    }
}

/// `--transport`'s values, with what each means for `--help`.
fn transport_modes() -> impl TypedValueParser<Value = TransportMode> {
    PossibleValuesParser::new([
        PossibleValue::new("auto").help(
            "Upgrade: tcp, falling back to WebSocket when a router in front refuses it or holds the link",
        ),
        PossibleValue::new("tcp").help("Upgrade: tcp only"),
        PossibleValue::new("websocket").help("WebSocket only, for routers that pass nothing else"),
    ])
    .map(|mode| mode.parse().expect("one of the possible values"))
}
