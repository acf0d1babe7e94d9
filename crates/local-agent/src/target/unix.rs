//! `--channel NAME=unix:/PATH`: each stream connects to a Unix socket.

use std::fmt;
use std::path::PathBuf;

use tokio::net::UnixStream;
use uptun_protocol::relay;

use super::socket::{dial_within, write_proxy_header};
use super::{BoxFuture, Kind, OpenRequest, Opened};

#[derive(Debug)]
pub(super) struct Unix {
    path: PathBuf,
}

impl Unix {
    /// `path` is what follows `unix:`.
    pub fn parse(path: &str) -> Result<Unix, String> {
        if path.is_empty() {
            return Err("unix: needs a socket path, as in unix:/run/app.sock".into());
        }
        Ok(Unix { path: path.into() })
    }
}

impl fmt::Display for Unix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unix:{}", self.path.display())
    }
}

impl Kind for Unix {
    fn open<'a>(&'a self, request: OpenRequest<'a>) -> BoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let connect = UnixStream::connect(&self.path);
            let mut socket = dial_within(self, request.timeout, connect).await?;
            write_proxy_header(&mut socket, &request, self, None).await?;
            // A Unix socket has no reset: on an abnormal end the target
            // sees the connection close.
            let opened: Opened = Box::new(move |stream| {
                Box::pin(async move {
                    let (read, write) = socket.into_split();
                    relay(stream, read, write).await
                })
            });
            Ok(opened)
        })
    }

    fn takes_proxy_header(&self) -> bool {
        true
    }
}
