//! Failed link handshakes (401, 403) counted per source address. A source
//! that keeps failing waits longer and longer for each refusal; a handshake
//! that succeeds is answered at once, whoever sent it.
//!
//! Why a delay and not 429: the person behind a wrong token still reads the
//! real reason (our dialer exits on 401/403 but retries 429, so a 429 would
//! turn a typo into a retry loop), and another agent behind the same NAT
//! address is not locked out. The delay costs scanners and retry storms
//! time and log lines; it does not make a weak token strong (a correct
//! token is answered at once, so a patient guesser can give up on an answer
//! early). Tokens should be long and random, like the generated ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Failures answered without delay.
pub(crate) const FREE_FAILURES: u32 = 5;
/// The delay after the free failures; it doubles with each further one.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest delay.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(10);
/// A source quiet this long is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Sources remembered at most, so a spray of addresses cannot grow the table.
pub(crate) const MAX_SOURCES: usize = 4096;

/// Where failures come from: an IPv4 address, or an IPv6 /64 (one host
/// usually owns a whole /64, so counting single addresses would let it
/// start afresh with every guess).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(bits.into()))
            }
            IpAddr::V6(v6) => Source(IpAddr::V4(v6.to_ipv4_mapped().expect("checked"))),
            v4 => Source(v4),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

/// Waits out a penalty before the refusal is answered, or until the server
/// stops accepting (`stop`), whichever comes first.
pub(crate) async fn sit_out(delay: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = stop.cancelled() => {}
    }
}

/// The failure table. Bounded by [`MAX_SOURCES`]; entries expire after
/// [`FORGET_AFTER`] without a failure.
#[derive(Debug, Default)]
pub(crate) struct Penalties {
    table: Mutex<HashMap<Source, Record>>,
}

impl Penalties {
    /// Records a failed handshake from `ip`. Returns how many failures this
    /// source has had in a row (none more than a minute apart), and how
    /// long to wait before answering this one.
    pub fn fail(&self, ip: IpAddr) -> (u32, Duration) {
        let now = Instant::now();
        let source = Source::from(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if !table.contains_key(&source) && table.len() >= MAX_SOURCES {
            make_room(&mut table, now);
        }
        let record = table.entry(source).or_insert(Record {
            failures: 0,
            last: now,
        });
        if now.duration_since(record.last) > FORGET_AFTER {
            record.failures = 0;
        }
        let earlier = record.failures;
        record.failures = earlier.saturating_add(1);
        record.last = now;
        (record.failures, delay_after(earlier))
    }

    /// Sources remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.table.lock().unwrap().len()
    }
}

/// The wait before answering a failure that follows `earlier` ones.
fn delay_after(earlier: u32) -> Duration {
    let Some(doublings) = earlier.checked_sub(FREE_FAILURES) else {
        return Duration::ZERO;
    };
    FIRST_DELAY
        .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
        .map_or(MAX_DELAY, |d| d.min(MAX_DELAY))
}

/// Drops expired entries; if none expired, the one quiet longest.
fn make_room(table: &mut HashMap<Source, Record>, now: Instant) {
    table.retain(|_, r| now.duration_since(r.last) <= FORGET_AFTER);
    if table.len() >= MAX_SOURCES {
        let oldest = table.iter().min_by_key(|(_, r)| r.last).map(|(s, _)| *s);
        if let Some(source) = oldest {
            table.remove(&source);
        }
    }
}

#[cfg(test)]
#[path = "penalty_tests.rs"]
mod tests;
