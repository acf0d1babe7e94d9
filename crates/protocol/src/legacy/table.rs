//! The connections of one legacy link and what each event does to them:
//! the translation between rhost's packets and native frames, with no I/O
//! (bridge.rs does the reading and writing). Native stream ids are the
//! legacy tags on an agent's link (the server picks both); on a client's
//! link each tag the client picks gets the next even id.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::packet::{Event, Packet};
use crate::frame::{Frame, FrameType};
use crate::open::encode_open;

/// Which side of the server the legacy peer is on.
#[derive(Debug, Clone)]
pub enum LegacyRole {
    /// A legacy agent: the server opens streams, each becomes `c+`. A
    /// user's half-close is held (so the reply still comes back) until the
    /// agent's `c-`, or until the agent sent nothing on it for `linger`;
    /// then it becomes `c-`.
    Agent { linger: Duration },
    /// A legacy client: each `c+` becomes an OPEN on `channel`, with
    /// `peer` as the user's address text.
    Client { channel: String, peer: String },
}

/// Something to send after an event.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Out {
    Legacy(Packet),
    Mux(Frame),
}

/// One connection.
#[derive(Debug)]
struct Entry {
    tag: u32,
    /// What the mux still lets us send on this stream.
    credit: u32,
    /// The legacy side is done (`c-` came or went): nothing more to or
    /// from it; the mux's DATA is dropped, its credit handed back.
    legacy_closed: bool,
    /// The mux sent FIN: held until the legacy side closes, or until
    /// nothing came from it for `linger`.
    native_fin: bool,
    linger_until: Option<Instant>,
    /// When the legacy side last sent data on a held stream.
    active_at: Option<Instant>,
}

/// What the DATA of a legacy packet may do now.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Credit {
    /// Send this many bytes as DATA on this stream id.
    Send(u32, usize),
    /// No credit yet: wait for the mux's WINDOW.
    Wait,
    /// The connection is gone: drop the data.
    Drop,
}

#[derive(Debug)]
pub(super) struct Table {
    role: LegacyRole,
    /// Credit each new stream starts with: the mux's receive window.
    window: u32,
    max_streams: usize,
    streams: HashMap<u32, Entry>,
    /// Client links: the client's tag to the stream id.
    tags: HashMap<u32, u32>,
    next_id: u32,
    /// Held half-closes, soonest deadline first; an entry whose stream
    /// closed meanwhile is skipped. At most one per held stream.
    held: BinaryHeap<Reverse<(Instant, u32)>>,
}

impl Table {
    pub fn new(role: LegacyRole, window: u32, max_streams: usize) -> Table {
        Table {
            role,
            window,
            max_streams,
            streams: HashMap::new(),
            tags: HashMap::new(),
            next_id: 2,
            held: BinaryHeap::new(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    fn id_of(&self, tag: u32) -> Option<u32> {
        match self.role {
            LegacyRole::Agent { .. } => Some(tag),
            LegacyRole::Client { .. } => self.tags.get(&tag).copied(),
        }
    }

    fn forget(&mut self, id: u32) {
        if let Some(entry) = self.streams.remove(&id) {
            self.tags.remove(&entry.tag);
        }
    }

    fn entry(&self, id: u32) -> Entry {
        Entry {
            tag: id,
            credit: self.window,
            legacy_closed: false,
            native_fin: false,
            linger_until: None,
            active_at: None,
        }
    }

    /// A frame from the mux. DATA is not handled here (see [`Table::data_tag`]).
    /// An error ends the link.
    pub fn on_frame(
        &mut self,
        frame: Frame,
        now: Instant,
        out: &mut Vec<Out>,
    ) -> Result<(), String> {
        let id = frame.stream;
        match frame.kind {
            FrameType::Open => self.mux_opened(id, out),
            // The stream is over for the mux: the connection closes.
            FrameType::Refuse | FrameType::Reset => {
                if let Some(entry) = self.streams.get(&id) {
                    if !entry.legacy_closed {
                        out.push(Out::Legacy(Packet::new(Event::Close, entry.tag)));
                    }
                    self.forget(id);
                }
            }
            FrameType::Fin => self.mux_finished(id, now, out),
            FrameType::Window => {
                let increment = frame.window_increment().map_err(|e| e.to_string())?;
                if let Some(entry) = self.streams.get_mut(&id) {
                    entry.credit = entry.credit.saturating_add(increment);
                }
            }
            FrameType::Ping => out.push(Out::Mux(Frame::new(FrameType::Pong, 0, frame.payload))),
            // Nothing for a legacy peer: no acceptance, no terminals, no
            // GOAWAY; the mux's PONGs answer PINGs this side never sends.
            FrameType::Accept
            | FrameType::GoAway
            | FrameType::Pong
            | FrameType::Resize
            | FrameType::Data => {}
        }
        Ok(())
    }

    fn mux_opened(&mut self, id: u32, out: &mut Vec<Out>) {
        match self.role {
            // A legacy agent dials on `c+` and never answers, so the
            // stream is accepted here at once.
            LegacyRole::Agent { .. } => {
                let entry = self.entry(id);
                self.streams.insert(id, entry);
                out.push(Out::Legacy(Packet::new(Event::Open, id)));
                out.push(Out::Mux(Frame::empty(FrameType::Accept, id)));
            }
            LegacyRole::Client { .. } => out.push(Out::Mux(Frame::with_reason(
                FrameType::Refuse,
                id,
                "a legacy client accepts no streams",
            ))),
        }
    }

    /// The mux's FIN. A legacy agent's connection holds it (the reply to a
    /// half-closed request is still to come) until the agent's `c-` or the
    /// linger; a legacy client's local connection closes at once, as rhost
    /// closes it when the far end does.
    fn mux_finished(&mut self, id: u32, now: Instant, out: &mut Vec<Out>) {
        let Some(entry) = self.streams.get_mut(&id) else {
            return;
        };
        entry.native_fin = true;
        if entry.legacy_closed {
            return self.forget(id);
        }
        match self.role {
            LegacyRole::Agent { linger } if entry.linger_until.is_none() => {
                entry.linger_until = Some(now + linger);
                self.held.push(Reverse((now + linger, id)));
            }
            LegacyRole::Agent { .. } => {}
            LegacyRole::Client { .. } => {
                out.push(Out::Legacy(Packet::new(Event::Close, entry.tag)));
                out.push(Out::Mux(Frame::empty(FrameType::Fin, id)));
                self.forget(id);
            }
        }
    }

    /// Where the mux's DATA for `id` goes: the legacy tag, or nowhere (the
    /// legacy side closed, or the stream is unknown). `Err(true)`: drop it
    /// but hand its credit back, so the sender is never stuck.
    pub fn data_tag(&self, id: u32) -> Result<u32, bool> {
        match self.streams.get(&id) {
            Some(entry) if !entry.legacy_closed => Ok(entry.tag),
            Some(_) => Err(true),
            None => Err(false),
        }
    }

    /// A packet from the legacy peer other than data. An error ends the link.
    pub fn on_packet(&mut self, packet: &Packet, out: &mut Vec<Out>) -> Result<(), String> {
        match packet.event {
            Event::Open => self.legacy_opened(packet.tag, out)?,
            Event::Close => {
                let Some(id) = self.id_of(packet.tag) else {
                    return Ok(());
                };
                let Some(entry) = self.streams.get_mut(&id) else {
                    return Ok(());
                };
                if entry.legacy_closed {
                    return Ok(());
                }
                entry.legacy_closed = true;
                out.push(Out::Mux(Frame::empty(FrameType::Fin, id)));
                if entry.native_fin {
                    self.forget(id);
                }
            }
            Event::Ping => out.push(Out::Legacy(Packet::new(Event::Pong, 0))),
            Event::Pong | Event::Data => {}
        }
        Ok(())
    }

    fn legacy_opened(&mut self, tag: u32, out: &mut Vec<Out>) -> Result<(), String> {
        let LegacyRole::Client { channel, peer } = &self.role else {
            // An agent opens nothing; rhost's tunnel ignores it too.
            return Ok(());
        };
        if self.tags.contains_key(&tag) {
            return Err(format!("the legacy client opened connection {tag} twice"));
        }
        if self.streams.len() >= self.max_streams || self.next_id > u32::MAX - 2 {
            out.push(Out::Legacy(Packet::new(Event::Close, tag)));
            return Ok(());
        }
        let id = self.next_id;
        self.next_id += 2;
        let payload = encode_open(channel, peer, None);
        out.push(Out::Mux(Frame::new(FrameType::Open, id, payload)));
        self.tags.insert(tag, id);
        self.streams.insert(
            id,
            Entry {
                tag,
                ..self.entry(id)
            },
        );
        Ok(())
    }

    /// How much of `want` bytes of legacy data for `tag` may go now (data
    /// on a held stream keeps it held: the reply is still coming).
    pub fn take_credit(&mut self, tag: u32, want: usize, now: Instant) -> Credit {
        let Some(id) = self.id_of(tag) else {
            return Credit::Drop;
        };
        match self.streams.get_mut(&id) {
            Some(entry) if !entry.legacy_closed => {
                let n = entry.credit.min(want.min(u32::MAX as usize) as u32);
                if n == 0 {
                    return Credit::Wait;
                }
                entry.credit -= n;
                if entry.native_fin {
                    entry.active_at = Some(now);
                }
                Credit::Send(id, n as usize)
            }
            _ => Credit::Drop,
        }
    }

    /// Turns held half-closes whose linger is over into `c-` (and a FIN to
    /// the mux: the legacy side said nothing wrong). Returns the next
    /// deadline.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<Out>) -> Option<Instant> {
        while let Some(&Reverse((due, id))) = self.held.peek() {
            if due > now {
                break;
            }
            self.held.pop();
            let linger = match self.role {
                LegacyRole::Agent { linger } => linger,
                LegacyRole::Client { .. } => continue,
            };
            let Some(entry) = self.streams.get_mut(&id) else {
                continue;
            };
            if entry.linger_until != Some(due) || entry.legacy_closed {
                continue;
            }
            // Data came meanwhile: the linger counts from the last of it.
            if let Some(again) = entry.active_at.map(|t| t + linger).filter(|t| *t > now) {
                entry.linger_until = Some(again);
                self.held.push(Reverse((again, id)));
                continue;
            }
            out.push(Out::Legacy(Packet::new(Event::Close, entry.tag)));
            out.push(Out::Mux(Frame::empty(FrameType::Fin, id)));
            self.forget(id);
        }
        self.next_linger()
    }

    /// When the next held half-close is due, skipping those whose stream
    /// closed meanwhile.
    pub fn next_linger(&mut self) -> Option<Instant> {
        while let Some(&Reverse((due, id))) = self.held.peek() {
            match self.streams.get(&id) {
                Some(entry) if entry.linger_until == Some(due) => return Some(due),
                _ => {
                    self.held.pop();
                }
            }
        }
        None
    }
}

/// A packet of legacy data as DATA, for the translator's tests too.
pub(super) fn data_frame(id: u32, body: Bytes) -> Frame {
    Frame::new(FrameType::Data, id, body)
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
