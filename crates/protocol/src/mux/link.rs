//! A link's shared state and the handle that opens streams and closes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::control::ControlQueue;
use super::incoming::IncomingStream;
use super::stream::{Acceptance, MuxStream, StreamShared};
use super::{reader, writer, Config, Role};
use crate::error::{ProtocolError, StreamError};
use crate::frame::{Frame, FrameType};
use crate::open::encode_open;
use tracing::Instrument;

/// Frames waiting for the writer in stream order (OPEN, ACCEPT, DATA, FIN),
/// plus flush markers.
#[derive(Debug)]
pub(crate) enum Outgoing {
    Frame(Frame),
    /// Answered once everything queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// DATA waiting for the writer, in frames. Bounds the bytes queued per link
/// to this times `max_data`; stream tasks wait (fairly, FIFO) when it is full.
const DATA_QUEUE: usize = 32;
/// Control entries a link may owe beyond one per open stream (see control.rs).
const CTRL_SLACK: usize = 1024;

#[derive(Debug)]
pub(crate) struct LinkShared {
    pub streams: Mutex<HashMap<u32, Arc<StreamShared>>>,
    next_id: AtomicU32,
    data_tx: mpsc::Sender<Outgoing>,
    pub ctrl: ControlQueue,
    pub cancel: CancellationToken,
    pub config: Config,
    pub role: Role,
    pub peer_window: u32,
    pub peer_goaway: AtomicBool,
    close_reason: Mutex<Option<String>>,
    rtt_micros: AtomicU64,
    /// Woken whenever a stream is removed (for `drain`).
    streams_changed: tokio::sync::Notify,
    /// Woken whenever a PONG comes (for `ping`).
    pongs: tokio::sync::Notify,
    pub started: Instant,
}

impl LinkShared {
    pub fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<StreamShared>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn closed_error(&self) -> StreamError {
        let reason = self
            .close_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        StreamError::LinkClosed(reason.unwrap_or_else(|| "link closed".into()))
    }

    /// Queues a frame behind earlier DATA of the same stream.
    pub async fn send_data(&self, item: Outgoing) -> Result<(), StreamError> {
        tokio::select! {
            sent = self.data_tx.send(item) => sent.map_err(|_| self.closed_error()),
            _ = self.cancel.cancelled() => Err(self.closed_error()),
        }
    }

    /// Queues a control frame, which overtakes queued DATA. Never waits:
    /// the queue is bounded by construction (control.rs). Past its cap the
    /// peer causes answers faster than it reads them, and the link closes.
    pub fn send_ctrl_now(&self, frame: Frame) {
        if self.ctrl.push(frame).is_err() {
            self.close("the peer opened or ended streams faster than it read the answers".into());
        }
    }

    pub fn remove_stream(&self, id: u32) {
        self.streams().remove(&id);
        self.streams_changed.notify_waiters();
    }

    /// Records why the link ends (first reason wins) and stops its tasks.
    pub fn close(&self, reason: String) {
        {
            let mut slot = self.close_reason.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(reason);
            }
        }
        self.cancel.cancel();
    }

    pub fn record_rtt(&self, sent_micros: u64) {
        let now = self.started.elapsed().as_micros() as u64;
        self.rtt_micros
            .store(now.saturating_sub(sent_micros).max(1), Ordering::Relaxed);
        self.pongs.notify_waiters();
    }
}

/// Opens streams on a link and observes it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LinkHandle {
    link: Arc<LinkShared>,
}

/// Streams the peer opens on a link, in order.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<IncomingStream>,
}

impl Incoming {
    /// The next stream the peer opened; `None` once the link is closed.
    pub async fn next(&mut self) -> Option<IncomingStream> {
        self.rx.recv().await
    }
}

/// Starts a link over an upgraded connection's two halves. `initial` holds
/// bytes already read past the handshake; `peer_window` is the receive window
/// the peer announced.
pub fn spawn<R, W>(
    read: R,
    write: W,
    initial: BytesMut,
    role: Role,
    config: Config,
    peer_window: u32,
) -> (LinkHandle, Incoming)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
    let (incoming_tx, incoming_rx) = mpsc::channel(config.accept_backlog.max(1));
    let ping_interval = config.ping_interval;
    let link = Arc::new(LinkShared {
        streams: Mutex::new(HashMap::new()),
        next_id: AtomicU32::new(role.first_id()),
        data_tx,
        ctrl: ControlQueue::new(config.max_streams + CTRL_SLACK),
        cancel: CancellationToken::new(),
        config,
        role,
        peer_window,
        peer_goaway: AtomicBool::new(false),
        close_reason: Mutex::new(None),
        rtt_micros: AtomicU64::new(0),
        streams_changed: tokio::sync::Notify::new(),
        pongs: tokio::sync::Notify::new(),
        started: Instant::now(),
    });

    // The tasks log inside the caller's span, which names the peer.
    let l = link.clone();
    let read_task = async move {
        let reason = match reader::run(read, initial, l.clone(), incoming_tx).await {
            Ok(()) => "the peer closed the link".to_string(),
            Err(ProtocolError::Io(err)) => format!("read failed: {err}"),
            Err(err) => {
                if !l.cancel.is_cancelled() {
                    tracing::warn!(%err, "protocol error: closing the link");
                }
                format!("protocol error: {err}")
            }
        };
        l.close(reason);
    };
    tokio::spawn(read_task.in_current_span());
    let l = link.clone();
    let write_task = async move {
        let timeout = l.config.idle_timeout;
        if let Err(err) = writer::run(write, data_rx, &l.ctrl, &l.cancel, timeout).await {
            l.close(format!("write failed: {err}"));
        }
    };
    tokio::spawn(write_task.in_current_span());
    let l = link.clone();
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        loop {
            tokio::select! {
                _ = l.cancel.cancelled() => break,
                _ = tick.tick() => {
                    let stamp = l.started.elapsed().as_micros() as u64;
                    l.send_ctrl_now(Frame::new(FrameType::Ping, 0, bytes::Bytes::copy_from_slice(&stamp.to_be_bytes())));
                }
            }
        }
        // Every stream still open learns the link is gone.
        let err = l.closed_error();
        let streams: Vec<_> = l.streams().values().cloned().collect();
        for s in streams {
            s.fail(err.clone());
        }
    });
    (LinkHandle { link }, Incoming { rx: incoming_rx })
}

impl LinkHandle {
    /// Opens a stream to `channel` on the peer. `peer` is the user's address,
    /// for the far side's logs. Data may be sent at once, before ACCEPT.
    pub async fn open(&self, channel: &str, peer: &str) -> Result<MuxStream, StreamError> {
        self.open_with_term(channel, peer, None).await
    }

    /// [`LinkHandle::open`], telling the peer the user's terminal type
    /// (`TERM`, §4.4) for a terminal target. A `term` that is not
    /// [`crate::valid_term`] is left out.
    pub async fn open_with_term(
        &self,
        channel: &str,
        peer: &str,
        term: Option<&str>,
    ) -> Result<MuxStream, StreamError> {
        let link = &self.link;
        if !crate::frame::valid_channel_name(channel) {
            return Err(StreamError::Refused(format!(
                "{channel:?} is not a channel name: use letters, digits, '-', '_' or '.'"
            )));
        }
        if link.cancel.is_cancelled() {
            return Err(link.closed_error());
        }
        if link.peer_goaway.load(Ordering::Relaxed) {
            return Err(StreamError::LinkClosed("the peer is going away".into()));
        }
        // Ids are never reused: once the space is spent, the link must be replaced.
        let id = link
            .next_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| id.checked_add(2))
            .map_err(|_| StreamError::LinkClosed("stream ids exhausted; reconnect".into()))?;
        let shared = Arc::new(StreamShared::new(
            id,
            link.config.window,
            link.peer_window,
            Acceptance::Pending,
        ));
        {
            let mut streams = link.streams();
            if streams.len() >= link.config.max_streams {
                return Err(StreamError::Refused(format!(
                    "too many streams on this link ({})",
                    link.config.max_streams
                )));
            }
            streams.insert(id, shared.clone());
        }
        let stream = MuxStream::new(shared, link.clone());
        if link.cancel.is_cancelled() {
            return Err(link.closed_error());
        }
        link.send_data(Outgoing::Frame(Frame::new(
            FrameType::Open,
            id,
            encode_open(channel, peer, term),
        )))
        .await?;
        Ok(stream)
    }

    /// Whether both handles are for the same link.
    pub fn same_link(&self, other: &LinkHandle) -> bool {
        Arc::ptr_eq(&self.link, &other.link)
    }

    /// Closes the link now; every stream on it fails.
    pub fn close(&self, reason: &str) {
        self.link.close(reason.to_string());
    }

    /// Resolves once the link is closed, for whatever reason.
    pub async fn closed(&self) {
        self.link.cancel.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.link.cancel.is_cancelled()
    }

    /// Why the link closed, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.is_closed()
            .then(|| self.link.closed_error().to_string())
    }

    /// Streams currently open on the link.
    pub fn stream_count(&self) -> usize {
        self.link.streams().len()
    }

    /// Round-trip time measured by the last PING, if any.
    pub fn rtt(&self) -> Option<Duration> {
        match self.link.rtt_micros.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Sends a PING now and waits for a PONG (to it, or to an earlier
    /// one): proof that frames cross the link both ways, e.g. that a router
    /// in front which answered 101 does not hold what follows. Returns the
    /// round-trip time; fails once the link closes.
    pub async fn ping(&self) -> Result<Duration, StreamError> {
        let link = &self.link;
        let pong = link.pongs.notified();
        tokio::pin!(pong);
        pong.as_mut().enable();
        let stamp = link.started.elapsed().as_micros() as u64;
        link.send_ctrl_now(Frame::new(
            FrameType::Ping,
            0,
            bytes::Bytes::copy_from_slice(&stamp.to_be_bytes()),
        ));
        tokio::select! {
            _ = pong => Ok(self.rtt().unwrap_or_default()),
            _ = link.cancel.cancelled() => Err(link.closed_error()),
        }
    }

    /// Whether the peer announced GOAWAY (no new streams on this link).
    pub fn peer_going_away(&self) -> bool {
        self.link.peer_goaway.load(Ordering::Relaxed)
    }

    /// Tells the peer not to open new streams here; existing ones finish.
    pub async fn go_away(&self, reason: &str) -> Result<(), StreamError> {
        if self.link.cancel.is_cancelled() {
            return Err(self.link.closed_error());
        }
        self.link
            .send_ctrl_now(Frame::with_reason(FrameType::GoAway, 0, reason));
        Ok(())
    }

    /// Graceful close: GOAWAY, then wait (up to `limit`) for the open
    /// streams to finish, write out what is queued, and close.
    pub async fn drain(&self, reason: &str, limit: Duration) {
        let _ = self.go_away(reason).await;
        let finished = async {
            loop {
                let changed = self.link.streams_changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.stream_count() == 0 {
                    return;
                }
                tokio::select! {
                    _ = changed => {}
                    _ = self.closed() => return,
                }
            }
        };
        let _ = tokio::time::timeout(limit, finished).await;
        let _ = tokio::time::timeout(limit, self.flush()).await;
        self.close(reason);
    }

    /// Waits until every frame queued so far has been written to the socket.
    pub async fn flush(&self) -> Result<(), StreamError> {
        let (tx, rx) = oneshot::channel();
        self.link.send_data(Outgoing::Flush(tx)).await?;
        tokio::select! {
            r = rx => r.map_err(|_| self.link.closed_error()),
            _ = self.link.cancel.cancelled() => Err(self.link.closed_error()),
        }
    }
}
