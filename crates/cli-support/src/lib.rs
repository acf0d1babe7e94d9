//! What uptun's command lines share: the link flags (window, PING
//! interval, log format), durations written as `500ms`/`10s`/`2m`, logging
//! setup, the signals (`signals.rs`) and the allocator tuning. Kept out of the
//! protocol crate so that one stays free of clap, logging setup and `unsafe`.
// One `unsafe` call in the crate: `mallopt` in `tune_allocator`.
#![deny(unsafe_code)]

mod signals;

use std::time::Duration;

pub use signals::{grace_in_range, Signal, Signals, DEFAULT_GRACE, MAX_GRACE};

/// Parses `250ms`, `10s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: write it like 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    // `try_`: a number too large for a Duration is a mistake to report,
    // not a reason to panic.
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is too long a duration"))
}

/// Splits a `CHANNEL=VALUE` flag value and checks the channel name.
/// `shape` says what was expected, as in `NAME=TARGET, as in ssh=127.0.0.1:22`.
pub fn channel_and_value<'a>(text: &'a str, shape: &str) -> Result<(&'a str, &'a str), String> {
    let (channel, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not {shape}"))?;
    if !uptun_protocol::valid_channel_name(channel) {
        return Err(format!(
            "{channel:?} is not a channel name: use letters, digits, '-', '_' or '.'"
        ));
    }
    Ok((channel, value))
}

/// A flag parser for durations from `min` to `max`, both included, so a
/// zero interval (which would panic a timer) is refused at the command line.
pub fn duration_in(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text| {
        let value = parse_duration(text)?;
        if value < min || value > max {
            return Err(format!(
                "{} is out of range: use {} to {}",
                text.trim(),
                show(min),
                show(max)
            ));
        }
        Ok(value)
    }
}

/// `500ms`, `10s`: how a bound is written back in an error message.
fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Bounds of `--ping-interval`. Platform routers cut a connection silent
/// for 55 s (Heroku), and a PING goes out every interval whatever else is
/// sent, so the largest interval keeps a margin under that.
pub const MIN_PING_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_PING_INTERVAL: Duration = Duration::from_secs(50);
/// Bounds of `--ping-misses`. One miss is not allowed: the PONG to the
/// previous PING arrives a round trip after the interval, so a link would
/// race its own liveness timer.
pub const MIN_PING_MISSES: u32 = 2;
pub const MAX_PING_MISSES: u32 = 10;

/// Link and logging flags of every uptun command. `global` lets the agent's
/// subcommands take them after their own name too.
#[derive(Debug, Clone, clap::Args)]
pub struct LinkArgs {
    /// Receive window per stream, in bytes (flow-control credit)
    #[arg(long, env = "UPTUN_WINDOW", global = true, default_value_t = uptun_protocol::handshake::DEFAULT_WINDOW,
          value_parser = clap::value_parser!(u32).range(uptun_protocol::handshake::MIN_WINDOW as i64..=uptun_protocol::handshake::MAX_WINDOW as i64))]
    pub window: u32,

    /// Interval between PINGs on links, 100ms to 50s (routers cut links silent for 55 s)
    #[arg(long, env = "UPTUN_PING_INTERVAL", global = true, default_value = "10s",
          value_parser = duration_in(MIN_PING_INTERVAL, MAX_PING_INTERVAL), value_name = "DURATION")]
    pub ping_interval: Duration,

    /// A link that misses this many PINGs in a row (silent for N intervals) is dead, 2 to 10
    #[arg(long, env = "UPTUN_PING_MISSES", global = true, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(MIN_PING_MISSES as i64..=MAX_PING_MISSES as i64))]
    pub ping_misses: u32,

    /// Streams open at once on one link, both directions together; a newcomer over it is refused
    #[arg(long, env = "UPTUN_MAX_STREAMS", global = true, default_value_t = uptun_protocol::Config::default().max_streams,
          value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_048_576))]
    pub max_streams: usize,

    /// Log format: text or json (filter with RUST_LOG, e.g. RUST_LOG=debug)
    #[arg(long, env = "UPTUN_LOG_FORMAT", global = true, default_value = "text")]
    pub log_format: LogFormat,
}

impl LinkArgs {
    /// The mux settings these flags ask for.
    pub fn mux(&self) -> uptun_protocol::Config {
        uptun_protocol::Config {
            window: self.window,
            ping_interval: self.ping_interval,
            idle_timeout: self.ping_interval * self.ping_misses,
            max_streams: self.max_streams,
            ..uptun_protocol::Config::default()
        }
    }
}

/// How log lines are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("log format {s:?} is not one of: text, json")),
        }
    }
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Keeps glibc's allocator from handing link read buffers back to the
/// kernel between reads. Every 256 KiB read buffer of a busy link is freed as
/// soon as its payloads are written on; with glibc's default thresholds those
/// buffers come from fresh `mmap`s or a heap top that is trimmed again, so
/// each read paid ~64 page faults (measured: 68,000 faults/s in the agent
/// during the 8-stream bulk benchmark, none after this). Memory freed below
/// the trim threshold stays resident for the next read instead.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// Blocks at least this large still get their own mapping.
        const MMAP_THRESHOLD: libc::c_int = 2 * 1024 * 1024;
        /// Free memory at the top of a heap is returned past this much.
        const TRIM_THRESHOLD: libc::c_int = 16 * 1024 * 1024;
        // SAFETY: mallopt only changes two allocator parameters; it is called
        // first thing in main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, the signals that ask a process
/// to stop: the server drains its links, the agent sends GOAWAY and drains.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
    }

    #[test]
    fn bounded_durations() {
        let ping = duration_in(MIN_PING_INTERVAL, MAX_PING_INTERVAL);
        assert_eq!(ping("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(ping("100ms").unwrap(), MIN_PING_INTERVAL);
        assert_eq!(ping("50s").unwrap(), MAX_PING_INTERVAL);
        let err = ping("0").unwrap_err();
        assert!(err.contains("use 100ms to 50s"), "{err}");
        assert!(ping("55s").is_err());
        assert!(ping("99ms").is_err());
    }

    #[test]
    fn default_liveness_is_10s_and_3_misses() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            link: LinkArgs,
        }
        let mux = Cli::parse_from(["x"]).link.mux();
        assert_eq!(mux.ping_interval, Duration::from_secs(10));
        assert_eq!(mux.idle_timeout, Duration::from_secs(30));
        let mux = Cli::parse_from(["x", "--ping-interval", "2s", "--ping-misses", "4"])
            .link
            .mux();
        assert_eq!(mux.idle_timeout, Duration::from_secs(8));
        assert!(Cli::try_parse_from(["x", "--ping-misses", "1"]).is_err());
        assert!(Cli::try_parse_from(["x", "--ping-misses", "11"]).is_err());
    }
}
