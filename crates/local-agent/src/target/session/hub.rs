//! The fan-out of a session's output to its attached streams.
//!
//! The process's reader publishes each chunk and never waits on anyone:
//! every attachment has a queue bounded in bytes and in entries. One that
//! overflows drops its queue and only counts what it misses; when it next
//! reads, it catches up from the ring: exactly the bytes it missed if the
//! ring still holds them, else a note saying how many were skipped and the
//! ring's recent screen. So a slow or stuck stream never slows the others,
//! and holds at most its queue's bound (nothing at all once it overflowed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::Notify;
use uptun_protocol::ExitStatus;

use super::ring::Ring;

/// How much one attachment may have queued before it skips ahead.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub ring_bytes: usize,
    pub queue_bytes: usize,
    /// Bounds the bookkeeping too when a process writes a byte at a time.
    pub queue_entries: usize,
}

/// What an attachment gets next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Delivery {
    Data(Bytes),
    /// The process exited (or never started): the stream ends, with the
    /// exit status when there is one.
    End(Option<ExitStatus>),
}

#[derive(Debug)]
pub(super) struct Hub {
    state: Mutex<State>,
    limits: Limits,
}

#[derive(Debug)]
struct State {
    ring: Ring,
    subs: HashMap<u64, Sub>,
    next_id: u64,
    /// Set when no process will run again: the end every newcomer gets.
    over: Option<Delivery>,
}

#[derive(Debug)]
struct Sub {
    queue: VecDeque<Bytes>,
    bytes: usize,
    catch_up: Option<CatchUp>,
    /// Set when its process ended: the end comes after the queue.
    end: Option<Delivery>,
    notify: Arc<Notify>,
}

/// Where an attachment's next delivery comes from instead of its queue.
#[derive(Debug, Clone, Copy)]
enum CatchUp {
    /// It just attached: the ring's whole screen.
    Join,
    /// It fell behind by this many bytes, the latest output.
    Missed(u64),
}

/// One attachment's end of the hub; dropping it detaches.
#[derive(Debug)]
pub(super) struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    notify: Arc<Notify>,
}

impl Hub {
    pub fn new(limits: Limits) -> Hub {
        let state = State {
            ring: Ring::new(limits.ring_bytes),
            subs: HashMap::new(),
            next_id: 0,
            over: None,
        };
        Hub {
            state: Mutex::new(state),
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock left only bounded bookkeeping
        // behind; serving the others beats poisoning them all.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a chunk of output to the ring and to every attachment, at
    /// once: never waits.
    pub fn publish(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.ring.push(&chunk);
        for sub in state.subs.values_mut() {
            if sub.end.is_some() {
                continue;
            }
            let len = chunk.len() as u64;
            match &mut sub.catch_up {
                // It reads the ring when it asks, this chunk included.
                Some(CatchUp::Join) => {}
                Some(CatchUp::Missed(missed)) => *missed += len,
                None if sub.bytes + chunk.len() > self.limits.queue_bytes
                    || sub.queue.len() >= self.limits.queue_entries =>
                {
                    sub.catch_up = Some(CatchUp::Missed(sub.bytes as u64 + len));
                    sub.queue = VecDeque::new();
                    sub.bytes = 0;
                }
                None => {
                    sub.bytes += chunk.len();
                    sub.queue.push_back(chunk.clone());
                }
            }
            sub.notify.notify_one();
        }
    }

    /// The process exited: every attachment gets what it is owed, then
    /// the end. Later output (a restarted process) is not theirs.
    pub fn end(&self, status: Option<ExitStatus>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        for sub in state.subs.values_mut() {
            if sub.end.is_some() {
                continue;
            }
            // Settle catch-ups now: the ring is cleared for the next process.
            if let Some(catch_up) = sub.catch_up.take() {
                let data = catch_up.read(&state.ring);
                sub.bytes = data.len();
                sub.queue = VecDeque::from([data]);
            }
            sub.end = Some(Delivery::End(status));
            sub.notify.notify_one();
        }
    }

    /// No process will run again: a stream that attaches from now on
    /// gets the last screen and the end at once, rather than waiting.
    pub fn close(&self, status: Option<ExitStatus>) {
        self.lock().over = Some(Delivery::End(status));
    }

    /// A new process starts: a new screen.
    pub fn clear_ring(&self) {
        self.lock().ring.clear();
    }

    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        let notify = Arc::new(Notify::new());
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        let sub = Sub {
            queue: VecDeque::new(),
            bytes: 0,
            catch_up: Some(CatchUp::Join),
            end: state.over.clone(),
            notify: notify.clone(),
        };
        state.subs.insert(id, sub);
        Subscription {
            hub: self.clone(),
            id,
            notify,
        }
    }

    /// Bytes held in queues and entries queued, over every attachment.
    #[cfg(test)]
    pub fn queued(&self) -> (usize, usize) {
        let state = self.lock();
        let subs = state.subs.values();
        subs.fold((0, 0), |(b, n), s| (b + s.bytes, n + s.queue.len()))
    }

    fn take(&self, id: u64) -> Option<Delivery> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let sub = state.subs.get_mut(&id)?;
        if let Some(catch_up) = sub.catch_up.take() {
            let data = catch_up.read(&state.ring);
            if !data.is_empty() {
                return Some(Delivery::Data(data));
            }
        }
        if let Some(chunk) = sub.queue.pop_front() {
            sub.bytes -= chunk.len();
            return Some(Delivery::Data(chunk));
        }
        sub.end.clone()
    }
}

impl CatchUp {
    fn read(self, ring: &Ring) -> Bytes {
        match self {
            CatchUp::Join => ring.snapshot(),
            CatchUp::Missed(missed) if missed <= ring.len() as u64 => ring.tail(missed as usize),
            CatchUp::Missed(missed) => {
                let screen = ring.snapshot();
                let note = format!(
                    "\r\n[uptun: this stream fell behind; {} bytes of output skipped]\r\n",
                    missed - screen.len() as u64
                );
                let mut out = BytesMut::with_capacity(note.len() + screen.len());
                out.put_slice(note.as_bytes());
                out.put_slice(&screen);
                out.freeze()
            }
        }
    }
}

impl Subscription {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next delivery, waiting for one; after `End`, `End` again.
    pub async fn next(&self) -> Delivery {
        loop {
            if let Some(delivery) = self.hub.take(self.id) {
                return delivery;
            }
            // A notification sent since `take` is kept as a permit.
            self.notify.notified().await;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().subs.remove(&self.id);
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
