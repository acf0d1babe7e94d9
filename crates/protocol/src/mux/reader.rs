//! The link reader: decodes frames and dispatches them to streams. It never
//! waits on anything but the socket and, for a new stream, room in the
//! accept backlog (which the application drains without waiting on links),
//! so a stalled stream or a full writer queue cannot stop frames for other
//! streams from being read.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

use super::incoming::IncomingStream;
use super::link::LinkShared;
use super::stream::{Acceptance, MuxStream, StreamShared};
use crate::codec::FrameCodec;
use crate::error::{ProtocolError, StreamError};
use crate::frame::{Frame, FrameType};
use crate::open::decode_open;
use crate::terminal::{ExitStatus, TermSize};

pub(crate) async fn run<R: AsyncRead + Unpin>(
    mut read: R,
    initial: BytesMut,
    link: Arc<LinkShared>,
    incoming: mpsc::Sender<IncomingStream>,
) -> Result<(), ProtocolError> {
    // Frames that came in with the handshake answer are decoded before the
    // first read: nothing else may arrive to prompt one.
    let mut buf = initial;
    let idle = link.config.idle_timeout;
    // One timer for the link's silence, moved on only when it fires: a
    // timer per read would cost a timer-wheel entry per read.
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    let mut last_read = Instant::now();
    loop {
        while let Some(frame) = FrameCodec.decode(&mut buf)? {
            if let Some(stream) = dispatch(&link, frame)? {
                // A burst of OPENs waits for room in the bounded backlog
                // rather than being refused: the application drains it
                // without waiting on this link, so the wait is short, and a
                // burst after a stall is served instead of turned away.
                tokio::select! {
                    sent = incoming.send(stream) => if let Err(mpsc::error::SendError(stream)) = sent {
                        stream.refuse("this side no longer accepts streams");
                    },
                    _ = link.cancel.cancelled() => return Ok(()),
                }
                // Time spent waiting on the application is not silence
                // from the peer: bytes may be waiting in the socket.
                last_read = Instant::now();
            }
        }
        let mut limited = (&mut read).take(FrameCodec::read_len(&buf) as u64);
        let read = tokio::select! {
            _ = link.cancel.cancelled() => return Ok(()),
            _ = &mut silence => {
                if last_read.elapsed() >= idle {
                    return Err(ProtocolError::Silent(idle));
                }
                silence.as_mut().reset(last_read + idle);
                continue;
            }
            read = limited.read_buf(&mut buf) => read,
        };
        last_read = Instant::now();
        match read {
            Ok(0) if buf.is_empty() => return Ok(()),
            Ok(0) => return Err(ProtocolError::Truncated),
            Ok(_) => {}
            Err(err) => return Err(err.into()),
        }
    }
}

/// Handles one frame; a new stream the peer opened is returned, for the
/// caller to queue.
fn dispatch(link: &Arc<LinkShared>, frame: Frame) -> Result<Option<IncomingStream>, ProtocolError> {
    if frame.kind.is_link_level() != (frame.stream == 0) {
        return Err(ProtocolError::malformed(
            frame.kind,
            if frame.stream == 0 {
                "stream 0 is the link itself"
            } else {
                "must be sent on stream 0"
            },
        ));
    }
    match frame.kind {
        FrameType::Ping => {
            if frame.payload.len() != 8 {
                return Err(ProtocolError::malformed(
                    frame.kind,
                    "payload must be 8 bytes",
                ));
            }
            // Copied: a slice would pin the whole read buffer while the
            // PONG waits behind a writer the peer has stopped reading.
            let stamp = Bytes::copy_from_slice(&frame.payload);
            link.send_ctrl_now(Frame::new(FrameType::Pong, 0, stamp));
        }
        FrameType::Pong => {
            if let Ok(raw) = <[u8; 8]>::try_from(&frame.payload[..]) {
                link.record_rtt(u64::from_be_bytes(raw));
            }
        }
        FrameType::GoAway => {
            tracing::info!(reason = %frame.reason(), "peer sent GOAWAY: no new streams on this link");
            link.peer_goaway.store(true, Ordering::Relaxed);
        }
        FrameType::Open => return on_open(link, frame),
        _ => on_stream_frame(link, frame)?,
    }
    Ok(None)
}

fn on_open(link: &Arc<LinkShared>, frame: Frame) -> Result<Option<IncomingStream>, ProtocolError> {
    let id = frame.stream;
    if !link.role.is_peer_id(id) {
        return Err(ProtocolError::WrongIdSpace(id));
    }
    let refuse =
        |reason: &str| link.send_ctrl_now(Frame::with_reason(FrameType::Refuse, id, reason));
    // A bad OPEN costs only that stream, not the link.
    let open = match decode_open(&frame.payload) {
        Ok(parts) => parts,
        Err(err) => {
            refuse(&err.to_string());
            return Ok(None);
        }
    };
    if !link.config.accept_incoming {
        refuse("this side does not accept streams");
        return Ok(None);
    }
    let shared = Arc::new(StreamShared::new(
        id,
        link.config.window,
        link.peer_window,
        Acceptance::Accepted,
    ));
    {
        let mut streams = link.streams();
        if streams.contains_key(&id) {
            return Err(ProtocolError::DuplicateStream(id));
        }
        if streams.len() >= link.config.max_streams {
            drop(streams);
            refuse("too many streams on this link");
            return Ok(None);
        }
        streams.insert(id, shared.clone());
    }
    Ok(Some(IncomingStream {
        channel: open.channel,
        peer: open.peer,
        term: open.term,
        stream: MuxStream::new(shared, link.clone()),
    }))
}

/// Wakes the task a state change was for; call it once the lock is dropped.
fn wake(waiter: Option<std::task::Waker>) {
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

fn on_stream_frame(link: &Arc<LinkShared>, frame: Frame) -> Result<(), ProtocolError> {
    let id = frame.stream;
    let Some(stream) = link.streams().get(&id).cloned() else {
        // The stream is gone on this side (we reset or dropped it) and the
        // frame crossed our RESET in flight: nothing to deliver it to. An
        // ACCEPT for a stream we opened and dropped means our RESET overtook
        // its OPEN (RESET skips the data queue) and the peer now holds a
        // stream nobody will close: reset it again.
        if frame.kind == FrameType::Accept && !link.role.is_peer_id(id) {
            link.send_ctrl_now(Frame::with_reason(FrameType::Reset, id, "stream closed"));
        }
        return Ok(());
    };
    match frame.kind {
        FrameType::Data => {
            if frame.payload.is_empty() {
                return Ok(());
            }
            let mut st = stream.lock();
            st.recv.on_data(frame.payload.len()).map_err(|credit| {
                ProtocolError::CreditExceeded {
                    stream: id,
                    len: frame.payload.len(),
                    credit,
                }
            })?;
            if st.failed.is_none() && !st.remote_fin {
                // The queue copies what would pin a read buffer (inbound.rs).
                st.inbound.push(frame.payload);
                let waiter = st.take_read_waiter();
                drop(st);
                wake(waiter);
            }
        }
        FrameType::Window => {
            let increment = frame.window_increment()?;
            let mut st = stream.lock();
            st.send
                .grant(increment)
                .map_err(|()| ProtocolError::WindowOverflow(id))?;
            let waiter = st.take_write_waiter();
            drop(st);
            wake(waiter);
        }
        FrameType::Fin => {
            let mut st = stream.lock();
            st.remote_fin = true;
            st.remote_exit = ExitStatus::decode(&frame.payload);
            let waiter = st.take_read_waiter();
            drop(st);
            wake(waiter);
        }
        FrameType::Accept => {
            let mut st = stream.lock();
            if st.acceptance == Acceptance::Pending {
                st.acceptance = Acceptance::Accepted;
            }
            let waiter = st.take_read_waiter();
            drop(st);
            wake(waiter);
        }
        FrameType::Refuse => {
            let reason = frame.reason();
            {
                let mut st = stream.lock();
                st.acceptance = Acceptance::Refused(reason.clone());
                // Refused is final: dropping the handle owes the peer no RESET.
                st.failed.get_or_insert(StreamError::Refused(reason));
            }
            stream.wake_all();
        }
        FrameType::Reset => stream.fail(StreamError::Reset(frame.reason())),
        FrameType::Resize => {
            let Some(size) = TermSize::decode(&frame.payload) else {
                return Err(ProtocolError::malformed(
                    frame.kind,
                    "payload must be 4 bytes",
                ));
            };
            // Kept for whoever takes sizes (a terminal target, a bridge);
            // a plain relay never does, and the slot just holds the last.
            let mut st = stream.lock();
            st.resize = Some(size);
            let waiter = st.take_read_waiter();
            drop(st);
            wake(waiter);
        }
        FrameType::Open | FrameType::Ping | FrameType::Pong | FrameType::GoAway => {
            unreachable!("dispatched earlier")
        }
    }
    Ok(())
}
