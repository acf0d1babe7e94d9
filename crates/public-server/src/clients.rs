//! Client links (`local-agent forward` / `connect`) that are up, for the
//! status endpoint. Agents are in the registry, which routes to them;
//! clients are only listed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use uptun_protocol::LinkHandle;

use crate::registry::LinkTransport;

/// One client link as the status endpoint shows it.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    pub id: u64,
    pub name: String,
    pub addr: SocketAddr,
    pub since: Instant,
    /// Streams open on the link now.
    pub streams: usize,
    pub transport: LinkTransport,
}

#[derive(Debug, Default)]
pub(crate) struct Clients {
    links: DashMap<u64, (ClientInfo, LinkHandle)>,
    next_id: AtomicU64,
}

/// Keeps a client listed until dropped.
#[derive(Debug)]
pub(crate) struct Listed<'a> {
    clients: &'a Clients,
    id: u64,
}

impl Clients {
    /// Lists a client link for as long as the returned guard lives.
    pub fn add(
        &self,
        name: &str,
        addr: SocketAddr,
        transport: LinkTransport,
        link: &LinkHandle,
    ) -> Listed<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = ClientInfo {
            id,
            name: name.to_string(),
            addr,
            since: Instant::now(),
            streams: 0,
            transport,
        };
        self.links.insert(id, (info, link.clone()));
        Listed { clients: self, id }
    }

    /// Every client link, oldest first.
    pub fn list(&self) -> Vec<ClientInfo> {
        let mut all: Vec<ClientInfo> = self
            .links
            .iter()
            .map(|e| {
                let (info, link) = e.value();
                ClientInfo {
                    streams: link.stream_count(),
                    ..info.clone()
                }
            })
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }
}

impl Drop for Listed<'_> {
    fn drop(&mut self) {
        self.clients.links.remove(&self.id);
    }
}
