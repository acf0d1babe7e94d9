//! Clients: open streams to channels through the public server, from
//! stdin/stdout (`connect`; `attach` builds on the stream opening here) or
//! from local listening ports (`forward.rs`, on the links dialed here).

use std::time::Duration;

use tracing::info;
use uptun_protocol::handshake::PeerKind;
use uptun_protocol::{relay_exit, ExitStatus, LinkHandle, MuxStream, Secret, TermSize};

use crate::dial::{DialError, LinkParams, ServerUrl};
use crate::opener::Opened;
use crate::transport::{Choice, TransportOptions};

/// How a client reaches the server. `{:?}` shows the token as `***`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: ServerUrl,
    pub token: Secret,
    /// The HTTP proxy links go through (CONNECT), if any.
    pub proxy: Option<crate::transport::Proxy>,
    /// How to reach the server beyond its URL (`--ca`, `--insecure`).
    pub transport: TransportOptions,
    pub mux: uptun_protocol::Config,
    /// Once asked to stop, how long open connections get to finish.
    pub grace: Duration,
}

impl ClientConfig {
    /// The transport choice for this config's server, or what contradicts.
    pub(crate) fn choice(&self) -> anyhow::Result<Choice> {
        Choice::new(self.transport.mode, self.server.scheme).map_err(anyhow::Error::msg)
    }
}

/// `LISTEN=CHANNEL`: accept on LISTEN, carry each connection to CHANNEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardSpec {
    pub listen: String,
    pub channel: String,
}

impl std::str::FromStr for ForwardSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (listen, channel) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("{s:?} is not LISTEN=CHANNEL, as in 127.0.0.1:2222=ssh"))?;
        let listen = if listen.contains(':') {
            listen.to_string()
        } else {
            format!("127.0.0.1:{listen}")
        };
        if !uptun_protocol::valid_channel_name(channel) {
            return Err(format!("{channel:?} is not a channel name"));
        }
        Ok(ForwardSpec {
            listen,
            channel: channel.to_string(),
        })
    }
}

pub(crate) async fn open_link(config: &ClientConfig, choice: &Choice) -> Result<Opened, DialError> {
    let mut mux = config.mux.clone();
    mux.accept_incoming = false;
    let params = LinkParams {
        url: &config.server,
        proxy: config.proxy.as_ref(),
        transport: &config.transport,
        token: &config.token,
        kind: PeerKind::Client,
        channels: Vec::new(),
        window: config.mux.window,
        name: None,
    };
    crate::opener::open(params, &mux, choice).await
}

/// How long `connect` waits in silence for its stream's answer before it
/// says what it is waiting for: an answer within this is the usual case.
const QUIET_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Carries stdin/stdout to `channel` (ssh's ProxyCommand). Returns once both
/// directions have finished, or once the stream's FIN brought the exit
/// status of the process behind it (a terminal channel), which it returns.
///
/// A pure pipe: it sends the user's `TERM` (a terminal channel sets it for
/// its process) but no terminal size, and never touches the local
/// terminal's modes; `attach` is the terminal client.
pub async fn connect(config: ClientConfig, channel: &str) -> anyhow::Result<Option<ExitStatus>> {
    let (link, stream) = open_stream(&config, channel, None).await?;
    let result = relay_exit(stream, tokio::io::stdin(), tokio::io::stdout()).await;
    // Everything queued (the last bytes, FIN) reaches the server before we exit.
    let _ = link.flush().await;
    result
        .map(|(_, status)| status)
        .map_err(|e| anyhow::anyhow!("channel {channel}: {e}"))
}

/// Dials a link and opens an accepted stream to `channel`, sending the
/// user's `TERM` with the OPEN and, when given, the terminal's `size`
/// right behind it (before ACCEPT, as DATA may go).
pub(crate) async fn open_stream(
    config: &ClientConfig,
    channel: &str,
    size: Option<TermSize>,
) -> anyhow::Result<(LinkHandle, MuxStream)> {
    let link = open_link(config, &config.choice()?).await?.link;
    let term = local_term();
    let stream = link
        .open_with_term(channel, "stdio", term.as_deref())
        .await
        .map_err(|e| anyhow::anyhow!("channel {channel}: {e}"))?;
    if let Some(size) = size {
        let sent = stream.send_resize(size).await;
        sent.map_err(|e| anyhow::anyhow!("channel {channel}: {e}"))?;
    }
    // Waiting for ACCEPT before relaying costs one round trip to the server
    // (it holds our bytes until the agent's ACCEPT anyway), and lets a wait
    // for an unserved channel be said instead of sat through in silence.
    let answered = tokio::select! {
        answered = stream.accepted() => answered,
        _ = tokio::time::sleep(QUIET_WAIT) => {
            info!(
                %channel,
                "waiting for an agent of channel {channel:?}: the server waits up to its \
                 --connect-timeout (10 s unless set) for one to connect and accept"
            );
            stream.accepted().await
        }
    };
    answered.map_err(|e| anyhow::anyhow!("channel {channel}: {e}"))?;
    Ok((link, stream))
}

/// This terminal's type, from `TERM`, when it is one the protocol carries.
fn local_term() -> Option<String> {
    let term = std::env::var("TERM").ok()?;
    if uptun_protocol::valid_term(&term) {
        return Some(term);
    }
    tracing::debug!("TERM is not a terminal type the server passes on (1-64 of A-Z a-z 0-9 - _ . +); sending none");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_specs() {
        let s: ForwardSpec = "127.0.0.1:2222=ssh".parse().unwrap();
        assert_eq!(
            (s.listen.as_str(), s.channel.as_str()),
            ("127.0.0.1:2222", "ssh")
        );
        let s: ForwardSpec = "8080=web".parse().unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert!("8080".parse::<ForwardSpec>().is_err());
        assert!("8080=a b".parse::<ForwardSpec>().is_err());
    }
}
