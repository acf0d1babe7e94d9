//! Bounds on connections that have not yet said what they are. A slowloris
//! (many connections that send a request head very slowly, or nothing) costs
//! the server a task and a socket each until the header deadline; these
//! bounds keep one source, or everyone together, from holding more than a
//! set number of them, so users that do speak are always let in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many unclassified connections may be open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From all sources together.
    pub unclassified: usize,
    /// From one IP address.
    pub unclassified_per_source: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            unclassified: 8192,
            unclassified_per_source: 1024,
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
}
