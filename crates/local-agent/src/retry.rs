//! How the agent retries a link that could not be set up or was lost:
//! exponential backoff with jitter, so a fleet of agents does not reconnect
//! in lockstep after a server restart, and optionally a point to give up.

use std::time::Duration;

use rand::Rng;

/// How an agent retries a link: each wait is between half and all of a
/// step that starts at `initial` and doubles up to `max`, back to `initial`
/// once a link is up again. Without [`RetryPolicy::max_attempts`] it never
/// gives up.
///
/// ```
/// use std::time::Duration;
/// use local_agent::RetryPolicy;
///
/// let policy = RetryPolicy::new(Duration::from_millis(100), Duration::from_secs(5))
///     .max_attempts(10);
/// assert_eq!(policy.max(), Duration::from_secs(5));
/// assert_eq!(policy.attempts(), Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    initial: Duration,
    max: Duration,
    attempts: Option<u32>,
}

/// 0.5 s, doubling up to 30 s; never gives up.
impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl RetryPolicy {
    /// Waits starting at `initial` and doubling up to `max` (at least
    /// `initial`); never gives up.
    pub fn new(initial: Duration, max: Duration) -> Self {
        RetryPolicy {
            initial,
            max: max.max(initial),
            attempts: None,
        }
    }

    /// Gives up once `attempts` dials in a row (at least 1) have failed
    /// since a link was last up, or since the start: the agent then stops
    /// with [`AgentError::GaveUp`](crate::AgentError::GaveUp).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts.max(1));
        self
    }

    /// The first wait's step.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// Failed dials in a row before giving up, if the policy ever does.
    pub fn attempts(&self) -> Option<u32> {
        self.attempts
    }

    pub(crate) fn backoff(&self) -> Backoff {
        Backoff::new(self.initial, self.max)
    }
}

/// The state of one link's waits.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            current: initial,
        }
    }

    /// The next delay: between half and all of the current step, which then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        step.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400) && delays[3] <= Duration::from_millis(800));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(delays[7] >= Duration::from_millis(500));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn a_policy_keeps_max_above_initial_and_at_least_one_attempt() {
        let p = RetryPolicy::new(Duration::from_secs(2), Duration::from_secs(1)).max_attempts(0);
        assert_eq!(
            (p.initial(), p.max()),
            (Duration::from_secs(2), Duration::from_secs(2))
        );
        assert_eq!(p.attempts(), Some(1));
        assert_eq!(RetryPolicy::default().attempts(), None);
    }
}
