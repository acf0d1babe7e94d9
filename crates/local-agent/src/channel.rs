//! One served channel as the agent runs it: the target and the per-channel
//! settings (the PROXY header, the idle timeout, where terminals start),
//! and how a stream reaches that target.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::proxy_header::ProxyProtocol;
use crate::target::{OpenRequest, Opened, Target};

/// What the agent does with a stream on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChannelConfig {
    pub target: Target,
    /// Header written to the target ahead of the user's bytes, if any.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Close a stream after this long with nothing either way
    /// (`--idle-timeout`), for kinds that watch their traffic.
    pub idle_timeout: Option<Duration>,
    /// Where terminal kinds start their command (`--pty-cwd`).
    pub cwd: Option<PathBuf>,
}

impl ChannelConfig {
    /// Gets the target ready for a stream from `user` (the OPEN frame's
    /// address text): dials it and writes the channel's PROXY header, or
    /// starts its process. Errors read as reasons for REFUSE ("could not
    /// reach …").
    pub async fn connect(&self, user: &str, timeout: Duration) -> Result<Opened, String> {
        let request = OpenRequest {
            user,
            timeout,
            proxy_protocol: self.proxy_protocol,
            term: None,
            idle_timeout: self.idle_timeout,
            cwd: self.cwd.as_deref(),
        };
        self.target.kind().open(request).await
    }
}

/// The channel table: each `--channel` with its `--proxy-protocol`, or a
/// message saying which flag to fix.
pub(crate) fn table(
    channels: &[(String, Target)],
    proxy_protocol: &[(String, ProxyProtocol)],
) -> Result<HashMap<String, ChannelConfig>, String> {
    let mut table: HashMap<String, ChannelConfig> = channels
        .iter()
        .map(|(name, target)| {
            let config = ChannelConfig {
                target: target.clone(),
                proxy_protocol: None,
                idle_timeout: None,
                cwd: None,
            };
            (name.clone(), config)
        })
        .collect();
    for (name, version) in proxy_protocol {
        let Some(channel) = table.get_mut(name) else {
            let mut served: Vec<&str> = channels.iter().map(|(n, _)| n.as_str()).collect();
            served.sort_unstable();
            return Err(format!(
                "--proxy-protocol {name}={version}: this agent serves no channel \"{name}\"; \
                 name one of {} or add --channel {name}=HOST:PORT",
                served.join(", ")
            ));
        };
        if !channel.target.kind().takes_proxy_header() {
            return Err(format!(
                "--proxy-protocol {name}={version}: channel \"{name}\" leads to {}, which \
                 takes no PROXY header; drop the flag for it",
                channel.target
            ));
        }
        if channel.proxy_protocol.is_some_and(|v| v != *version) {
            return Err(format!(
                "--proxy-protocol names channel \"{name}\" twice with different versions: keep one"
            ));
        }
        channel.proxy_protocol = Some(*version);
    }
    Ok(table)
}

/// `--pty-cwd DIR` for every channel (only terminal kinds read it), once
/// DIR is known to be a directory.
pub(crate) fn set_cwd(
    table: &mut HashMap<String, ChannelConfig>,
    dir: &std::path::Path,
) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!(
            "--pty-cwd {}: there is no such directory here; give one that exists",
            dir.display()
        ));
    }
    for channel in table.values_mut() {
        channel.cwd = Some(dir.to_path_buf());
    }
    Ok(())
}

/// Sets each `--idle-timeout NAME=DURATION` on its channel, or says which
/// flag to fix: a channel not served, one whose kind does not watch its
/// traffic, or one named twice.
pub(crate) fn set_idle_timeouts(
    table: &mut HashMap<String, ChannelConfig>,
    idle_timeouts: &[(String, Duration)],
) -> Result<(), String> {
    for (name, limit) in idle_timeouts {
        let flag = format!("--idle-timeout {name}={}s", limit.as_secs_f64());
        let Some(channel) = table.get_mut(name) else {
            let mut served: Vec<&str> = table.keys().map(String::as_str).collect();
            served.sort_unstable();
            return Err(format!(
                "{flag}: this agent serves no channel \"{name}\"; name one of {}",
                served.join(", ")
            ));
        };
        if !channel.target.kind().takes_idle_timeout() {
            return Err(format!(
                "{flag}: channel \"{name}\" leads to {}, and only pty: and session: channels \
                 close idle streams; drop the flag for it",
                channel.target
            ));
        }
        if channel.idle_timeout.is_some_and(|l| l != *limit) {
            return Err(format!(
                "--idle-timeout names channel \"{name}\" twice with different durations: keep one"
            ));
        }
        channel.idle_timeout = Some(*limit);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn web() -> Vec<(String, Target)> {
        vec![("web".into(), "127.0.0.1:8080".parse().unwrap())]
    }

    #[test]
    fn the_table_joins_channels_and_their_proxy_setting() {
        let table = table(&web(), &[("web".into(), ProxyProtocol::V2)]).unwrap();
        assert_eq!(table["web"].proxy_protocol, Some(ProxyProtocol::V2));
        let table = super::table(&web(), &[]).unwrap();
        assert_eq!(table["web"].proxy_protocol, None);
    }

    #[test]
    fn proxy_protocol_for_a_channel_not_served_says_what_to_write() {
        let err = table(&web(), &[("ssh".into(), ProxyProtocol::V1)]).unwrap_err();
        assert!(err.contains("serves no channel \"ssh\""), "{err}");
        assert!(err.contains("name one of web"), "{err}");
        assert!(err.contains("--channel ssh=HOST:PORT"), "{err}");
        let twice = [
            ("web".into(), ProxyProtocol::V1),
            ("web".into(), ProxyProtocol::V2),
        ];
        assert!(table(&web(), &twice).unwrap_err().contains("keep one"));
    }

    #[test]
    fn idle_timeouts_go_to_terminal_channels_and_mistakes_say_the_fix() {
        let channels = vec![
            ("web".into(), "127.0.0.1:8080".parse().unwrap()),
            ("console".into(), "pty:sh".parse().unwrap()),
        ];
        let mut table = table(&channels, &[]).unwrap();
        let minute = Duration::from_secs(60);
        set_idle_timeouts(&mut table, &[("console".into(), minute)]).unwrap();
        assert_eq!(table["console"].idle_timeout, Some(minute));
        assert_eq!(table["web"].idle_timeout, None);
        let err = set_idle_timeouts(&mut table, &[("db".into(), minute)]).unwrap_err();
        assert!(
            err.contains("serves no channel \"db\"; name one of console, web"),
            "{err}"
        );
        let err = set_idle_timeouts(&mut table, &[("web".into(), minute)]).unwrap_err();
        assert!(
            err.contains("--idle-timeout web=60s: channel \"web\" leads to 127.0.0.1:8080"),
            "{err}"
        );
        assert!(err.contains("drop the flag"), "{err}");
        let twice = [("console".into(), minute), ("console".into(), 2 * minute)];
        let err = set_idle_timeouts(&mut table, &twice).unwrap_err();
        assert!(err.contains("keep one"), "{err}");
    }

    /// The header arrives first on a real socket, naming the target as the
    /// agent reached it.
    #[tokio::test]
    async fn a_tcp_target_reads_the_header_before_anything_else() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target_addr = listener.local_addr().unwrap();
        let channel = ChannelConfig {
            target: target_addr.to_string().parse().unwrap(),
            proxy_protocol: Some(ProxyProtocol::V1),
            idle_timeout: None,
            cwd: None,
        };
        let timeout = Duration::from_secs(10);
        let connected = channel.connect("203.0.113.5:51234", timeout).await;
        let (mut socket, _) = listener.accept().await.unwrap();
        drop(connected.unwrap());
        let mut got = String::new();
        socket.read_to_string(&mut got).await.unwrap();
        let want = format!(
            "PROXY TCP4 203.0.113.5 127.0.0.1 51234 {}\r\n",
            target_addr.port()
        );
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_unix_target_gets_a_v2_header_with_the_user() {
        let dir = std::env::temp_dir().join(format!("uptun-pp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("target.sock");
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let channel = ChannelConfig {
            target: format!("unix:{}", path.display()).parse().unwrap(),
            proxy_protocol: Some(ProxyProtocol::V2),
            idle_timeout: None,
            cwd: None,
        };
        let connected = channel.connect("203.0.113.5:51234", Duration::from_secs(10));
        let connected = connected.await.unwrap();
        let (mut socket, _) = listener.accept().await.unwrap();
        drop(connected);
        let mut got = Vec::new();
        socket.read_to_end(&mut got).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let parsed = ppp::v2::Header::try_from(got.as_slice()).unwrap();
        assert_eq!(parsed.len(), got.len(), "nothing after the header");
        assert_eq!(
            parsed.addresses,
            ppp::v2::IPv4::new([203, 0, 113, 5], [0, 0, 0, 0], 51234, 0).into()
        );
    }
}
