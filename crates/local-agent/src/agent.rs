//! The agent: keeps links to the public server, reconnecting with backoff,
//! and serves each stream the server opens by dialing the channel's target.
//! [`Agent`] starts one and returns its [`AgentHandle`]; the `local-agent`
//! binary, [`run_agent`] and embedding programs all start it that way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::channel::ChannelConfig;
use crate::events::CloseReason;
use crate::idle_exit::Activity;
use crate::report::Reporter;
use crate::target::StartRequest;
use crate::transport::Choice;

mod builder;
mod config;
mod handle;
mod link;
mod stream;

pub(crate) use builder::placeholder;
pub use builder::AgentBuilder;
pub use config::{AgentConfig, AgentError};
pub use handle::AgentHandle;

/// Channel name → what serving it means.
type Channels = Arc<HashMap<String, ChannelConfig>>;

/// Starts agents: [`Agent::builder`] for a program that sets things one by
/// one, [`Agent::from_config`] for one that has an [`AgentConfig`].
#[derive(Debug)]
pub struct Agent(());

impl Agent {
    /// An agent to configure: at least [`server`](AgentBuilder::server),
    /// [`token`](AgentBuilder::token) and one
    /// [`channel`](AgentBuilder::channel), then
    /// [`start`](AgentBuilder::start).
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// Starts an agent as `config` says; see [`AgentBuilder::start`].
    pub fn from_config(config: AgentConfig) -> Result<AgentHandle, AgentError> {
        handle::start(Prepared::new(config)?)
    }
}

/// Runs the agent until `shutdown` is cancelled or the server refuses it:
/// [`Agent::from_config`], then [`AgentHandle::shutdown`] once `shutdown`
/// is cancelled (GOAWAY, and open streams get `config.grace` to finish).
pub async fn run_agent(config: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let mut agent = Agent::from_config(config)?;
    tokio::select! {
        done = agent.wait() => done,
        _ = shutdown.cancelled() => agent.shutdown().await,
    }
}

/// A configuration whose channels were checked against each other.
struct Prepared {
    config: Arc<AgentConfig>,
    targets: Channels,
    /// What one link learns about the router in front, the others use.
    choice: Arc<Choice>,
}

impl Prepared {
    fn new(config: AgentConfig) -> Result<Prepared, AgentError> {
        if config.channels.is_empty() {
            return Err(AgentError::Config(
                "no channel to serve: name one, as in --channel web=127.0.0.1:3000".into(),
            ));
        }
        let mut table = crate::channel::table(&config.channels, &config.proxy_protocol)
            .map_err(AgentError::Config)?;
        crate::channel::set_idle_timeouts(&mut table, &config.idle_timeouts)
            .map_err(AgentError::Config)?;
        if let Some(dir) = &config.pty_cwd {
            crate::channel::set_cwd(&mut table, dir).map_err(AgentError::Config)?;
        }
        let choice =
            Choice::new(config.transport.mode, config.server.scheme).map_err(AgentError::Config)?;
        Ok(Prepared {
            config: Arc::new(config),
            targets: Arc::new(table),
            choice: Arc::new(choice),
        })
    }
}

/// Runs `config.links` links, each kept up on its own, until `stop` is
/// cancelled or one of them fails for good; returns why it stopped.
async fn run(
    prepared: Prepared,
    reporter: Arc<Reporter>,
    stop: CancellationToken,
) -> Result<CloseReason, AgentError> {
    let Prepared {
        config,
        targets,
        choice,
    } = prepared;
    // Targets with a process of their own (a session) start with the
    // agent, and are hung up when it returns.
    let stop_sessions = CancellationToken::new();
    let _hang_up_sessions = stop_sessions.clone().drop_guard();
    for channel in targets.values() {
        channel.target.kind().start(StartRequest {
            session: &config.session,
            cwd: channel.cwd.as_deref(),
            stop: &stop_sessions,
        });
    }
    let idle = CancellationToken::new();
    let activity = config
        .exit_when_idle
        .map(|limit| watch_idle(limit, &stop, &idle, &reporter));
    let serving = stream::Serving {
        targets,
        activity,
        reporter: reporter.clone(),
        timeout: config.target_timeout,
    };
    let mut links = tokio::task::JoinSet::new();
    for index in 0..config.links.max(1) {
        let link = link::Link {
            index,
            config: config.clone(),
            serving: serving.clone(),
            choice: choice.clone(),
            reporter: reporter.clone(),
        };
        links.spawn(link.keep_up(stop.clone()));
    }
    let mut outcome = Ok(());
    while let Some(done) = links.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                // A refusal ends every link: the next would be refused the same way.
                stop.cancel();
                outcome = outcome.and(Err(err));
            }
            // A bug in one link's loop is not a clean exit for the agent.
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => {}
        }
    }
    outcome?;
    Ok(match idle.is_cancelled() {
        true => CloseReason::Idle,
        false => CloseReason::Shutdown,
    })
}

/// Stops the agent through `stop` (cancelling `idle` first, to say why)
/// once no stream has been open for `limit`; returns the count the
/// streams keep.
fn watch_idle(
    limit: Duration,
    stop: &CancellationToken,
    idle: &CancellationToken,
    reporter: &Arc<Reporter>,
) -> Arc<Activity> {
    let activity = Arc::new(Activity::default());
    let (watched, stop, idle, reporter) = (
        activity.clone(),
        stop.clone(),
        idle.clone(),
        reporter.clone(),
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = watched.idle_for(limit) => {
                info!(
                    idle_secs = limit.as_secs_f64(),
                    "no stream open for that long: exiting (--exit-when-idle)"
                );
                idle.cancel();
                reporter.draining();
                stop.cancel();
            }
            _ = stop.cancelled() => {}
        }
    });
    activity
}
