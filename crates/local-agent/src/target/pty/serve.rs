//! One pty stream from start to end. The command starts at the user's
//! first size; output and input then flow at once, each at the pace of its
//! reader: a user who reads slowly holds the command back through the pty,
//! a command that reads nothing holds the user back through the stream's
//! window. The endings (docs/protocol.md §6.8):
//! - the command exits: what it printed last, then FIN with its status;
//! - the user's FIN: end of input (Ctrl-D), and the command runs on;
//! - the user's RESET or the link going: the terminal is hung up;
//! - nothing either way for `--idle-timeout`: RESET saying so, hung up.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use uptun_protocol::{
    ExitStatus, MuxStream, RelayError, RelayStats, StreamError, StreamEvent, TermSize,
};

use crate::target::idle::Idle;
use crate::target::terminal::{Input, Output, Process, Pty, Spec, Terminal, HANG_UP_GRACE};

/// The largest read from the pty: one DATA frame's worth of a burst.
const CHUNK: usize = 16 * 1024;

/// How long the start waits for the user's first RESIZE, so a command
/// that asks for its size at once (`stty size`, a full-screen program)
/// gets the user's. Data or FIN end the wait sooner: a user who types
/// first, or pipes, has no size to send.
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(300);

/// After the command exits, output still in the pty keeps coming until it
/// closes. Something the command left running may hold it open: the rest
/// is cut once the pty is quiet this long, or after `DRAIN_MAX` in all.
const DRAIN_QUIET: Duration = Duration::from_millis(250);
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// After the user's FIN, Ctrl-D again this often while the command runs:
/// a pty gives end of file to one read per Ctrl-D, and a program that
/// switches the terminal's mode (readline) drops one typed ahead.
const EOF_AGAIN: Duration = Duration::from_secs(1);

/// After the FIN with the status, how long the user has to end its side
/// before the stream is reset.
const USER_END_WAIT: Duration = Duration::from_secs(5);

/// What `open` learnt for the stream.
pub(super) struct Settings {
    pub command: String,
    pub cwd: Option<PathBuf>,
    pub term: String,
    pub idle_timeout: Option<Duration>,
}

/// Bytes moved, by the two pumps.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counts {
    fn stats(&self) -> RelayStats {
        RelayStats {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }
}

/// Runs the command for the accepted `stream` on `pty` until one of the
/// endings above.
pub(super) async fn serve(
    stream: MuxStream,
    pty: Pty,
    settings: Settings,
) -> Result<RelayStats, RelayError> {
    let first = first_event(&stream).await?;
    let Terminal {
        mut output,
        mut input,
        mut process,
    } = start(&stream, pty, &settings, first.size)?;
    let idle = Idle::new(settings.idle_timeout);
    let counts = Counts::default();
    let (exited, exited_rx) = watch::channel(false);
    let output_pump = pump_output(&stream, &mut output, &idle, &counts, exited_rx);
    let input_pump = pump_input(&stream, &mut input, &idle, &counts, first);
    tokio::pin!(output_pump, input_pump);
    let (ended, output_closed) = until_exit(
        &stream,
        &mut process,
        &idle,
        output_pump.as_mut(),
        input_pump,
    )
    .await;
    let status = match ended {
        Ok(status) => status,
        Err(err) => {
            let status = process.hang_up(HANG_UP_GRACE).await;
            tracing::debug!(stream = stream.id(), %err, %status, "pty stream ended early: hung up");
            return Err(err);
        }
    };
    // The input pump is polled no more: the command is gone. Whatever it
    // left running goes the way a hang-up takes it.
    tokio::spawn(process.hang_up(HANG_UP_GRACE));
    let _ = exited.send(true);
    if !output_closed {
        if let Ok(Err(err)) = tokio::time::timeout(DRAIN_MAX, output_pump).await {
            return Err(err);
        }
    }
    tracing::debug!(stream = stream.id(), %status, "pty command exited");
    finish(&stream, status).await?;
    Ok(counts.stats())
}

/// Starts the command on `pty` at `size`; a failure resets the stream
/// with the reason.
fn start(
    stream: &MuxStream,
    pty: Pty,
    settings: &Settings,
    size: TermSize,
) -> Result<Terminal, StreamError> {
    let spec = Spec {
        command: &settings.command,
        cwd: settings.cwd.as_deref(),
        term: &settings.term,
        size,
    };
    match pty.spawn(&spec) {
        Ok(terminal) => {
            let pid = terminal.process.id();
            tracing::debug!(stream = stream.id(), pid, %size, "pty command started");
            Ok(terminal)
        }
        Err(reason) => {
            tracing::warn!(stream = stream.id(), %reason, "pty stream reset");
            stream.reset(&reason);
            Err(StreamError::Reset(reason))
        }
    }
}

/// Drives both pumps until the command exits (its status) or the stream
/// ends early (the error: the user's RESET, the link, the idle timeout).
/// Also says whether the output pump is done already.
async fn until_exit(
    stream: &MuxStream,
    process: &mut Process,
    idle: &Idle,
    mut output_pump: Pin<&mut impl Future<Output = Result<(), RelayError>>>,
    mut input_pump: Pin<&mut impl Future<Output = RelayError>>,
) -> (Result<ExitStatus, RelayError>, bool) {
    let mut output_closed = false;
    let ended = loop {
        tokio::select! {
            status = process.wait() => break Ok(status),
            // Closed its terminal but runs on: its exit still comes.
            done = &mut output_pump, if !output_closed => match done {
                Ok(()) => output_closed = true,
                Err(err) => break Err(err),
            },
            err = &mut input_pump => break Err(err),
            // A user gone while both pumps wait (nothing to print, the
            // command reads nothing) is seen here.
            err = stream.failed() => break Err(err.into()),
            () = idle.expired() => {
                let reason = idle.reason();
                stream.reset(&reason);
                break Err(StreamError::Reset(reason).into());
            }
        }
    };
    (ended, output_closed)
}

/// How the stream started: the size to start the command at, and what the
/// user sent instead of a size, if anything.
struct First {
    size: TermSize,
    typed: Option<Bytes>,
    ended: bool,
}

/// Waits up to [`FIRST_SIZE_WAIT`] for the user's first event.
async fn first_event(stream: &MuxStream) -> Result<First, StreamError> {
    let mut first = First {
        size: TermSize::DEFAULT,
        typed: None,
        ended: false,
    };
    // Cancel safe: an event is only taken when it is returned.
    match tokio::time::timeout(FIRST_SIZE_WAIT, stream.recv_event()).await {
        Err(_) => {}
        Ok(Ok(StreamEvent::Resize(size))) if usable(size) => first.size = size,
        Ok(Ok(StreamEvent::Resize(_))) => {}
        Ok(Ok(StreamEvent::Data(chunk))) => first.typed = Some(chunk),
        Ok(Ok(StreamEvent::End(_))) => first.ended = true,
        Ok(Err(err)) => return Err(err),
    }
    Ok(first)
}

/// A size with no cells (0×N) would confuse every program: ignored.
fn usable(size: TermSize) -> bool {
    size.cols > 0 && size.rows > 0
}

/// The pty's output into the stream, chunk by chunk, each sent (credit
/// permitting) before the next read. Returns when the pty closes, or,
/// once `exited` says the command is gone, when it stays quiet for
/// [`DRAIN_QUIET`].
async fn pump_output(
    stream: &MuxStream,
    output: &mut Output,
    idle: &Idle,
    counts: &Counts,
    mut exited: watch::Receiver<bool>,
) -> Result<(), RelayError> {
    loop {
        // Reads are cancel safe: a read given up took nothing.
        let read = if *exited.borrow() {
            match tokio::time::timeout(DRAIN_QUIET, output.read(CHUNK)).await {
                Ok(read) => read,
                Err(_) => return Ok(()),
            }
        } else {
            tokio::select! {
                read = output.read(CHUNK) => read,
                _ = exited.changed() => continue,
            }
        };
        let Some(chunk) = read.map_err(RelayError::Local)? else {
            return Ok(());
        };
        idle.touch();
        counts.sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        stream.send(chunk).await?;
    }
}

/// The user's bytes and sizes into the pty. Returns only the error that
/// ended the stream; after the user's FIN it types Ctrl-D every
/// [`EOF_AGAIN`] until dropped. Input the pty no longer takes (the command
/// is gone) is read and dropped, so the user is never held.
async fn pump_input(
    stream: &MuxStream,
    input: &mut Input,
    idle: &Idle,
    counts: &Counts,
    first: First,
) -> RelayError {
    let mut writable = true;
    let mut typed = first.typed;
    let mut ended = first.ended;
    loop {
        if let Some(chunk) = typed.take() {
            idle.touch();
            counts
                .received
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if writable {
                writable = input.write(&chunk).await.is_ok();
            }
        }
        if ended {
            break;
        }
        match stream.recv_event().await {
            Ok(StreamEvent::Data(chunk)) => typed = Some(chunk),
            Ok(StreamEvent::Resize(size)) => {
                idle.touch();
                if usable(size) {
                    let _ = input.resize(size);
                }
            }
            Ok(StreamEvent::End(_)) => ended = true,
            Err(err) => return err.into(),
        }
    }
    loop {
        if input.end().await.is_err() {
            return std::future::pending().await;
        }
        tokio::time::sleep(EOF_AGAIN).await;
    }
}

/// FIN with the command's status, then the user's end: its FIN (what it
/// sends meanwhile is dropped), or a RESET once [`USER_END_WAIT`] is over.
async fn finish(stream: &MuxStream, status: ExitStatus) -> Result<(), RelayError> {
    stream.finish_with(Some(status)).await?;
    let user_end = async {
        loop {
            match stream.recv_event().await? {
                StreamEvent::End(_) => return Ok::<(), StreamError>(()),
                StreamEvent::Data(_) | StreamEvent::Resize(_) => {}
            }
        }
    };
    match tokio::time::timeout(USER_END_WAIT, user_end).await {
        Ok(result) => result.map_err(RelayError::from),
        Err(_) => {
            let reason = format!("the command exited ({status}) and takes no more input");
            stream.reset(&reason);
            Err(StreamError::Reset(reason).into())
        }
    }
}
