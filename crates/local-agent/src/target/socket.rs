//! What the socket kinds (TCP, Unix) share: a deadline on dialing, and the
//! PROXY header written before the relay starts.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::OpenRequest;
use crate::proxy_header;

/// `dial` within the request's timeout; the error reads "could not reach
/// TARGET: …".
pub(super) async fn dial_within<T>(
    target: &(dyn std::fmt::Display + Sync),
    timeout: Duration,
    dial: impl Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, dial).await {
        Ok(Ok(socket)) => Ok(socket),
        Ok(Err(err)) => Err(format!("could not reach {target}: {err}")),
        Err(_) => Err(format!(
            "could not reach {target}: no answer within {} s",
            timeout.as_secs()
        )),
    }
}

/// Writes the channel's PROXY header, if it has one, naming the user and
/// `reached` (the target's address; `None` for a Unix socket), so the relay
/// that follows can only put user bytes after it.
pub(super) async fn write_proxy_header<S: AsyncWrite + Unpin>(
    socket: &mut S,
    request: &OpenRequest<'_>,
    target: &(dyn std::fmt::Display + Sync),
    reached: Option<SocketAddr>,
) -> Result<(), String> {
    let Some(version) = request.proxy_protocol else {
        return Ok(());
    };
    let header = proxy_header::header(version, request.user, reached);
    // No deadline of its own: a fresh socket's send buffer takes these
    // ≤ 108 bytes at once, whatever the target does.
    socket
        .write_all(&header)
        .await
        .map_err(|err| format!("could not send the PROXY header to {target}: {err}"))
}
