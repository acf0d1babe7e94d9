//! The translator's I/O. The mux runs over one end of an in-memory pipe as
//! it runs over any socket; this task holds the other end and the legacy
//! socket, and turns frames into packets and back (table.rs decides what).
//!
//! Bounds, though rhost's protocol has no flow control: the mux sends DATA
//! only within the credit this side hands back, and it hands credit back
//! once the packet is written to the legacy socket, so a legacy peer that
//! reads slowly stops the users' reads. The other way, legacy data goes to
//! the mux only within the mux's credit; while one stream has none, the
//! legacy socket is not read at all (the head-of-line cost: one slow user
//! holds up the link's other connections; the protocol offers nothing
//! better).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};

use super::packet::{Event, Packet, PacketCodec};
use super::table::{data_frame, Credit, LegacyRole, Out, Table};
use crate::frame::{Frame, FrameType};
use crate::mux::{Config, Incoming, LinkHandle, Role};
use crate::FrameCodec;

/// The in-memory pipe between the mux and the translator.
const EDGE_BUFFER: usize = 64 * 1024;
/// The window this side announces to the mux: what a stream may have in
/// flight toward the legacy socket.
const LEGACY_WINDOW: u32 = 128 * 1024;
/// Packets the reading half may hand the writing half (`po`, `c-` for a
/// connection over the limit) before it waits.
const TO_LEGACY_QUEUE: usize = 256;

type EdgeWriter = FramedWrite<WriteHalf<DuplexStream>, FrameCodec>;

/// What the two halves share.
struct Shared {
    table: Mutex<Table>,
    /// Woken whenever the mux grants credit or a stream ends.
    credit: Notify,
    edge: tokio::sync::Mutex<EdgeWriter>,
    started: Instant,
    /// When the legacy peer last sent anything, in ms since `started`.
    heard_ms: AtomicU64,
    /// Whether it ever answered our `pi`: only then is silence death.
    answers_pings: AtomicBool,
    /// The reading half waits for a user's credit and reads nothing: the
    /// peer's silence then is ours, not its.
    parked: AtomicBool,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn heard(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.heard_ms.store(ms, Ordering::Relaxed);
    }

    fn silent_for(&self) -> Duration {
        let heard = Duration::from_millis(self.heard_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(heard)
    }

    async fn to_mux(&self, frame: Frame) -> Result<(), String> {
        let mut edge = self.edge.lock().await;
        edge.send(frame).await.map_err(|e| e.to_string())
    }
}

/// Starts a link that speaks rhost's packets on `read`/`write` (after the
/// 101; `leftover` holds bytes read past the request head) and native
/// frames to the rest of the server: the returned handle and incoming
/// streams are an ordinary link's.
pub fn spawn_legacy<R, W>(
    read: R,
    write: W,
    leftover: BytesMut,
    role: LegacyRole,
    mux: Config,
) -> (LinkHandle, Incoming)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mux_end, edge) = tokio::io::duplex(EDGE_BUFFER);
    let (mux_read, mux_write) = tokio::io::split(mux_end);
    let (edge_read, edge_write) = tokio::io::split(edge);
    let timing = (mux.ping_interval, mux.idle_timeout);
    let shared = Arc::new(Shared {
        table: Mutex::new(Table::new(role, mux.window, mux.max_streams)),
        credit: Notify::new(),
        edge: tokio::sync::Mutex::new(FramedWrite::new(edge_write, FrameCodec)),
        started: Instant::now(),
        heard_ms: AtomicU64::new(0),
        answers_pings: AtomicBool::new(false),
        parked: AtomicBool::new(false),
    });
    let (link, incoming) = crate::spawn_link(
        mux_read,
        mux_write,
        BytesMut::new(),
        Role::Acceptor,
        mux,
        LEGACY_WINDOW,
    );
    let mut packets = FramedRead::new(read, PacketCodec);
    packets.read_buffer_mut().extend_from_slice(&leftover);
    let halves = Halves {
        packets: FramedWrite::new(write, PacketCodec),
        frames: FramedRead::new(edge_read, FrameCodec),
        timing,
    };
    tokio::spawn(translate(shared, packets, halves, link.clone()));
    (link, incoming)
}

/// What the writing half owns.
struct Halves<W> {
    packets: FramedWrite<W, PacketCodec>,
    frames: FramedRead<ReadHalf<DuplexStream>, FrameCodec>,
    timing: (Duration, Duration),
}

/// Runs both ways until one ends or the mux closes the link; the link
/// then closes with the reason, and every stream on it fails.
async fn translate<R, W>(
    shared: Arc<Shared>,
    packets: FramedRead<R, PacketCodec>,
    halves: Halves<W>,
    link: LinkHandle,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (to_legacy, queued) = mpsc::channel(TO_LEGACY_QUEUE);
    let why = tokio::select! {
        why = from_legacy(&shared, packets, to_legacy) => why,
        why = to_legacy_peer(&shared, halves, queued) => why,
        _ = link.closed() => return,
    };
    tracing::debug!(%why, "legacy link ends");
    link.close(&why);
}

/// Reads packets: data goes to the mux within its credit, the rest
/// through the table.
async fn from_legacy<R: AsyncRead + Unpin>(
    shared: &Shared,
    mut packets: FramedRead<R, PacketCodec>,
    to_legacy: mpsc::Sender<Packet>,
) -> String {
    loop {
        let packet = match packets.next().await {
            None => return "the legacy peer closed the link".into(),
            Some(Err(err)) => return err.to_string(),
            Some(Ok(packet)) => packet,
        };
        shared.heard();
        if packet.event == Event::Data {
            if let Err(why) = deliver(shared, packet.tag, packet.body).await {
                return why;
            }
            continue;
        }
        if packet.event == Event::Pong {
            shared.answers_pings.store(true, Ordering::Relaxed);
        }
        let mut out = Vec::new();
        if let Err(why) = shared.table().on_packet(&packet, &mut out) {
            return why;
        }
        for item in out {
            let sent = match item {
                Out::Mux(frame) => shared.to_mux(frame).await,
                Out::Legacy(packet) => to_legacy
                    .send(packet)
                    .await
                    .map_err(|_| "the legacy writer stopped".to_string()),
            };
            if let Err(why) = sent {
                return why;
            }
        }
    }
}

/// Hands legacy data for `tag` to the mux as its credit allows, waiting
/// (and reading nothing more from the legacy peer) while there is none.
async fn deliver(shared: &Shared, tag: u32, mut body: Bytes) -> Result<(), String> {
    while !body.is_empty() {
        let credit = shared.table().take_credit(tag, body.len(), Instant::now());
        match credit {
            Credit::Drop => return Ok(()),
            Credit::Wait => {
                shared.parked.store(true, Ordering::Relaxed);
                shared.credit.notified().await;
                shared.parked.store(false, Ordering::Relaxed);
                // What the peer sent meanwhile is unread, not missing.
                shared.heard();
            }
            Credit::Send(id, n) => shared.to_mux(data_frame(id, body.split_to(n))).await?,
        }
    }
    Ok(())
}

/// Reads the mux's frames and writes packets; also sends `pi` every ping
/// interval and closes half-closes whose linger is over.
async fn to_legacy_peer<W: AsyncWrite + Unpin>(
    shared: &Shared,
    mut halves: Halves<W>,
    mut queued: mpsc::Receiver<Packet>,
) -> String {
    let (every, idle) = halves.timing;
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    let mut linger: Option<Instant> = None;
    loop {
        let mut out = Vec::new();
        let far = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            frame = halves.frames.next() => match frame {
                None => return "the link closed".into(),
                Some(Err(err)) => return err.to_string(),
                Some(Ok(frame)) if frame.kind == FrameType::Data => {
                    if let Err(why) = write_data(shared, &mut halves.packets, frame).await {
                        return why;
                    }
                    continue;
                }
                Some(Ok(frame)) => {
                    let mut table = shared.table();
                    if let Err(why) = table.on_frame(frame, Instant::now(), &mut out) {
                        return why;
                    }
                    linger = table.next_linger();
                    drop(table);
                    shared.credit.notify_one();
                }
            },
            Some(packet) = queued.recv() => out.push(Out::Legacy(packet)),
            _ = tokio::time::sleep_until(linger.unwrap_or(far)), if linger.is_some() => {
                linger = shared.table().expire(Instant::now(), &mut out);
                shared.credit.notify_one();
            }
            _ = ping.tick() => {
                let judged = shared.answers_pings.load(Ordering::Relaxed)
                    && !shared.parked.load(Ordering::Relaxed);
                if judged && shared.silent_for() >= idle {
                    return format!("the legacy peer sent nothing for {:.1} s: link is dead", idle.as_secs_f64());
                }
                out.push(Out::Legacy(Packet::new(Event::Ping, 0)));
            }
        }
        for item in out {
            let sent = match item {
                Out::Mux(frame) => shared.to_mux(frame).await,
                Out::Legacy(packet) => halves.packets.send(packet).await.map_err(|e| e.to_string()),
            };
            if let Err(why) = sent {
                return why;
            }
        }
    }
}

/// The mux's DATA: written to the legacy peer as `d+`, then its credit is
/// handed back. Data for a connection the legacy side closed is dropped,
/// its credit handed back all the same.
async fn write_data<W: AsyncWrite + Unpin>(
    shared: &Shared,
    packets: &mut FramedWrite<W, PacketCodec>,
    frame: Frame,
) -> Result<(), String> {
    let (id, len) = (frame.stream, frame.payload.len() as u32);
    let target = shared.table().data_tag(id);
    match target {
        Ok(tag) => {
            packets
                .send(Packet::data(tag, frame.payload))
                .await
                .map_err(|e| e.to_string())?;
        }
        Err(false) => return Ok(()),
        Err(true) => {}
    }
    shared.to_mux(Frame::window(id, len)).await
}

#[cfg(test)]
#[path = "bridge_tests.rs"]
mod tests;
