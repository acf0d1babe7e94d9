//! A public server run inside the test process (`public_server::run` on a
//! port-0 listener) with a `Config` the test writes: for what flags cannot
//! say (routes, until the config file). Agents are real `local-agent`
//! processes, as with [`crate::server::Server`].

use std::net::SocketAddr;

use public_server::Config;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::procs::Proc;

/// A running in-process server on 127.0.0.1; stopped when dropped.
pub struct InProcess {
    pub addr: SocketAddr,
    /// The agent token of the config.
    pub token: String,
    shutdown: CancellationToken,
}

impl InProcess {
    /// Starts a server whose config is `Config::new(token)` changed by `configure`.
    pub async fn start(configure: impl FnOnce(&mut Config)) -> InProcess {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = format!("test-token-{}", std::process::id());
        let mut config = Config::new(token.clone());
        configure(&mut config);
        let shutdown = CancellationToken::new();
        tokio::spawn(public_server::run(listener, config, shutdown.clone()));
        InProcess {
            addr,
            token,
            shutdown,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts an agent serving `channels` (`name=target`) and waits until
    /// its link is up (a user who comes earlier would wait for it anyway,
    /// within the connect timeout).
    pub async fn agent(&self, channels: &[String]) -> Proc {
        let url = self.url();
        let mut args = vec!["--server", url.as_str(), "--token", self.token.as_str()];
        for c in channels {
            args.extend(["--channel", c.as_str()]);
        }
        let agent = Proc::spawn("local-agent", &args);
        agent.wait_log("link up: serving channels").await;
        agent
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
