//! The session's process: COMMAND on one pty, its output published to the
//! hub, the attachments' input and the session's size applied to it; when
//! it exits, the attached streams end with its status, and it is started
//! again or the session is over (`--session-restart`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uptun_protocol::ExitStatus;

use super::{lock, SessionRestart, Shared};
use crate::retry::Backoff;
use crate::target::terminal::{Input, Output, Pty, Spec, Terminal, DEFAULT_TERM, HANG_UP_GRACE};

/// Reads from the pty of up to this much; each is copied out at its own
/// length, so what the hub holds is what it counts.
const READ_CHUNK: usize = 16 * 1024;

/// Restarts of a command that keeps exiting at once back off from here to
/// the cap; one that ran this long before exiting starts from the bottom.
const RESTART_FIRST: Duration = Duration::from_millis(500);
const RESTART_MAX: Duration = Duration::from_secs(30);
const RAN_WELL: Duration = Duration::from_secs(10);

/// How long the output of an exited process is still read: children that
/// keep the pty open outside its process group must not hold the end back.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub(super) struct Run {
    pub command: String,
    pub restart: SessionRestart,
    pub cwd: Option<PathBuf>,
    /// Cancelled when the agent is done: the process is hung up.
    pub stop: CancellationToken,
}

/// Runs the session until the agent stops, or until COMMAND exits for
/// good under `never`.
pub(super) async fn run(run: Run, shared: Arc<Shared>, mut input: mpsc::Receiver<Bytes>) {
    let mut backoff = Backoff::new(RESTART_FIRST, RESTART_MAX);
    loop {
        let started = Instant::now();
        let (status, ended) = match start(&run, &shared) {
            Ok(terminal) => {
                info!(session = %run.command, pid = terminal.process.id(), "session started");
                match serve(terminal, &shared, &mut input, &run.stop).await {
                    Some(status) => {
                        info!(session = %run.command, %status, "session ended");
                        (Some(status), status.to_string())
                    }
                    None => return,
                }
            }
            Err(reason) => {
                warn!(session = %run.command, %reason, "session could not start");
                (None, reason)
            }
        };
        shared.hub.end(status);
        if run.restart == SessionRestart::Never {
            // A stream accepted just now, past the refusal below, ends too.
            shared.hub.close(status);
            *lock(&shared.over) = Some(format!(
                "session `{}` is over ({ended}), and the agent runs it only once \
                 (--session-restart never): restart the agent to run it again",
                run.command
            ));
            return;
        }
        if started.elapsed() >= RAN_WELL {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = run.stop.cancelled() => return,
        }
    }
}

fn start(run: &Run, shared: &Shared) -> Result<Terminal, String> {
    let spec = Spec {
        command: &run.command,
        cwd: run.cwd.as_deref(),
        term: DEFAULT_TERM,
        size: *shared.size.borrow(),
    };
    let terminal = Pty::open()?.spawn(&spec)?;
    // A new process draws a new screen: joiners see its output only.
    shared.hub.clear_ring();
    Ok(terminal)
}

/// Serves one process until it exits (its status) or the agent stops
/// (`None`); either way its process group is hung up before returning.
async fn serve(
    terminal: Terminal,
    shared: &Shared,
    input: &mut mpsc::Receiver<Bytes>,
    stop: &CancellationToken,
) -> Option<ExitStatus> {
    let Terminal {
        output,
        input: keys,
        mut process,
    } = terminal;
    let pump = pump(output, shared);
    tokio::pin!(pump);
    let feed = feed(keys, input, shared);
    tokio::pin!(feed);
    let (mut pumped, mut fed) = (false, false);
    let status = loop {
        tokio::select! {
            status = process.wait() => break Some(status),
            () = &mut pump, if !pumped => pumped = true,
            () = &mut feed, if !fed => fed = true,
            () = stop.cancelled() => break None,
        }
    };
    // What it printed last still reaches everyone, while whatever it left
    // running in its group gets SIGHUP (and SIGKILL after the grace).
    let drain = async {
        if !pumped {
            let _ = tokio::time::timeout(DRAIN_LIMIT, pump).await;
        }
    };
    tokio::join!(drain, process.hang_up(HANG_UP_GRACE));
    status
}

/// Publishes the process's output until the pty closes.
async fn pump(mut output: Output, shared: &Shared) {
    while let Ok(Some(chunk)) = output.read(READ_CHUNK).await {
        shared.hub.publish(Bytes::copy_from_slice(&chunk));
    }
}

/// Types the attachments' input and applies the session's size. Sizes are
/// applied between writes (a write waits only while the process reads no
/// input at all), and first: a RESIZE a stream sent before typing is in
/// place when the process reads what it typed.
async fn feed(mut keys: Input, input: &mut mpsc::Receiver<Bytes>, shared: &Shared) {
    let mut size = shared.size.subscribe();
    let _ = keys.resize(*size.borrow_and_update());
    loop {
        tokio::select! {
            biased;
            Ok(()) = size.changed() => {
                let _ = keys.resize(*size.borrow_and_update());
            }
            data = input.recv() => match data {
                Some(data) => {
                    if keys.write(&data).await.is_err() {
                        break;
                    }
                }
                // `Shared` holds a sender for as long as the session lives.
                None => break,
            },
        }
    }
}
