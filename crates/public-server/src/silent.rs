//! Connections that said nothing within the sniff timeout. They may speak a
//! protocol where the server talks first (the silent channel's target sends
//! a banner), or they may be a slow start: a link handshake or an HTTP
//! request whose first packet was late. A stream to the silent channel is
//! opened at once, speculatively, and whichever side speaks first decides.
//! User bytes that come first are classified as if they had come on time,
//! and the speculative stream is reset if they belong elsewhere. Once the
//! target has spoken, the user's first bytes are still checked: an HTTP
//! request or a link handshake (and the token in it) is never forwarded to
//! the silent channel's target; the connection is reset instead.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tracing::{debug, warn};
use uptun_protocol::relay_ending;

use crate::classify::{could_be_http_start, decide_from, looks_like_http, route_silent, Visitor};
use crate::idle::{bounded_by_idle, Activity};
use crate::meter::{MeteredStream, Way};
use crate::open::open_to_agent;
use crate::route::{Destination, Routed};
use crate::server::{serve as serve_visitor, turn_away};
use crate::socket::{self, Socket, SocketExt};
use crate::state::State;
use crate::users::relay_socket;

/// Serves a connection silent past the sniff timeout, routed with the
/// rules from `first` on.
pub(crate) async fn serve(socket: Socket, peer: SocketAddr, first: usize, state: Arc<State>) {
    let routed = route_silent(&state.config(), first);
    let channel = match &routed {
        Some(Routed::Channel(to)) => Some(to.channel.as_str()),
        _ => None,
    };
    state.metrics.silent_routed(channel, routed.is_some());
    let to = match routed {
        Some(Routed::Channel(to)) => to,
        Some(Routed::Reply {
            bytes,
            then,
            resume,
        }) => {
            let buf = BytesMut::new();
            let reply = Visitor::Reply {
                bytes,
                then,
                resume,
                buf,
            };
            return serve_visitor(socket, peer, reply, state).await;
        }
        Some(Routed::Close(bytes)) => {
            return serve_visitor(socket, peer, Visitor::Close { bytes }, state).await
        }
        None => {
            debug!(%peer, "no route takes a silent connection: reset");
            return socket.abort();
        }
    };
    speculate(socket, peer, to, first, state).await
}

/// Opens a stream to the silent route's channel at once and lets whichever
/// side speaks first decide.
async fn speculate(
    mut socket: Socket,
    peer: SocketAddr,
    to: Destination,
    first: usize,
    state: Arc<State>,
) {
    let channel = to.channel.as_str();
    let mut buf = BytesMut::with_capacity(4096);
    let user = peer.to_string();
    // Waiting for an agent and its ACCEPT races the user's first bytes.
    // A user that half-closes first (`nc -N` with nothing to send) still
    // wants the target's answer: its FIN goes on the stream like any EOF.
    let mut user_finished = false;
    let opened = {
        let open = open_to_agent(&to, &user, None, Bytes::new(), &state);
        tokio::pin!(open);
        tokio::select! {
            opened = &mut open => Some(opened),
            read = socket.read_buf(&mut buf) => match read {
                // Dropping the open resets a stream it may have started.
                Ok(n) if n > 0 => None,
                Ok(_) => {
                    user_finished = true;
                    Some(open.await)
                }
                Err(_) => return,
            },
        }
    };
    let stream = match opened {
        Some(Ok(stream)) => stream,
        Some(Err(turned)) => {
            warn!(%peer, %channel, %turned, detail = %turned.detail(), "silent user turned away: reset");
            return socket.abort();
        }
        None => return reclassify(socket, peer, buf, None, (&to, first), state).await,
    };
    if user_finished {
        return relay_checked(stream, socket, peer, &to).await;
    }
    first_speaker(stream, socket, peer, buf, (to, first), state).await
}

/// The stream is open and nobody has spoken: whichever side speaks first
/// decides what the connection is.
async fn first_speaker(
    stream: MeteredStream,
    mut socket: Socket,
    peer: SocketAddr,
    mut buf: BytesMut,
    // The silent route's destination, and the rule routing started from.
    (to, first): (Destination, usize),
    state: Arc<State>,
) {
    let channel = to.channel.as_str();
    // Nothing has moved yet either way: the channel's idle timeout, if it
    // has one, bounds this wait as it bounds the relay after it.
    let idle = to.idle_timeout;
    let quiet_too_long = async {
        match idle {
            Some(limit) => tokio::time::sleep(limit).await,
            None => std::future::pending().await,
        }
    };
    let spoke = tokio::select! {
        first = stream.recv() => Ok(first),
        read = socket.read_buf(&mut buf) => Err(read),
        () = quiet_too_long => {
            debug!(%peer, %channel, "silent user and target both quiet past the idle timeout: reset");
            stream.reset("no data either way (idle timeout)");
            return socket.abort();
        }
    };
    match spoke {
        Err(Ok(n)) if n > 0 => {
            reclassify(socket, peer, buf, Some(stream), (&to, first), state).await
        }
        Err(Ok(_)) => relay_checked(stream, socket, peer, &to).await,
        Err(Err(_)) => stream.reset("the user left before either side spoke"),
        Ok(Ok(Some(banner))) => {
            if socket.write_all(&banner).await.is_err() {
                stream.reset("the user left");
                return socket.abort();
            }
            stream.add(Way::FromAgent, banner.len());
            relay_checked(stream, socket, peer, &to).await
        }
        Ok(Ok(None)) => relay_checked(stream, socket, peer, &to).await,
        Ok(Err(err)) => {
            debug!(%peer, %channel, %err, "silent user's stream failed before a byte");
            socket.abort()
        }
    }
}

/// The user spoke first: classify its bytes as if they had come on time.
/// Bytes for the silent channel go on the speculative stream; anything else
/// resets it and is served where it belongs.
async fn reclassify(
    mut socket: Socket,
    peer: SocketAddr,
    buf: BytesMut,
    speculative: Option<MeteredStream>,
    // The silent route's destination, and the rule routing started from.
    (silent, first): (&Destination, usize),
    state: Arc<State>,
) {
    // Classifying again is classifying: it counts against the same limits
    // as on-time bytes, or silence past the sniff timeout followed by a
    // slow head would be a way around the slowloris bounds.
    let admitted = match state.admission.admit(peer.ip()) {
        Ok(admitted) => admitted,
        Err(why) => {
            if let Some(stream) = speculative {
                stream.reset("the user is over the admission limits");
            }
            return turn_away(socket, peer, why, &state);
        }
    };
    let visitor = match decide_from(&mut socket, buf, &state.config(), first).await {
        Ok(visitor) => visitor,
        Err(err) => return debug!(%peer, %err, "connection failed while classifying"),
    };
    drop(admitted);
    state.metrics.classified(&visitor);
    match (visitor, speculative) {
        (Visitor::Raw { to, buf }, Some(stream)) if to.channel == silent.channel => {
            let sent = buf.len();
            if stream.send(buf.freeze()).await.is_err() {
                return socket.abort();
            }
            stream.add(Way::ToAgent, sent);
            relay_socket(stream, socket, silent.idle_timeout).await
        }
        (visitor, speculative) => {
            if let Some(stream) = speculative {
                stream.reset("the user's first bytes belong to another route");
            }
            Box::pin(serve_visitor(socket, peer, visitor, state)).await
        }
    }
}

/// Relays a stream whose target spoke first, checking the user's first
/// bytes before any reach the target.
async fn relay_checked(stream: MeteredStream, socket: Socket, peer: SocketAddr, to: &Destination) {
    let channel = &to.channel;
    let (stream, meter) = stream.into_parts();
    let activity = Activity::new();
    let (read, write) = socket.into_split();
    let mut read = FirstBytesCheck::new(activity.watch(meter.count(Way::ToAgent, read)));
    let mut write = activity.watch(meter.count(Way::FromAgent, write));
    let relay = relay_ending(stream, &mut read, &mut write);
    let (outcome, fin_delivered) = match to.idle_timeout {
        Some(limit) => bounded_by_idle(relay, &activity, limit).await,
        None => relay.await,
    };
    if let Err(err) = &outcome {
        if read.refused {
            warn!(%peer, %channel, "an HTTP request or link handshake came after the silent channel's target spoke: not forwarded, connection reset");
        } else {
            debug!(%peer, %err, "silent user's stream ended early");
        }
    }
    // A refused first request is always reset, whatever the target did.
    let fin_delivered = fin_delivered && !read.refused;
    socket::end(
        read.inner.into_inner().into_inner(),
        write.into_inner().into_inner(),
        &outcome,
        fin_delivered,
    )
    .await;
}

/// Passes reads through once the first four bytes are known not to start an
/// HTTP request; fails the read if they do.
struct FirstBytesCheck<R> {
    inner: R,
    /// The first bytes, held until they can be judged.
    held: Vec<u8>,
    checked: bool,
    refused: bool,
}

impl<R> FirstBytesCheck<R> {
    fn new(inner: R) -> Self {
        FirstBytesCheck {
            inner,
            held: Vec::new(),
            checked: false,
            refused: false,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for FirstBytesCheck<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        while !this.checked {
            let mut space = [0u8; 4096];
            let mut tmp = ReadBuf::new(&mut space);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut tmp))?;
            let eof = tmp.filled().is_empty();
            this.held.extend_from_slice(tmp.filled());
            if eof || this.held.len() >= 4 || !could_be_http_start(&this.held) {
                this.checked = true;
                if looks_like_http(&this.held) {
                    this.refused = true;
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "an HTTP request is not forwarded to the silent channel",
                    )));
                }
            }
        }
        if !this.held.is_empty() {
            let n = this.held.len().min(out.remaining());
            out.put_slice(&this.held[..n]);
            this.held.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, out)
    }
}
