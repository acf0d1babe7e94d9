//! One stream attached to a session: the recent screen, then live output
//! out; keystrokes in, to the shared process; its RESIZE as its vote on the
//! session's size. The user's FIN means no more keystrokes, not detach:
//! output goes on until the process exits, the stream dies, or it was quiet
//! both ways for `--idle-timeout`.

use std::sync::Arc;
use std::time::Duration;

use uptun_protocol::{MuxStream, RelayError, RelayStats, StreamError, StreamEvent};

use super::hub::{Delivery, Subscription};
use super::Shared;
use crate::target::idle::Idle;

/// After the process's status went out with our FIN, how long the user's
/// side gets to finish before the stream is closed under it.
const END_WAIT: Duration = Duration::from_secs(2);

/// Relays `stream` to the session until it ends.
pub(super) async fn relay(
    stream: MuxStream,
    shared: Arc<Shared>,
    idle: Idle,
) -> Result<RelayStats, RelayError> {
    let attached = Attached {
        sub: shared.hub.subscribe(),
        shared,
    };
    let (mut sent, mut received) = (0, 0);
    {
        let output = send_output(&stream, &attached.sub, &idle, &mut sent);
        let input = take_input(&stream, &attached, &idle, &mut received);
        tokio::pin!(output, input);
        let mut typing = true;
        loop {
            tokio::select! {
                done = &mut output => {
                    done?;
                    break;
                }
                done = &mut input, if typing => {
                    done?;
                    typing = false;
                }
                // Waiting for output after the user's FIN, a dead stream
                // would otherwise go unnoticed until the session prints.
                err = stream.failed(), if !typing => return Err(err.into()),
                () = idle.expired() => {
                    let reason = idle.reason();
                    stream.reset(&reason);
                    return Err(StreamError::Reset(reason).into());
                }
            }
        }
        if typing {
            let _ = tokio::time::timeout(END_WAIT, input).await;
        }
    }
    Ok(RelayStats { sent, received })
}

/// The subscription and the vote, withdrawn together when the stream ends.
struct Attached {
    sub: Subscription,
    shared: Arc<Shared>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.shared.withdraw(self.sub.id());
    }
}

/// The hub's deliveries to the user, then FIN with the exit status.
async fn send_output(
    stream: &MuxStream,
    sub: &Subscription,
    idle: &Idle,
    sent: &mut u64,
) -> Result<(), StreamError> {
    loop {
        match sub.next().await {
            Delivery::Data(data) => {
                *sent += data.len() as u64;
                // Output the user does not take is not the stream speaking.
                stream.send(data).await?;
                idle.touch();
            }
            Delivery::End(status) => return stream.finish_with(status).await,
        }
    }
}

/// The user's keystrokes to the process and sizes to the vote, until the
/// user's FIN.
async fn take_input(
    stream: &MuxStream,
    attached: &Attached,
    idle: &Idle,
    received: &mut u64,
) -> Result<(), StreamError> {
    loop {
        let event = stream.recv_event().await?;
        idle.touch();
        match event {
            StreamEvent::Data(data) => {
                *received += data.len() as u64;
                // Only fails once the session is gone for good; the bytes
                // have nowhere to go then.
                let _ = attached.shared.input.send(data).await;
            }
            StreamEvent::Resize(size) => attached.shared.vote(attached.sub.id(), size),
            StreamEvent::End(_) => return Ok(()),
        }
    }
}
