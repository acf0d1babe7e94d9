//! The relay of `attach` on a terminal: keystrokes up through the detach
//! detector, output down, the terminal's size as RESIZE, until the remote
//! process ends, the user detaches, or a signal stops it. Generic over its
//! input and output so tests drive it with in-memory streams.

use std::future::{pending, Future};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use uptun_protocol::{ExitStatus, MuxStream, RelayError, StreamEvent, TermSize};

use super::keys::Detector;

/// A signal that stops `attach`: its name and number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub name: &'static str,
    pub number: i32,
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The stream ended; with the remote process's status when it sent one.
    Exited(Option<ExitStatus>),
    /// The user typed the detach sequence.
    Detached,
    /// A signal stopped `attach`.
    Stopped(Stop),
}

/// What the relay reads, writes and watches.
pub(crate) struct Terminal<R, W> {
    /// Keystrokes; `None` reads nothing (read-only, no terminal).
    pub input: Option<R>,
    pub output: W,
    /// Watches the keystrokes for the detach sequence; `None` passes all.
    pub detector: Option<Detector>,
    /// Whether keystrokes go to the channel (`false`: `--read-only`, where
    /// only the detach sequence counts).
    pub send_input: bool,
    /// The terminal's size, sent at start and whenever it changes; `None`
    /// sends no RESIZE.
    pub sizes: Option<watch::Receiver<TermSize>>,
}

/// What ended the keystrokes.
enum Typed {
    Detached,
    Eof,
}

/// Relays until the stream ends, the user detaches, or `stop` resolves.
/// On anything but the stream's own end the stream is reset, with the
/// reason, so the agent hangs up (a pty) or lets the attachment go (a
/// session).
pub(crate) async fn run<R, W>(
    stream: &MuxStream,
    terminal: Terminal<R, W>,
    stop: impl Future<Output = Stop>,
) -> Result<Ending, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let outcome = relay(stream, terminal, stop).await;
    match &outcome {
        Ok(Ending::Exited(_)) => {
            // The process is gone; our FIN makes the end a clean one.
            let _ = stream.finish().await;
        }
        Ok(Ending::Detached) => stream.reset("the user detached"),
        Ok(Ending::Stopped(stop)) => stream.reset(&format!("attach stopped by {}", stop.name)),
        Err(err) => stream.reset(&err.to_string()),
    }
    outcome
}

async fn relay<R, W>(
    stream: &MuxStream,
    terminal: Terminal<R, W>,
    stop: impl Future<Output = Stop>,
) -> Result<Ending, RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Terminal {
        input,
        mut output,
        mut detector,
        send_input,
        sizes,
    } = terminal;
    // The size goes first, before any keystroke: a pty starts at it.
    let mut sizes = match sizes {
        Some(mut sizes) => {
            let size = *sizes.borrow_and_update();
            stream.send_resize(size).await?;
            Some(sizes)
        }
        None => None,
    };
    let typed = async {
        match input {
            Some(mut input) => keystrokes(stream, &mut input, &mut detector, send_input).await,
            None => pending().await,
        }
    };
    let shown = screen(stream, &mut output);
    let resized = async {
        match sizes.as_mut() {
            Some(sizes) => resizes(stream, sizes).await,
            None => pending().await,
        }
    };
    tokio::pin!(typed, shown, resized, stop);
    let mut typing = true;
    loop {
        tokio::select! {
            status = &mut shown => return status.map(Ending::Exited),
            ended = &mut typed, if typing => match ended? {
                Typed::Detached => return Ok(Ending::Detached),
                // The terminal is gone (or stdin ended): no more input, but
                // the output goes on until the process ends.
                Typed::Eof => typing = false,
            },
            err = &mut resized => return Err(err),
            stop = &mut stop => return Ok(Ending::Stopped(stop)),
        }
    }
}

/// Reads keystrokes and sends them, minus the detach sequence. At EOF
/// (the terminal hung up) sends FIN, unless nothing is sent at all.
async fn keystrokes<R: AsyncRead + Unpin>(
    stream: &MuxStream,
    input: &mut R,
    detector: &mut Option<Detector>,
    send: bool,
) -> Result<Typed, RelayError> {
    // Keystrokes come a few at a time; a paste can be larger and is sent in
    // pieces of this size.
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    loop {
        let n = input.read(&mut buf).await.map_err(RelayError::Local)?;
        if n == 0 {
            if send {
                stream.finish().await?;
            }
            return Ok(Typed::Eof);
        }
        out.clear();
        let detached = match detector {
            Some(detector) => detector.feed(&buf[..n], &mut out),
            None => {
                out.extend_from_slice(&buf[..n]);
                false
            }
        };
        if send && !out.is_empty() {
            stream.send(Bytes::copy_from_slice(&out)).await?;
        }
        if detached {
            return Ok(Typed::Detached);
        }
    }
}

/// Writes the remote output as it comes; returns the status the stream's
/// FIN carried.
async fn screen<W: AsyncWrite + Unpin>(
    stream: &MuxStream,
    output: &mut W,
) -> Result<Option<ExitStatus>, RelayError> {
    loop {
        match stream.recv_event().await? {
            StreamEvent::Data(chunk) => {
                output.write_all(&chunk).await.map_err(RelayError::Local)?;
                // A terminal shows what it was given, not what a buffer holds.
                output.flush().await.map_err(RelayError::Local)?;
            }
            // The agent has no size to tell a client.
            StreamEvent::Resize(_) => {}
            StreamEvent::End(status) => return Ok(status),
        }
    }
}

/// Sends each new size; returns only on failure.
async fn resizes(stream: &MuxStream, sizes: &mut watch::Receiver<TermSize>) -> RelayError {
    loop {
        if sizes.changed().await.is_err() {
            // Nobody watches the size any more: nothing more to send.
            return pending().await;
        }
        let size = *sizes.borrow_and_update();
        if let Err(err) = stream.send_resize(size).await {
            return err.into();
        }
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
