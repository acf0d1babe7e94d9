//! A running agent, as the program that started it holds it: its events,
//! its state, and the way to stop it.

use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{AgentError, Prepared};
use crate::events::{CloseReason, Event, Events, State};
use crate::report::Reporter;

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
pub struct AgentHandle {
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    reporter: Arc<Reporter>,
    state: watch::Receiver<State>,
    /// Subscribed before the agent started, for the first `events()`.
    first: Mutex<Option<broadcast::Receiver<Event>>>,
    task: Option<JoinHandle<Result<(), AgentError>>>,
    outcome: Option<Result<(), AgentError>>,
}

/// Spawns the agent `prepared` describes.
pub(super) fn start(prepared: Prepared) -> Result<AgentHandle, AgentError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(AgentError::Config(
            "an agent runs on a Tokio runtime: start it from inside one (#[tokio::main])".into(),
        ));
    }
    let reporter = Arc::new(Reporter::new(prepared.config.links.max(1)));
    let first = reporter.subscribe();
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(prepared, reporter.clone(), stop.clone()));
    Ok(AgentHandle {
        _stop_on_drop: stop.clone().drop_guard(),
        stop,
        state: reporter.watch(),
        reporter,
        first: Mutex::new(Some(first)),
        task: Some(task),
        outcome: None,
    })
}

/// Runs the agent and sends its last event.
async fn run(
    prepared: Prepared,
    reporter: Arc<Reporter>,
    stop: CancellationToken,
) -> Result<(), AgentError> {
    let outcome = super::run(prepared, reporter.clone(), stop).await;
    let reason = match &outcome {
        Ok(reason) => reason.clone(),
        Err(err) => CloseReason::Failed(err.clone()),
    };
    reporter.closed(reason);
    outcome.map(drop)
}

impl AgentHandle {
    /// The agent's events from now on, up to and including
    /// [`Event::Closed`]. The first call also gets those sent since the
    /// agent started (up to the buffer: see [`Events`]), so calling it
    /// right after `start` misses nothing.
    pub fn events(&self) -> Events {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        Events::new(first.take().unwrap_or_else(|| self.reporter.subscribe()))
    }

    /// Where the agent stands now.
    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    /// The state, to await its changes (`changed()`); it keeps only the
    /// latest, so a slow reader skips states but never blocks the agent.
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Stops the agent: each link sends GOAWAY and refuses new streams,
    /// open streams get the grace to finish, then the links close and
    /// [`Event::Closed`] is sent. Returns what [`wait`](Self::wait) would:
    /// `Ok` unless it had already stopped for a failure.
    pub async fn shutdown(mut self) -> Result<(), AgentError> {
        self.reporter.draining();
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the agent stops by itself: a refusal retrying cannot
    /// fix, the retry policy giving up (`Err`), or `exit_when_idle` (`Ok`).
    /// Cancel-safe; once it has returned it returns the same again.
    pub async fn wait(&mut self) -> Result<(), AgentError> {
        if let Some(task) = &mut self.task {
            let joined = task.await;
            self.task = None;
            self.outcome = Some(match joined {
                Ok(outcome) => outcome,
                // A bug in the agent is not a clean exit for its program.
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Ok(()),
            });
        }
        self.outcome.clone().unwrap_or(Ok(()))
    }
}
