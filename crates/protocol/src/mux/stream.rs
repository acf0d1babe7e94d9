//! One stream inside a link: its shared state (inbound queue, credit, close
//! flags) and the handle the application uses to send and receive.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use super::flow_control::{RecvWindow, SendCredit};
use super::inbound::Inbound;
use super::link::{LinkShared, Outgoing};
use crate::error::StreamError;
use crate::frame::{Frame, FrameType};
use crate::terminal::{ExitStatus, TermSize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acceptance {
    Pending,
    Accepted,
    Refused(String),
}

#[derive(Debug)]
pub(crate) struct State {
    pub inbound: Inbound,
    pub recv: RecvWindow,
    pub send: SendCredit,
    /// Length of the chunk last handed to the consumer; it is credited back
    /// on the next `recv`, once the consumer has written it out.
    handed_out: u32,
    pub remote_fin: bool,
    pub(super) local_fin: bool,
    /// The exit status the peer's FIN carried, if it carried one.
    pub remote_exit: Option<ExitStatus>,
    /// The latest terminal size the peer sent and nobody has taken yet:
    /// one slot, so a flood of RESIZE frames costs nothing but the last.
    pub resize: Option<TermSize>,
    pub acceptance: Acceptance,
    /// Set once the stream is dead: reset by either side, or its link closed.
    pub failed: Option<StreamError>,
    /// The task waiting for inbound data, FIN, ACCEPT/REFUSE or failure.
    read_waiter: Option<Waker>,
    /// The task waiting for credit or failure.
    write_waiter: Option<Waker>,
    /// Tasks waiting only for the stream to die (`MuxStream::failed`).
    death_waiters: Vec<Waker>,
}

impl State {
    /// Takes the waker of the receiving side, to wake once the lock is
    /// dropped.
    pub fn take_read_waiter(&mut self) -> Option<Waker> {
        self.read_waiter.take()
    }

    pub fn take_write_waiter(&mut self) -> Option<Waker> {
        self.write_waiter.take()
    }
}

/// Leaves the task's waker in `slot` (a clone only when it changed).
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// State shared by the link reader and the stream's handle. Waiting tasks
/// leave their wakers in the state itself, under the same lock as the
/// conditions they wait for, so no wake-up is lost and a waiting stream
/// holds no waiter node in its task.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub id: u32,
    state: Mutex<State>,
}

impl StreamShared {
    pub fn new(id: u32, recv_window: u32, send_window: u32, acceptance: Acceptance) -> Self {
        StreamShared {
            id,
            state: Mutex::new(State {
                inbound: Inbound::default(),
                recv: RecvWindow::new(recv_window),
                send: SendCredit::new(send_window),
                handed_out: 0,
                remote_fin: false,
                local_fin: false,
                remote_exit: None,
                resize: None,
                acceptance,
                failed: None,
                read_waiter: None,
                write_waiter: None,
                death_waiters: Vec::new(),
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the stream dead (first reason wins) and wakes every waiter.
    pub fn fail(&self, err: StreamError) {
        self.lock().failed.get_or_insert(err);
        self.wake_all();
    }

    /// Wakes every waiting task: the receiving and the sending direction and
    /// those waiting for the stream to die.
    pub fn wake_all(&self) {
        let (read, write, death) = {
            let mut st = self.lock();
            (
                st.read_waiter.take(),
                st.write_waiter.take(),
                std::mem::take(&mut st.death_waiters),
            )
        };
        read.into_iter()
            .chain(write)
            .chain(death)
            .for_each(Waker::wake);
    }
}

/// What a stream delivers: bytes, a terminal size, or its end (with the
/// exit status the peer's FIN carried, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Data(Bytes),
    Resize(TermSize),
    End(Option<ExitStatus>),
}

/// A stream: bytes in both directions with per-stream flow control.
///
/// Methods take `&self` so one task can drive both directions at once
/// (`relay` joins a reading and a writing future over the same stream).
/// Dropping a stream that has not finished both ways sends RESET.
#[derive(Debug)]
pub struct MuxStream {
    shared: Arc<StreamShared>,
    pub(crate) link: Arc<LinkShared>,
}

impl MuxStream {
    pub(crate) fn new(shared: Arc<StreamShared>, link: Arc<LinkShared>) -> Self {
        MuxStream { shared, link }
    }

    pub fn id(&self) -> u32 {
        self.shared.id
    }

    /// The largest DATA payload this side sends; a useful read size.
    pub fn max_data(&self) -> usize {
        self.link.config.max_data
    }

    /// Whether the peer's FIN has arrived: everything it will send is queued.
    pub(crate) fn remote_finished(&self) -> bool {
        self.shared.lock().remote_fin
    }

    /// Waits for the peer's ACCEPT (or REFUSE) of a stream this side opened.
    pub async fn accepted(&self) -> Result<(), StreamError> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            match &st.acceptance {
                Acceptance::Accepted => return Poll::Ready(Ok(())),
                Acceptance::Refused(reason) => {
                    return Poll::Ready(Err(StreamError::Refused(reason.clone())))
                }
                Acceptance::Pending => {}
            }
            if let Some(err) = &st.failed {
                return Poll::Ready(Err(err.clone()));
            }
            register(&mut st.read_waiter, cx);
            Poll::Pending
        })
        .await
    }

    /// The next chunk from the peer; `Ok(None)` once the peer sent FIN.
    /// Calling `recv` again tells the stream the previous chunk was consumed,
    /// which is when its bytes are granted back to the sender. Terminal
    /// sizes are left for [`MuxStream::recv_event`].
    pub async fn recv(&self) -> Result<Option<Bytes>, StreamError> {
        match poll_fn(|cx| self.poll_event(cx, false)).await? {
            StreamEvent::Data(chunk) => Ok(Some(chunk)),
            StreamEvent::End(_) => Ok(None),
            StreamEvent::Resize(_) => unreachable!("sizes are only taken when asked for"),
        }
    }

    /// What `recv` and `recv_event` wait for; a new terminal size comes
    /// before queued data when `resizes` asks for it.
    pub(super) fn poll_event(
        &self,
        cx: &Context<'_>,
        resizes: bool,
    ) -> Poll<Result<StreamEvent, StreamError>> {
        let (outcome, update) = {
            let mut st = self.shared.lock();
            let handed = std::mem::take(&mut st.handed_out);
            st.recv.consumed(handed);
            // A reset discards what is queued; a closed link does not:
            // data and FIN that arrived before it closed are delivered.
            let delivered_anyway = matches!(st.failed, Some(StreamError::LinkClosed(_)));
            if st.failed.is_some() && !delivered_anyway {
                (Some(Err(st.failed.clone().expect("checked"))), None)
            } else if let Acceptance::Refused(reason) = &st.acceptance {
                (Some(Err(StreamError::Refused(reason.clone()))), None)
            } else if let Some(size) = st.resize.take_if(|_| resizes) {
                (Some(Ok(StreamEvent::Resize(size))), None)
            } else if let Some(chunk) = st.inbound.pop() {
                st.handed_out = chunk.len() as u32;
                (Some(Ok(StreamEvent::Data(chunk))), st.recv.take_update())
            } else if st.remote_fin {
                (Some(Ok(StreamEvent::End(st.remote_exit))), None)
            } else if let Some(err) = &st.failed {
                (Some(Err(err.clone())), None)
            } else {
                register(&mut st.read_waiter, cx);
                (None, st.recv.take_update())
            }
        };
        if let Some(increment) = update {
            self.link
                .send_ctrl_now(Frame::window(self.shared.id, increment));
        }
        match outcome {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }

    /// Waits until there is send credit, then spends up to `max` bytes of it.
    async fn take_credit(&self, max: usize) -> Result<usize, StreamError> {
        self.wait_for_credit(|st| {
            if st.local_fin {
                return Some(Err(StreamError::Reset("send after FIN".into())));
            }
            let n = st.send.take(max);
            (n > 0).then_some(Ok(n))
        })
        .await
    }

    /// Waits until the peer has granted credit and returns how much.
    pub async fn credit(&self) -> Result<usize, StreamError> {
        self.wait_for_credit(|st| {
            let n = st.send.available();
            (n > 0).then_some(Ok(n))
        })
        .await
    }

    /// Waits until `check` answers, the stream fails or is refused.
    async fn wait_for_credit<T>(
        &self,
        mut check: impl FnMut(&mut State) -> Option<Result<T, StreamError>>,
    ) -> Result<T, StreamError> {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(err) = &st.failed {
                return Poll::Ready(Err(err.clone()));
            }
            if let Acceptance::Refused(reason) = &st.acceptance {
                return Poll::Ready(Err(StreamError::Refused(reason.clone())));
            }
            if let Some(answer) = check(&mut st) {
                return Poll::Ready(answer);
            }
            register(&mut st.write_waiter, cx);
            Poll::Pending
        })
        .await
    }

    /// Sends bytes, waiting for credit as needed and cutting them into DATA
    /// frames of at most the link's chunk size.
    pub async fn send(&self, mut data: Bytes) -> Result<(), StreamError> {
        let max = self.link.config.max_data;
        while !data.is_empty() {
            let n = self.take_credit(max.min(data.len())).await?;
            let chunk = data.split_to(n);
            self.link
                .send_data(Outgoing::Frame(Frame::new(
                    FrameType::Data,
                    self.shared.id,
                    chunk,
                )))
                .await?;
        }
        Ok(())
    }

    /// Half-close: no more data from this side. The peer can still send.
    pub async fn finish(&self) -> Result<(), StreamError> {
        self.finish_with(None).await
    }

    /// Half-close, telling the peer how the process behind the stream
    /// ended when `status` is given (FIN's payload, §4.4).
    pub async fn finish_with(&self, status: Option<ExitStatus>) -> Result<(), StreamError> {
        {
            let mut st = self.shared.lock();
            if let Some(err) = &st.failed {
                return Err(err.clone());
            }
            if std::mem::replace(&mut st.local_fin, true) {
                return Ok(());
            }
        }
        let payload = status.map(ExitStatus::encode).unwrap_or_default();
        let fin = Frame::new(FrameType::Fin, self.shared.id, payload);
        self.link.send_data(Outgoing::Frame(fin)).await
    }

    /// Aborts the stream both ways and tells the peer why.
    pub fn reset(&self, reason: &str) {
        let first = {
            let mut st = self.shared.lock();
            let first = st.failed.is_none();
            st.failed
                .get_or_insert_with(|| StreamError::Reset(reason.to_string()));
            first
        };
        if first {
            self.link
                .send_ctrl_now(Frame::with_reason(FrameType::Reset, self.shared.id, reason));
        }
        self.shared.wake_all();
    }

    /// Resolves once the stream is dead (reset, refused, or its link closed),
    /// so a task waiting on something else can give up.
    pub async fn failed(&self) -> StreamError {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if let Some(err) = &st.failed {
                return Poll::Ready(err.clone());
            }
            // Waiters that gave up stay until the stream dies; the same task
            // asking again is not added twice, so the list stays as short as
            // the number of tasks that watch this stream.
            if !st.death_waiters.iter().any(|w| w.will_wake(cx.waker())) {
                st.death_waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Sends ACCEPT for a stream the peer opened.
    pub(crate) async fn send_accept(&self) -> Result<(), StreamError> {
        self.link
            .send_data(Outgoing::Frame(Frame::empty(
                FrameType::Accept,
                self.shared.id,
            )))
            .await
    }

    /// Sends REFUSE and marks the stream dead so dropping it sends nothing more.
    pub(crate) fn send_refuse(&self, reason: &str) {
        self.shared
            .lock()
            .failed
            .get_or_insert_with(|| StreamError::Refused(reason.to_string()));
        self.link.send_ctrl_now(Frame::with_reason(
            FrameType::Refuse,
            self.shared.id,
            reason,
        ));
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        let clean = {
            let st = self.shared.lock();
            st.failed.is_some() || (st.local_fin && st.remote_fin)
        };
        if !clean {
            self.link.send_ctrl_now(Frame::with_reason(
                FrameType::Reset,
                self.shared.id,
                "stream closed",
            ));
        }
        self.link.remove_stream(self.shared.id);
    }
}
