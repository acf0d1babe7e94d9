//! The sending side of [`crate::events`]: the agent's links call it where
//! they go up, go down or give up, and it keeps the state a late subscriber
//! reads in step with the events (the state first, so whoever sees an event
//! finds a state at least as new).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use crate::events::{CloseReason, Event, LinkInfo, Listener, State, CAPACITY};

/// Where one link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Dialing,
    Up,
    Down,
}

#[derive(Debug)]
struct Links {
    phases: Vec<Phase>,
    /// The latest `Reconnecting`, shown while no link is up.
    retry: Option<State>,
    draining: bool,
}

/// Reports an agent's events and keeps its [`State`]; shared by its links.
#[derive(Debug)]
pub(crate) struct Reporter {
    events: broadcast::Sender<Event>,
    /// Subscribed at the start, for the first subscriber: it misses nothing.
    first: Mutex<Option<broadcast::Receiver<Event>>>,
    state: watch::Sender<State>,
    links: Mutex<Links>,
}

impl Reporter {
    /// A reporter for an agent of `links` links, all dialing.
    pub fn new(links: usize) -> Reporter {
        let (events, first) = broadcast::channel(CAPACITY);
        Reporter {
            events,
            first: Mutex::new(Some(first)),
            state: watch::channel(State::Connecting).0,
            links: Mutex::new(Links {
                phases: vec![Phase::Dialing; links],
                retry: None,
                draining: false,
            }),
        }
    }

    /// The events from the start for the first caller; from now on for
    /// the others.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        first.take().unwrap_or_else(|| self.events.subscribe())
    }

    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Link `index` is up and about to serve `channels` (or, for a
    /// forward, to carry connections from `listening` to them).
    pub fn up(&self, index: usize, transport: String, channels: &[String], listening: &[Listener]) {
        let event = Event::Ready {
            link: LinkInfo { index, transport },
            channels: channels.to_vec(),
            listening: listening.to_vec(),
        };
        self.change(index, Phase::Up, None, event);
    }

    /// Link `index` is down and nothing dials it again until it is needed
    /// (a forward's next connection): an error event saying `why`.
    pub fn down(&self, index: usize, why: String) {
        let event = Event::Error {
            channel: None,
            message: why,
        };
        self.change(index, Phase::Down, None, event);
    }

    /// Link `index` is down and dialed again after `next_delay`.
    pub fn retrying(&self, index: usize, attempt: u32, next_delay: Duration, cause: String) {
        let retry = State::Reconnecting {
            attempt,
            next_delay,
            cause: cause.clone(),
        };
        let event = Event::Reconnecting {
            link: index,
            attempt,
            next_delay,
            cause,
        };
        self.change(index, Phase::Down, Some(retry), event);
    }

    /// A stream on `channel` could not be served; the agent goes on.
    pub fn error(&self, channel: Option<&str>, message: String) {
        let channel = channel.map(str::to_string);
        // No state change: the links stand where they stood.
        let _ = self.events.send(Event::Error { channel, message });
    }

    /// Asked to stop: the links are draining.
    pub fn draining(&self) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if !links.draining && !self.state.borrow().is_closed() {
            links.draining = true;
            self.state.send_replace(State::Draining);
        }
    }

    /// The agent has stopped: the last event.
    pub fn closed(&self, reason: CloseReason) {
        let _links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        self.state.send_replace(State::Closed {
            reason: reason.clone(),
        });
        let _ = self.events.send(Event::Closed { reason });
    }

    /// Records link `index` in `phase` (and the latest `retry`), then sends
    /// `event`: both under the lock, so links that change at once are seen
    /// in one order by all.
    fn change(&self, index: usize, phase: Phase, retry: Option<State>, event: Event) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = links.phases.get_mut(index) {
            *slot = phase;
        }
        if retry.is_some() {
            links.retry = retry;
        }
        if !links.draining && !self.state.borrow().is_closed() {
            self.state.send_replace(links.state());
        }
        // Nobody subscribed is fine: the state above still says it.
        let _ = self.events.send(event);
    }
}

impl Links {
    fn state(&self) -> State {
        let up = self.phases.iter().filter(|p| **p == Phase::Up).count();
        if up > 0 {
            return State::Ready {
                up,
                links: self.phases.len(),
            };
        }
        self.retry.clone().unwrap_or(State::Connecting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_links_and_events_keep_their_order() {
        let reporter = Reporter::new(2);
        let mut rx = reporter.subscribe();
        let state = reporter.watch();
        assert!(matches!(*state.borrow(), State::Connecting));
        reporter.up(0, "tcp".into(), &["web".into()], &[]);
        assert!(matches!(*state.borrow(), State::Ready { up: 1, links: 2 }));
        reporter.up(1, "tcp".into(), &["web".into()], &[]);
        reporter.retrying(0, 1, Duration::from_secs(1), "link lost".into());
        // One link is still up: still ready.
        assert!(matches!(*state.borrow(), State::Ready { up: 1, links: 2 }));
        reporter.retrying(1, 1, Duration::from_secs(2), "link lost".into());
        assert!(matches!(
            *state.borrow(),
            State::Reconnecting { attempt: 1, next_delay, .. } if next_delay == Duration::from_secs(2)
        ));
        reporter.draining();
        assert!(matches!(*state.borrow(), State::Draining));
        // A link going down while draining does not hide that it drains.
        reporter.retrying(0, 2, Duration::from_secs(1), "lost".into());
        assert!(matches!(*state.borrow(), State::Draining));
        reporter.closed(CloseReason::Shutdown);
        assert!(state.borrow().is_closed());
        let mut kinds = Vec::new();
        while let Ok(event) = rx.try_recv() {
            kinds.push(match event {
                Event::Ready { link, .. } => format!("ready {}", link.index),
                Event::Reconnecting { link, .. } => format!("reconnecting {link}"),
                Event::Closed { .. } => "closed".into(),
                other => panic!("unexpected {other:?}"),
            });
        }
        let expected = [
            "ready 0",
            "ready 1",
            "reconnecting 0",
            "reconnecting 1",
            "reconnecting 0",
            "closed",
        ];
        assert_eq!(kinds, expected);
    }
}
