//! `--channel NAME=HOST:PORT`: each stream dials the address.

use std::fmt;

use tokio::net::TcpStream;
use uptun_protocol::relay_tcp;

use super::socket::{dial_within, write_proxy_header};
use super::{BoxFuture, Kind, OpenRequest, Opened};

#[derive(Debug)]
pub(super) struct Tcp {
    addr: String,
}

impl Tcp {
    pub fn at(addr: std::net::SocketAddr) -> Tcp {
        Tcp {
            addr: addr.to_string(),
        }
    }

    pub fn parse(s: &str) -> Result<Tcp, String> {
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                Ok(Tcp { addr: s.into() })
            }
            _ => Err(format!(
                "target {s:?} is not HOST:PORT or unix:/PATH, pty:COMMAND or session:COMMAND"
            )),
        }
    }
}

impl fmt::Display for Tcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

impl Kind for Tcp {
    fn open<'a>(&'a self, request: OpenRequest<'a>) -> BoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let mut socket = dial_within(self, request.timeout, async {
                let socket = TcpStream::connect(&self.addr).await?;
                let _ = socket.set_nodelay(true);
                Ok(socket)
            })
            .await?;
            let reached = socket.peer_addr().ok();
            write_proxy_header(&mut socket, &request, self, reached).await?;
            // An abnormal end resets the target's socket.
            let opened: Opened = Box::new(move |stream| Box::pin(relay_tcp(stream, socket)));
            Ok(opened)
        })
    }

    fn takes_proxy_header(&self) -> bool {
        true
    }
}
