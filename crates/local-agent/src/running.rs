//! What the handles of a running agent and a running forward share: the
//! task, the way to stop it, and its events and state.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::events::{CloseReason, Events, State};
use crate::report::Reporter;

/// A spawned agent or forward. Dropping it stops the task.
#[derive(Debug)]
pub(crate) struct Running<E> {
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    reporter: Arc<Reporter>,
    state: watch::Receiver<State>,
    task: Option<JoinHandle<Result<(), E>>>,
    outcome: Option<Result<(), E>>,
}

impl<E: Clone + Send + 'static> Running<E> {
    /// Spawns `run(stop)`, which says why it stopped; its end is reported
    /// as the last event, [`Event::Closed`].
    pub fn spawn<F>(
        reporter: Arc<Reporter>,
        run: impl FnOnce(CancellationToken) -> F,
        failed: fn(&E) -> CloseReason,
    ) -> Running<E>
    where
        F: Future<Output = Result<CloseReason, E>> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let running = run(stop.clone());
        let closing = reporter.clone();
        let task = tokio::spawn(async move {
            let outcome = running.await;
            closing.closed(match &outcome {
                Ok(reason) => reason.clone(),
                Err(err) => failed(err),
            });
            outcome.map(drop)
        });
        Running {
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            state: reporter.watch(),
            reporter,
            task: Some(task),
            outcome: None,
        }
    }

    pub fn events(&self) -> Events {
        Events::new(self.reporter.subscribe())
    }

    pub fn state(&self) -> State {
        self.state.borrow().clone()
    }

    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.state.clone()
    }

    /// Asks the task to stop (it drains), then waits for it.
    pub async fn shutdown(&mut self) -> Result<(), E> {
        self.reporter.draining();
        self.stop.cancel();
        self.wait().await
    }

    /// Waits for the task to end; cancel-safe, and the same answer again
    /// once it has ended.
    pub async fn wait(&mut self) -> Result<(), E> {
        if let Some(task) = &mut self.task {
            let joined = task.await;
            self.task = None;
            self.outcome = Some(match joined {
                Ok(outcome) => outcome,
                // A bug in the task is not a clean exit for its program.
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Ok(()),
            });
        }
        self.outcome.clone().unwrap_or(Ok(()))
    }
}

/// Whether there is a Tokio runtime to spawn on, or what to do.
pub(crate) fn check_runtime(what: &str) -> Result<(), String> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "{what} runs on a Tokio runtime: start it from inside one (#[tokio::main])"
        )),
    }
}
