//! `--channel NAME=session:COMMAND`: one long-lived COMMAND on one pty,
//! started with the agent and shared by every stream on the channel (as
//! `kubectl attach` or ptyme): each stream sees its output, the recent
//! screen first, and may type into it. The parts: `ring` (the recent
//! output), `hub` (the fan-out that never waits on a slow stream), `size`
//! (the smallest writer's size), `process` (running and restarting
//! COMMAND) and `attachment` (one stream).

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use uptun_protocol::TermSize;

use super::idle::Idle;
use super::{BoxFuture, Kind, OpenRequest, Opened, StartRequest};

mod attachment;
mod hub;
mod process;
mod ring;
mod size;

use hub::{Hub, Limits};
use size::Sizes;

/// How much recent output a late joiner sees: a full 80×24 screen of
/// colourful text, with room to spare, by default.
pub const DEFAULT_RING: usize = 64 * 1024;

/// What an attachment may have queued before it skips ahead: room for a
/// burst while the stream's window is full, not more.
const QUEUE_BYTES: usize = 256 * 1024;
const QUEUE_ENTRIES: usize = 1024;

/// Keystrokes waiting for the process to read them, from every attachment
/// together; a process that reads nothing holds its writers back.
const INPUT_QUEUE: usize = 64;

/// What to do when COMMAND exits (`--session-restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionRestart {
    /// Run it once: later streams are refused, saying how it ended.
    Never,
    /// Start it again (after a backoff if it keeps exiting at once).
    #[default]
    OnExit,
}

impl std::str::FromStr for SessionRestart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(SessionRestart::Never),
            "on-exit" => Ok(SessionRestart::OnExit),
            _ => Err(format!(
                "{s:?} is not a restart policy: use never or on-exit"
            )),
        }
    }
}

impl fmt::Display for SessionRestart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionRestart::Never => "never",
            SessionRestart::OnExit => "on-exit",
        })
    }
}

/// How the agent runs its `session:` channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    pub restart: SessionRestart,
    /// Bytes of recent output kept for late joiners.
    pub ring_bytes: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            restart: SessionRestart::default(),
            ring_bytes: DEFAULT_RING,
        }
    }
}

#[derive(Debug)]
pub(super) struct Session {
    command: String,
    /// Set when the agent starts it; a session starts once.
    shared: OnceLock<Arc<Shared>>,
}

/// What the process's task and the attachments share.
#[derive(Debug)]
struct Shared {
    hub: Arc<Hub>,
    sizes: Mutex<Sizes>,
    /// The session's size, for the process's task to apply.
    size: watch::Sender<TermSize>,
    input: mpsc::Sender<Bytes>,
    /// Why streams are refused, once the session is over for good.
    over: Mutex<Option<String>>,
}

impl Session {
    pub fn parse(command: &str) -> Result<Session, String> {
        if command.trim().is_empty() {
            return Err(
                "session: needs a command to run, as in session:bash or session:'tail -f app.log'"
                    .into(),
            );
        }
        Ok(Session {
            command: command.into(),
            shared: OnceLock::new(),
        })
    }
}

impl Shared {
    /// Attachment `id` sent its terminal's size.
    fn vote(&self, id: u64, size: TermSize) {
        let changed = lock(&self.sizes).vote(id, size);
        if let Some(size) = changed {
            self.size.send_replace(size);
        }
    }

    /// Attachment `id` left: its size no longer counts.
    fn withdraw(&self, id: u64) {
        let changed = lock(&self.sizes).withdraw(id);
        if let Some(size) = changed {
            self.size.send_replace(size);
        }
    }

    fn over(&self) -> Option<String> {
        lock(&self.over).clone()
    }
}

/// Bookkeeping behind a lock stays usable after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session:{}", self.command)
    }
}

impl Kind for Session {
    fn open<'a>(&'a self, request: OpenRequest<'a>) -> BoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let Some(shared) = self.shared.get().cloned() else {
                return Err(format!("{self} has not been started"));
            };
            if let Some(reason) = shared.over() {
                return Err(reason);
            }
            let idle = Idle::new(request.idle_timeout);
            let opened: Opened =
                Box::new(move |stream| Box::pin(attachment::relay(stream, shared, idle)));
            Ok(opened)
        })
    }

    fn takes_idle_timeout(&self) -> bool {
        true
    }

    fn start(&self, request: StartRequest<'_>) {
        let options = request.session;
        let limits = Limits {
            ring_bytes: options.ring_bytes,
            queue_bytes: QUEUE_BYTES,
            queue_entries: QUEUE_ENTRIES,
        };
        let (input, input_rx) = mpsc::channel(INPUT_QUEUE);
        let shared = Arc::new(Shared {
            hub: Arc::new(Hub::new(limits)),
            sizes: Mutex::new(Sizes::new()),
            size: watch::Sender::new(TermSize::DEFAULT),
            input,
            over: Mutex::new(None),
        });
        if self.shared.set(shared.clone()).is_err() {
            return;
        }
        let run = process::Run {
            command: self.command.clone(),
            restart: options.restart,
            cwd: request.cwd.map(Into::into),
            stop: request.stop.clone(),
        };
        tokio::spawn(process::run(run, shared, input_rx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_and_the_restart_policy() {
        let session = Session::parse("tail -f app.log").unwrap();
        assert_eq!(session.to_string(), "session:tail -f app.log");
        let err = Session::parse(" ").unwrap_err();
        assert!(err.contains("session:bash"), "{err}");
        assert_eq!("never".parse(), Ok(SessionRestart::Never));
        assert_eq!("on-exit".parse(), Ok(SessionRestart::OnExit));
        let err = "always".parse::<SessionRestart>().unwrap_err();
        assert!(err.contains("use never or on-exit"), "{err}");
    }
}
