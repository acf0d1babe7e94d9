//! [`ForwardBuilder`]: a forward's settings one call at a time, then `start`.

use std::time::Duration;

use uptun_protocol::Secret;

use super::{ForwardError, ForwardHandle};
use crate::client::{ClientConfig, ForwardSpec};
use crate::dial::ServerUrl;
use crate::transport::{Proxy, TransportOptions};

/// A forward being configured; from [`Forward::builder`](super::Forward::builder).
/// Every setting but the server, the token and the ports has the default
/// `local-agent forward` has.
#[derive(Debug, Clone, Default)]
pub struct ForwardBuilder {
    server: Option<ServerUrl>,
    token: Option<Secret>,
    /// Everything else, in `ClientConfig`'s shape: `server` and `token`
    /// are filled in by `start`.
    rest: Option<ClientConfig>,
    specs: Vec<ForwardSpec>,
}

impl ForwardBuilder {
    /// The public server, as `http://HOST[:PORT]`, `https://…`, `ws://…`
    /// or `wss://…` (parse one from a string).
    pub fn server(mut self, url: ServerUrl) -> Self {
        self.server = Some(url);
        self
    }

    /// One of the server's client tokens (`--client-token`).
    pub fn token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Listens on `addr` (`127.0.0.1:2222`; port 0 lets the system choose,
    /// and `Ready` says which) and carries each connection to `channel`.
    /// Repeatable.
    pub fn listen(mut self, addr: impl Into<String>, channel: impl Into<String>) -> Self {
        self.specs.push(ForwardSpec {
            listen: addr.into(),
            channel: channel.into(),
        });
        self
    }

    /// Adds `specs` (`LISTEN=CHANNEL`, as the command line parses them).
    pub fn specs(mut self, specs: impl IntoIterator<Item = ForwardSpec>) -> Self {
        self.specs.extend(specs);
        self
    }

    /// Takes every setting of `config`: server, token, proxy, transport,
    /// link tunables and grace.
    pub fn client(mut self, config: ClientConfig) -> Self {
        self.server = Some(config.server.clone());
        self.token = Some(config.token.clone());
        self.rest = Some(config);
        self
    }

    /// Reaches the server through this HTTP proxy (CONNECT).
    pub fn proxy(self, proxy: Proxy) -> Self {
        self.with(|c| c.proxy = Some(proxy))
    }

    /// TLS trust (`--ca`, `--insecure`) and the transport (`--transport`).
    pub fn transport(self, transport: TransportOptions) -> Self {
        self.with(|c| c.transport = transport)
    }

    /// Link tunables (window, ping interval, …).
    pub fn mux(self, mux: uptun_protocol::Config) -> Self {
        self.with(|c| c.mux = mux)
    }

    /// Once asked to stop, how long open connections get to finish.
    pub fn grace(self, grace: Duration) -> Self {
        self.with(|c| c.grace = grace)
    }

    fn with(mut self, change: impl FnOnce(&mut ClientConfig)) -> Self {
        change(self.rest.get_or_insert_with(|| ClientConfig {
            server: crate::agent::placeholder(),
            token: Secret::default(),
            proxy: None,
            transport: TransportOptions::default(),
            mux: uptun_protocol::Config::default(),
            grace: uptun_cli::DEFAULT_GRACE,
        }));
        self
    }

    /// Dials the server (a wrong URL or token fails here), binds every
    /// address (one in use fails here) and starts carrying connections.
    /// Its first event is `Ready`, with the ports bound.
    pub async fn start(mut self) -> Result<ForwardHandle, ForwardError> {
        let missing =
            |what: &str| ForwardError::Config(format!("no {what} given: {what}(…) is required"));
        let server = self.server.take().ok_or_else(|| missing("server"))?;
        let token = self.token.take().ok_or_else(|| missing("token"))?;
        for spec in &self.specs {
            if !uptun_protocol::valid_channel_name(&spec.channel) {
                let msg = format!("{:?} is not a channel name", spec.channel);
                return Err(ForwardError::Config(msg));
            }
        }
        let rest = self.with(|_| {});
        let config = ClientConfig {
            server,
            token,
            ..rest.rest.expect("set just now")
        };
        super::start(config, rest.specs).await
    }
}
