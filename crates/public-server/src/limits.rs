//! Bounds on connections that have not yet said what they are, and on the
//! links one token holds. A slowloris (many connections that send a request
//! head very slowly, or nothing) costs the server a task and a socket each
//! until the header deadline; the first bounds keep one source, or everyone
//! together, from holding more than a set number of them, so users that do
//! speak are always let in. The last keeps one leaked or runaway token from
//! holding every link the server can carry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uptun_protocol::Secret;

/// How many unclassified connections, and links per token, may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Unclassified connections from all sources together.
    pub unclassified: usize,
    /// Unclassified connections from one IP address.
    pub unclassified_per_source: usize,
    /// Links (agent or client) presenting one token.
    pub links_per_token: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            unclassified: 8192,
            unclassified_per_source: 1024,
            links_per_token: 256,
        }
    }
}

/// Counts the links each token holds. Only tokens that passed the check
/// are counted, so the table is as small as the server's own token list.
#[derive(Debug)]
pub(crate) struct LinkCounts {
    max: usize,
    counts: Arc<Mutex<HashMap<TokenKey, usize>>>,
}

/// A token (by fingerprint) and the kind of peer that presented it.
type TokenKey = ([u8; 32], bool);

/// One link's place in its token's count, freed when the link ends.
#[derive(Debug)]
pub(crate) struct LinkSlot {
    key: TokenKey,
    counts: Arc<Mutex<HashMap<TokenKey, usize>>>,
}

impl LinkCounts {
    pub fn new(max: usize) -> Self {
        LinkCounts {
            max,
            counts: Arc::default(),
        }
    }

    /// A place for one more link of `token` (presented by an agent or a
    /// client), or the reason there is none.
    pub fn take(&self, token: &Secret, agent: bool) -> Result<LinkSlot, String> {
        let key = (token.fingerprint(), agent);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let held = counts.entry(key).or_insert(0);
        if *held >= self.max {
            return Err(format!(
                "this token already holds {} links, the server's limit (--max-links-per-token); close some or use another token",
                self.max
            ));
        }
        *held += 1;
        Ok(LinkSlot {
            key,
            counts: self.counts.clone(),
        })
    }
}

impl Drop for LinkSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = counts.get_mut(&self.key) {
            *held -= 1;
            if *held == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// Counts unclassified connections, globally and per source address.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
    /// Refusals not yet logged, and when the last log line was written: a
    /// flood of refusals logs one line a second, not one per connection.
    refusals: Mutex<(u64, Option<Instant>)>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    /// Only sources with at least one connection: entries leave with their
    /// last connection, so the map is bounded by `limits.unclassified`.
    per_source: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it (once the connection is
/// classified, or gone) makes room for another.
#[derive(Debug)]
pub(crate) struct Admitted {
    source: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            counts: Arc::default(),
            refusals: Mutex::new((0, None)),
        }
    }

    /// Counts a refusal; returns how many to report when a log line is due.
    pub fn refused(&self) -> Option<u64> {
        let mut refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        refusals.0 += 1;
        let due = refusals
            .1
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(1));
        due.then(|| {
            refusals.1 = Some(Instant::now());
            std::mem::take(&mut refusals.0)
        })
    }

    /// Admits a new connection from `source`, or says which bound it hit.
    pub fn admit(&self, source: IpAddr) -> Result<Admitted, &'static str> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.limits.unclassified {
            return Err("too many connections are still being classified");
        }
        let from_source = counts.per_source.entry(source).or_insert(0);
        if *from_source >= self.limits.unclassified_per_source {
            return Err("too many unclassified connections from your address");
        }
        *from_source += 1;
        counts.total += 1;
        Ok(Admitted {
            source,
            counts: self.counts.clone(),
        })
    }

    #[cfg(test)]
    fn sources(&self) -> usize {
        self.counts.lock().unwrap().per_source.len()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.per_source.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                counts.per_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_turns_away_the_newcomer_and_frees_on_drop() {
        let admission = Admission::new(Limits {
            unclassified: 3,
            unclassified_per_source: 2,
            ..Limits::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert!(admission.admit(a).unwrap_err().contains("your address"));
        let _third = admission.admit(b).unwrap();
        assert!(admission
            .admit(b)
            .unwrap_err()
            .contains("too many connections"));
        drop(first);
        let _again = admission.admit(a).unwrap();
        assert_eq!(admission.sources(), 2);
    }

    #[test]
    fn a_source_leaves_the_table_with_its_last_connection() {
        let admission = Admission::new(Limits::default());
        let held: Vec<_> = (0..100u8)
            .map(|i| admission.admit(IpAddr::from([198, 51, 100, i])).unwrap())
            .collect();
        assert_eq!(admission.sources(), 100);
        drop(held);
        assert_eq!(admission.sources(), 0);
    }

    #[test]
    fn links_are_counted_per_token_and_kind_and_freed_on_drop() {
        let counts = LinkCounts::new(2);
        let (a, b) = (Secret::new("token-a"), Secret::new("token-b"));
        let first = counts.take(&a, true).unwrap();
        let _second = counts.take(&a, true).unwrap();
        let refused = counts.take(&a, true).unwrap_err();
        assert!(refused.contains("2 links") && !refused.contains("token-a"));
        // Another token, or the same one presented by a client, has its own count.
        let _other = counts.take(&b, true).unwrap();
        let _client = counts.take(&a, false).unwrap();
        drop(first);
        let _again = counts.take(&a, true).unwrap();
    }
}
