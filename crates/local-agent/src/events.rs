//! What an embedded agent or client tells the program around it: typed
//! events as its links go up and down ([`Event`]), the state now for one
//! that asks late ([`State`]), and the subscription that carries them
//! ([`Events`]). Sent from where the code sees each change (`report.rs`),
//! never read back from the logs.

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::ReusableBoxFuture;

use crate::agent::AgentError;

/// Events a subscriber may fall behind by before it loses the oldest.
pub(crate) const CAPACITY: usize = 256;

/// Something that happened to an agent or client, in the order it happened.
///
/// New kinds of event and new fields may come in later versions (the live
/// membership of a channel, for one): match with a `_` arm and `..`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A link is up: the server accepted it and the channels are served
    /// from now on. Sent before the link's first stream is served. With
    /// several links each sends its own.
    #[non_exhaustive]
    Ready {
        link: LinkInfo,
        /// The channels this link serves (an agent) or carries connections
        /// to (a forward), in the order given.
        channels: Vec<String>,
        /// A forward's local listeners, with the ports bound (a port 0
        /// asked for becomes the one the system chose); none for an agent.
        listening: Vec<Listener>,
    },
    /// Link number `link` is down (lost, or never came up) and is dialed
    /// again after `next_delay`; `attempt` counts the retries since it was
    /// last up, from 1. `cause` says why in words for a person.
    #[non_exhaustive]
    Reconnecting {
        link: usize,
        attempt: u32,
        next_delay: Duration,
        cause: String,
    },
    /// Something failed that the agent goes on after: a stream on
    /// `channel` could not be served (its target refused or timed out).
    #[non_exhaustive]
    Error {
        channel: Option<String>,
        message: String,
    },
    /// The agent has stopped: every link is closed and no more events come.
    #[non_exhaustive]
    Closed { reason: CloseReason },
    /// This subscriber fell more than its buffer behind and lost the
    /// `missed` oldest events it had not read; [`State`] says where things
    /// stand now.
    #[non_exhaustive]
    Lagged { missed: u64 },
}

/// A link that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkInfo {
    /// Which of the agent's links, from 0 (see `links`).
    pub index: usize,
    /// How it travels: `tcp` (`Upgrade: tcp`) or `websocket`.
    pub transport: String,
}

/// A local port a forward listens on, and the channel it carries to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Listener {
    pub addr: SocketAddr,
    pub channel: String,
}

/// Why an agent stopped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CloseReason {
    /// Asked to: [`shutdown`](crate::AgentHandle::shutdown), or the handle
    /// was dropped. Open streams had the grace to finish.
    Shutdown,
    /// No stream was open for the `exit_when_idle` time.
    Idle,
    /// It cannot go on: the error says why and what to change.
    Failed(AgentError),
}

/// Where an agent stands now: what a subscriber that comes late needs
/// instead of the events it missed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum State {
    /// No link is up and none is waiting to be retried: dialing for the
    /// first time, or (a forward) a lost link that the next connection
    /// dials again.
    Connecting,
    /// `up` of the agent's `links` links are up.
    Ready { up: usize, links: usize },
    /// No link is up; they are being dialed again. The latest retry.
    Reconnecting {
        attempt: u32,
        next_delay: Duration,
        cause: String,
    },
    /// Asked to stop: open streams are finishing within the grace.
    Draining,
    /// Stopped.
    Closed { reason: CloseReason },
}

impl State {
    /// Whether the agent has stopped for good.
    pub fn is_closed(&self) -> bool {
        matches!(self, State::Closed { .. })
    }
}

/// One line, the event's name first: `ready link=0 transport=tcp
/// channels=web,ssh`, `closed reason=shutdown`.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Ready {
                link,
                channels,
                listening,
            } => {
                write!(
                    f,
                    "ready link={} transport={} channels={}",
                    link.index,
                    link.transport,
                    channels.join(",")
                )?;
                for listener in listening {
                    write!(f, " listen={}={}", listener.addr, listener.channel)?;
                }
                Ok(())
            }
            Event::Reconnecting {
                link,
                attempt,
                next_delay,
                cause,
            } => write!(
                f,
                "reconnecting link={link} attempt={attempt} delay={:.1}s cause={cause:?}",
                next_delay.as_secs_f64()
            ),
            Event::Error { channel, message } => match channel {
                Some(channel) => write!(f, "error channel={channel} message={message:?}"),
                None => write!(f, "error message={message:?}"),
            },
            Event::Closed { reason } => write!(f, "closed reason={reason}"),
            Event::Lagged { missed } => write!(f, "lagged missed={missed}"),
        }
    }
}

/// `shutdown`, `idle`, or `failed: ` and what failed.
impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Shutdown => f.write_str("shutdown"),
            CloseReason::Idle => f.write_str("idle"),
            CloseReason::Failed(err) => write!(f, "failed: {err}"),
        }
    }
}

type Next = (Result<Event, RecvError>, broadcast::Receiver<Event>);

/// An agent's events, as a [`Stream`](futures_core::Stream) or through
/// [`Events::next`]. It ends after [`Event::Closed`].
///
/// Each subscriber has a buffer of 256 events. The agent never waits for
/// a subscriber: one that falls further behind loses the oldest events it
/// has not read, and is told how many by an [`Event::Lagged`].
pub struct Events {
    next: ReusableBoxFuture<'static, Next>,
    /// `Closed` was read: the end, though the sender may live on.
    ended: bool,
}

async fn receive(mut rx: broadcast::Receiver<Event>) -> Next {
    (rx.recv().await, rx)
}

impl Events {
    pub(crate) fn new(rx: broadcast::Receiver<Event>) -> Events {
        Events {
            next: ReusableBoxFuture::new(receive(rx)),
            ended: false,
        }
    }

    /// The next event, or `None` once the agent has closed and every event
    /// has been read.
    pub async fn next(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let (result, rx) = std::task::ready!(self.next.poll(cx));
        self.next.set(receive(rx));
        Poll::Ready(match result {
            Ok(event) => {
                self.ended = matches!(event, Event::Closed { .. });
                Some(event)
            }
            Err(RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(RecvError::Closed) => {
                self.ended = true;
                None
            }
        })
    }
}

impl futures_core::Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_event(cx)
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_what_it_lost_and_goes_on() {
        let (tx, rx) = broadcast::channel(CAPACITY);
        let mut events = Events::new(rx);
        for i in 0..CAPACITY + 10 {
            let message = i.to_string();
            tx.send(Event::Error {
                channel: None,
                message,
            })
            .unwrap();
        }
        assert!(matches!(
            events.next().await,
            Some(Event::Lagged { missed: 10 })
        ));
        // The oldest kept is the eleventh sent.
        match events.next().await {
            Some(Event::Error { message, .. }) => assert_eq!(message, "10"),
            other => panic!("{other:?}"),
        }
        drop(tx);
        let mut left = 0;
        while events.next().await.is_some() {
            left += 1;
        }
        assert_eq!(left, CAPACITY - 1);
    }

    #[test]
    fn each_event_is_one_line_named_first() {
        let ready = Event::Ready {
            link: LinkInfo {
                index: 1,
                transport: "websocket".into(),
            },
            channels: vec!["web".into(), "ssh".into()],
            listening: Vec::new(),
        };
        assert_eq!(
            ready.to_string(),
            "ready link=1 transport=websocket channels=web,ssh"
        );
        let forwarding = Event::Ready {
            link: LinkInfo {
                index: 0,
                transport: "tcp".into(),
            },
            channels: vec!["ssh".into()],
            listening: vec![Listener {
                addr: "127.0.0.1:2222".parse().unwrap(),
                channel: "ssh".into(),
            }],
        };
        assert_eq!(
            forwarding.to_string(),
            "ready link=0 transport=tcp channels=ssh listen=127.0.0.1:2222=ssh"
        );
        let closed = Event::Closed {
            reason: CloseReason::Failed(AgentError::Config("no channel".into())),
        };
        assert_eq!(closed.to_string(), "closed reason=failed: no channel");
        let retry = Event::Reconnecting {
            link: 0,
            attempt: 2,
            next_delay: Duration::from_millis(1500),
            cause: "link lost: \"x\"".into(),
        };
        assert_eq!(
            retry.to_string(),
            r#"reconnecting link=0 attempt=2 delay=1.5s cause="link lost: \"x\"""#
        );
    }
}
