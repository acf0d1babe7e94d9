//! The durations the server accepts, one parser each, shared by the flags
//! and the config file so both refuse the same values the same way.

use std::time::Duration;

use uptun_cli::duration_in;

const MS: fn(u64) -> Duration = Duration::from_millis;
const S: fn(u64) -> Duration = Duration::from_secs;

/// How long a user waits for an agent and its ACCEPT: 100ms to 10m.
pub fn connect(text: &str) -> Result<Duration, String> {
    duration_in(MS(100), S(600))(text)
}

/// A silence that makes a connection silent: 10ms to 60s.
pub fn sniff(text: &str) -> Result<Duration, String> {
    duration_in(MS(10), S(60))(text)
}

/// How long an HTTP request head may take: 100ms to 10m.
pub fn header(text: &str) -> Result<Duration, String> {
    duration_in(MS(100), S(600))(text)
}

/// How long a user may be idle: 1s to 24h.
pub fn idle(text: &str) -> Result<Duration, String> {
    duration_in(S(1), S(24 * 3600))(text)
}

/// How long a user's half-close is held on a legacy agent's stream before
/// it becomes `c-`: 0s (at once, as rhost did) to 10m.
pub fn linger(text: &str) -> Result<Duration, String> {
    duration_in(S(0), S(600))(text)
}

/// How long open streams get after `TERM`: 0s (close at once) to 1h.
pub fn grace(text: &str) -> Result<Duration, String> {
    uptun_cli::grace_in_range()(text)
}
