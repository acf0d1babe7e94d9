//! Reads the server name a TLS client asks for (SNI, RFC 6066 §3) from its
//! ClientHello without terminating TLS: the bytes are only looked at, and
//! go on untouched to an agent whose target holds the certificate.
//!
//! The parsing is rustls' (`server::Acceptor`, fed a copy of the bytes): it
//! joins a hello split across reads and records, bounds what it buffers
//! (64 KiB; classification stops at 16 KiB anyway), and refuses what a TLS
//! server would refuse. A hello it refuses has no name to route by; among
//! real clients that is only pre-TLS 1.2 ones (no `signature_algorithms`).

use rustls::server::Acceptor;
use tracing::debug;

use crate::route::TlsFacts;

/// What a connection's first bytes tell of a TLS ClientHello. Fed each
/// longer prefix of the same bytes in turn, it parses only the new ones.
#[derive(Default)]
pub(crate) struct HelloReader {
    seen: Seen,
    /// How many of the bytes the acceptor already has.
    fed: usize,
    /// Present while the hello is partial; dropped once it is decided.
    acceptor: Option<Acceptor>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Seen {
    /// No bytes yet.
    #[default]
    Nothing,
    /// A TLS handshake has begun; the ClientHello is not whole.
    Partial,
    /// Not a TLS handshake, or a ClientHello rustls cannot read.
    NotTls,
    /// A whole ClientHello, with its server name if it has one.
    Hello(Option<String>),
}

impl HelloReader {
    /// The facts for routing, given the first bytes as read so far (a
    /// longer prefix of the same bytes than the last call had).
    pub(crate) fn read(&mut self, bytes: &[u8]) -> Option<TlsFacts<'_>> {
        if matches!(self.seen, Seen::Nothing | Seen::Partial) {
            self.seen = self.advance(bytes);
            if self.seen != Seen::Partial {
                self.acceptor = None;
            }
        }
        match &self.seen {
            Seen::Nothing | Seen::NotTls => None,
            Seen::Partial => Some(TlsFacts::Partial),
            Seen::Hello(sni) => Some(TlsFacts::Hello {
                sni: sni.as_deref(),
            }),
        }
    }

    fn advance(&mut self, bytes: &[u8]) -> Seen {
        // A handshake record (content type 22) of TLS 1.x (version 3.x).
        match bytes {
            [] => return Seen::Nothing,
            [0x16] | [0x16, 0x03, ..] => {}
            _ => return Seen::NotTls,
        }
        let acceptor = self.acceptor.get_or_insert_with(Acceptor::default);
        // Read and accept in turn: until `accept` has begun joining a
        // handshake message, rustls buffers no more than one record.
        loop {
            match acceptor.accept() {
                Ok(None) => {}
                Ok(Some(accepted)) => {
                    let sni = accepted.client_hello().server_name().map(str::to_owned);
                    return Seen::Hello(sni);
                }
                Err((err, _alert)) => return unreadable(&err),
            }
            let Some(new) = bytes.get(self.fed..).filter(|new| !new.is_empty()) else {
                return Seen::Partial;
            };
            match acceptor.read_tls(&mut &new[..]) {
                Ok(n) if n > 0 => self.fed += n,
                // Zero would repeat forever; an error says rustls' buffer
                // is full: neither is a hello it could read.
                Ok(_) => return Seen::NotTls,
                Err(err) => return unreadable(&err),
            }
        }
    }
}

/// A hello rustls refused is routed as plain bytes; the reason may help
/// someone whose host rule does not match.
fn unreadable(err: &dyn std::fmt::Display) -> Seen {
    debug!(%err, "TLS ClientHello not readable; routed without its server name");
    Seen::NotTls
}

#[cfg(test)]
#[path = "sni_tests.rs"]
mod tests;
