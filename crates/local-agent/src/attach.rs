//! `local-agent attach CHANNEL`: the local terminal on a terminal channel
//! (`pty:`, `session:`), as ssh or `kubectl attach` give one. Raw mode,
//! the window's size at start and on every SIGWINCH, a detach sequence,
//! and the remote status as the exit code. Without a terminal on stdin it
//! is a pipe, like `connect`.

mod keys;
mod raw;
mod relay;

use std::task::Poll;

use anyhow::Context;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;
use uptun_protocol::{relay_exit, TermSize};

pub use keys::{DetachKeys, DEFAULT_DETACH_KEYS};
pub use relay::{Ending, Stop};

use crate::client::{open_stream, ClientConfig};

/// What `attach` is asked to do besides reaching the server.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    pub channel: String,
    /// Typing these detaches (`--detach-keys`).
    pub detach_keys: DetachKeys,
    /// Send no keystrokes and no size: watch only (`--read-only`).
    pub read_only: bool,
}

impl Ending {
    /// The exit code `attach` ends with: the remote status as a shell
    /// reports it, 0 for a detach or an end without status, 128 plus the
    /// signal's number for a signal.
    pub fn exit_code(&self) -> u8 {
        match self {
            Ending::Exited(Some(status)) => status.shell_code() as u8,
            Ending::Exited(None) | Ending::Detached => 0,
            Ending::Stopped(stop) => (128 + stop.number) as u8,
        }
    }

    /// The line to print on stderr once the terminal is back, if any.
    pub fn note(&self, channel: &str) -> Option<String> {
        match self {
            Ending::Exited(_) => None,
            Ending::Detached => Some(format!("detached from channel \"{channel}\"")),
            Ending::Stopped(stop) => Some(format!(
                "stopped by {}; the stream to channel \"{channel}\" is closed",
                stop.name
            )),
        }
    }
}

/// Attaches stdin/stdout to `options.channel` until the remote process
/// ends, the user detaches, or TERM, INT, HUP or QUIT arrives. The local
/// terminal is back as it was when this returns, or panics.
pub async fn attach(config: ClientConfig, options: AttachOptions) -> anyhow::Result<Ending> {
    // Before anything else: from here on these signals end the attachment
    // through `run`, which restores the terminal, and never kill the
    // process in raw mode.
    let mut stops = Stops::install().context("could not watch for signals")?;
    let terminal = raw::stdin_is_terminal();
    let sizes = match terminal && !options.read_only {
        true => Some(watch_size()?),
        false => None,
    };
    // The size rides with the OPEN, so a pty starts its command at it
    // rather than at 80×24 when the link is slower than the agent's wait.
    let size = sizes.as_ref().map(|sizes| *sizes.borrow());
    let (link, stream) = open_stream(&config, &options.channel, size).await?;
    let channel = &options.channel;
    let ending = if !terminal && !options.read_only {
        // A pipe, exactly as `connect` is.
        tokio::select! {
            relayed = relay_exit(stream, tokio::io::stdin(), tokio::io::stdout()) => {
                relayed.map(|(_, status)| Ending::Exited(status))
            }
            stop = stops.next() => Ok(Ending::Stopped(stop)),
        }
        .map_err(|e| anyhow::anyhow!("channel {channel}: {e}"))
    } else {
        on_terminal(&stream, &options, sizes, &mut stops)
            .await
            .map_err(|e| anyhow::anyhow!("channel {channel}: {e:#}"))
    };
    // The last keystrokes, the FIN or the reset reach the server before we exit.
    let _ = link.flush().await;
    ending
}

/// Raw mode, the size and the relay, on a terminal; or, read-only without
/// one, the output alone.
async fn on_terminal(
    stream: &uptun_protocol::MuxStream,
    options: &AttachOptions,
    sizes: Option<watch::Receiver<TermSize>>,
    stops: &mut Stops,
) -> anyhow::Result<Ending> {
    let terminal = raw::stdin_is_terminal();
    let guard = if terminal {
        let keys = &options.detach_keys;
        if keys.bytes().is_empty() {
            eprintln!(
                "local-agent: attached to \"{}\" (no detach keys)",
                options.channel
            );
        } else {
            eprintln!(
                "local-agent: attached to \"{}\"; detach with {}",
                options.channel,
                keys.describe()
            );
        }
        Some(raw::RawMode::enable().context("could not put the terminal in raw mode")?)
    } else {
        None
    };
    let input = terminal.then(tokio::io::stdin);
    let detector = terminal.then(|| keys::Detector::new(options.detach_keys.clone()));
    let io = relay::Terminal {
        input,
        output: tokio::io::stdout(),
        detector,
        send_input: !options.read_only,
        sizes,
    };
    let ending = relay::run(stream, io, stops.next()).await;
    drop(guard);
    if terminal && !matches!(ending, Ok(Ending::Exited(_))) {
        // The cursor is likely after the remote prompt: the note or error
        // that follows starts a line of its own.
        eprintln!();
    }
    Ok(ending?)
}

/// The terminal's size now and after every SIGWINCH, for as long as the
/// receiver lives.
fn watch_size() -> anyhow::Result<watch::Receiver<TermSize>> {
    let mut winch =
        signal(SignalKind::window_change()).context("could not watch for window size changes")?;
    let (tx, rx) = watch::channel(raw::size().unwrap_or(TermSize::DEFAULT));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = winch.recv() => if changed.is_none() { return },
                () = tx.closed() => return,
            }
            if let Some(size) = raw::size() {
                tx.send_if_modified(|current| std::mem::replace(current, size) != size);
            }
        }
    });
    Ok(rx)
}

/// The signals that stop `attach`.
struct Stops(Vec<(Signal, Stop)>);

impl Stops {
    fn install() -> std::io::Result<Stops> {
        let kinds = [
            (SignalKind::terminate(), "SIGTERM", 15),
            (SignalKind::interrupt(), "SIGINT", 2),
            (SignalKind::hangup(), "SIGHUP", 1),
            (SignalKind::quit(), "SIGQUIT", 3),
        ];
        let mut stops = Vec::with_capacity(kinds.len());
        for (kind, name, number) in kinds {
            stops.push((signal(kind)?, Stop { name, number }));
        }
        Ok(Stops(stops))
    }

    /// The next of them to arrive.
    async fn next(&mut self) -> Stop {
        std::future::poll_fn(|cx| {
            for (signal, stop) in &mut self.0 {
                if let Poll::Ready(Some(())) = signal.poll_recv(cx) {
                    return Poll::Ready(*stop);
                }
            }
            Poll::Pending
        })
        .await
    }
}
