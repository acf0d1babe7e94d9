//! A running agent, as the program that started it holds it: its events,
//! its state, and the way to stop it.

use std::sync::Arc;

use tokio::sync::watch;

use super::{AgentError, Prepared};
use crate::events::{CloseReason, Events, State};
use crate::report::Reporter;
use crate::running::{check_runtime, Running};

/// A running agent. Dropping it stops the agent as
/// [`shutdown`](AgentHandle::shutdown) would, without waiting.
///
/// A part of the program that comes late reads the state instead of the
/// events it missed:
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # let config = public_server::Config::new("s3cret");
/// # tokio::spawn(public_server::run(listener, config, public_server::Shutdown::new()));
/// use local_agent::{Agent, State};
///
/// let agent = Agent::builder()
///     .server(url.parse()?)
///     .token("s3cret")
///     .channel("web", "127.0.0.1:3000".parse()?)
///     .start()?;
/// let mut state = agent.watch_state();
/// state.wait_for(|s| matches!(s, State::Ready { .. })).await?;
/// assert!(matches!(agent.state(), State::Ready { up: 1, links: 1 }));
/// agent.shutdown().await?;
/// assert!(state.borrow().is_closed());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AgentHandle(Running<AgentError>);

/// Spawns the agent `prepared` describes.
pub(super) fn start(prepared: Prepared) -> Result<AgentHandle, AgentError> {
    check_runtime("an agent").map_err(AgentError::Config)?;
    let reporter = Arc::new(Reporter::new(prepared.config.links.max(1)));
    let run = {
        let reporter = reporter.clone();
        move |stop| super::run(prepared, reporter, stop)
    };
    let failed = |err: &AgentError| CloseReason::Failed(err.clone());
    Ok(AgentHandle(Running::spawn(reporter, run, failed)))
}

impl AgentHandle {
    /// The agent's events from now on, up to and including
    /// [`Event::Closed`](crate::Event::Closed). The first call also gets
    /// those sent since the agent started (up to the buffer: see
    /// [`Events`]), so calling it right after `start` misses nothing.
    pub fn events(&self) -> Events {
        self.0.events()
    }

    /// Where the agent stands now.
    pub fn state(&self) -> State {
        self.0.state()
    }

    /// The state, to await its changes (`changed()`, `wait_for`); it keeps
    /// only the latest, so a slow reader skips states but never blocks
    /// the agent.
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.0.watch_state()
    }

    /// Stops the agent: each link sends GOAWAY and refuses new streams,
    /// open streams get the grace to finish, then the links close and
    /// [`Event::Closed`](crate::Event::Closed) is sent. Returns what
    /// [`wait`](Self::wait) would: `Ok` unless it had already stopped for
    /// a failure.
    pub async fn shutdown(mut self) -> Result<(), AgentError> {
        self.0.shutdown().await
    }

    /// Waits until the agent stops by itself: a refusal retrying cannot
    /// fix, the retry policy giving up (`Err`), or `exit_when_idle` (`Ok`).
    /// Cancel-safe; once it has returned it returns the same again.
    pub async fn wait(&mut self) -> Result<(), AgentError> {
        self.0.wait().await
    }
}
