//! Command-line flags of `local-agent`. Every flag also reads an environment
//! variable (`UPTUN_SERVER`, `UPTUN_TOKEN`, …).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use uptun_cli::{channel_and_value, duration_in};

use local_agent::{
    Agent, AgentBuilder, DetachKeys, ForwardSpec, ProxyProtocol, SessionOptions, SessionRestart,
    Target,
};

mod common;
pub(crate) mod help;

pub use common::Common;
use help::EXAMPLES;

/// uptun agent and client.
///
/// Without a subcommand, runs the agent: keeps a link to the public server and
/// serves each --channel by dialing its target. `forward` and `connect` are
/// clients that open streams to a channel.
#[derive(Debug, Parser)]
#[command(name = "local-agent", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,

    /// A channel to serve, NAME=TARGET; TARGET is HOST:PORT, unix:/PATH,
    /// pty:COMMAND (a new terminal running `sh -c COMMAND` for each
    /// connection) or session:COMMAND (one COMMAND on a terminal, started
    /// with the agent and shared by every connection) (repeatable)
    #[arg(long = "channel", short = 'c', env = "UPTUN_CHANNELS", value_delimiter = ',',
          value_name = "NAME=TARGET", value_parser = parse_channel)]
    pub channels: Vec<(String, Target)>,

    /// Write a PROXY protocol header (v1 text or v2 binary) with the user's
    /// address to CHANNEL's target before any data, as in web=v2; only for
    /// targets that expect one (nginx `listen … proxy_protocol`) (repeatable)
    #[arg(long = "proxy-protocol", env = "UPTUN_PROXY_PROTOCOL", value_delimiter = ',',
          value_name = "CHANNEL=VERSION", value_parser = parse_proxy_protocol)]
    pub proxy_protocol: Vec<(String, ProxyProtocol)>,

    /// Name shown in the server's logs and status page [default: this host's name]
    #[arg(long, env = "UPTUN_NAME")]
    pub name: Option<String>,

    /// Links to keep open to the server; it spreads new streams across them,
    /// so several busy streams use more than one CPU core on each side
    #[arg(long, env = "UPTUN_LINKS", default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=16))]
    pub links: u16,

    /// How long dialing a target may take before the stream is refused, 100ms to 10m
    #[arg(long, env = "UPTUN_TARGET_TIMEOUT", default_value = "10s", value_name = "DURATION",
          value_parser = duration_in(Duration::from_millis(100), Duration::from_secs(600)))]
    pub target_timeout: Duration,

    /// Exit (0, after the usual drain) once no stream has been open for
    /// DURATION, and also when none came within DURATION of the start: for
    /// one-off containers and jobs, as in --exit-when-idle 60s
    #[arg(long, env = "UPTUN_EXIT_WHEN_IDLE", value_name = "DURATION",
          value_parser = duration_in(Duration::from_secs(1), Duration::from_secs(7 * 24 * 3600)))]
    pub exit_when_idle: Option<Duration>,

    /// When a session:COMMAND exits: on-exit starts it again (backing off
    /// while it keeps exiting at once); never runs it once, and later streams
    /// are refused. Either way the streams attached end with its exit status
    #[arg(
        long,
        env = "UPTUN_SESSION_RESTART",
        default_value = "on-exit",
        value_name = "never|on-exit"
    )]
    pub session_restart: SessionRestart,

    /// Recent output a session keeps, to show a stream that attaches (or
    /// fell behind) the screen at once, as in 64KiB or 1MiB (at most 16MiB)
    #[arg(long, env = "UPTUN_SESSION_REPLAY", default_value = "64KiB", value_name = "SIZE",
          value_parser = parse_replay)]
    pub session_replay: usize,

    /// Close a connection to a pty: or session: channel after this long with nothing
    /// sent either way, NAME=DURATION (1s to 24h; repeatable), as in
    /// --idle-timeout console=15m
    // Not UPTUN_IDLE_TIMEOUTS: the server's flag of that name covers other
    // channels, and an environment shared with one would stop the agent.
    #[arg(long = "idle-timeout", env = "UPTUN_AGENT_IDLE_TIMEOUTS", value_delimiter = ',',
          value_name = "NAME=DURATION", value_parser = parse_idle_timeout)]
    pub idle_timeouts: Vec<(String, Duration)>,

    /// Directory pty: and session: commands start in [default: the agent's own]
    #[arg(long, env = "UPTUN_PTY_CWD", value_name = "DIR")]
    pub pty_cwd: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Listen on local ports; carry each connection to a channel
    #[command(
        display_name = "local-agent",
        after_help = "Example (the token is one of the server's --client-token):\n  local-agent forward --server http://tunnel.example.com --token c1ient \\\n      127.0.0.1:2222=ssh 127.0.0.1:5433=db\n  ssh -p 2222 me@127.0.0.1"
    )]
    Forward {
        /// LISTEN=CHANNEL, as in 127.0.0.1:2222=ssh (a bare port listens on 127.0.0.1)
        #[arg(required = true, value_name = "LISTEN=CHANNEL")]
        forwards: Vec<ForwardSpec>,
    },
    /// Carry stdin/stdout to a channel (for ssh's ProxyCommand)
    #[command(
        display_name = "local-agent",
        after_help = "Example (the token is one of the server's --client-token):\n  ssh -o ProxyCommand='local-agent connect --server http://tunnel.example.com --token c1ient ssh' me@host"
    )]
    Connect {
        /// The channel to connect to
        channel: String,
    },
    /// Attach this terminal to a terminal channel (pty:, session:): raw
    /// mode, the window's size, a detach sequence; exits with the remote
    /// status. Without a terminal on stdin, a pipe like `connect`
    #[command(display_name = "local-agent", after_help = help::ATTACH)]
    Attach {
        /// The channel to attach to (served as pty:COMMAND or session:COMMAND)
        channel: String,

        /// Typing these keys detaches: comma-separated, each ctrl-X (X a
        /// letter or one of @ [ \ ] ^ _) or one character; `none` for no
        /// sequence. Pressing the first key twice sends it once
        #[arg(long, env = "UPTUN_DETACH_KEYS", value_name = "KEYS",
              default_value = local_agent::DEFAULT_DETACH_KEYS)]
        detach_keys: DetachKeys,

        /// Watch only: send no keystrokes and no window size (a session's
        /// size stays its writers'); the detach sequence still works
        #[arg(long)]
        read_only: bool,
    },
}

fn parse_channel(s: &str) -> Result<(String, Target), String> {
    let (name, target) = channel_and_value(s, "NAME=TARGET, as in ssh=127.0.0.1:22")?;
    Ok((name.to_string(), target.parse()?))
}

fn parse_proxy_protocol(s: &str) -> Result<(String, ProxyProtocol), String> {
    let (name, version) = channel_and_value(s, "CHANNEL=VERSION, as in --proxy-protocol web=v2")?;
    let version = version
        .parse()
        .map_err(|e| format!("{e}, as in --proxy-protocol {name}=v2"))?;
    Ok((name.to_string(), version))
}

/// A byte count: a number, or one with KiB or MiB after it.
pub(crate) fn parse_replay(s: &str) -> Result<usize, String> {
    let (number, unit) = match s.trim().strip_suffix("KiB") {
        Some(n) => (n, 1024),
        None => match s.trim().strip_suffix("MiB") {
            Some(n) => (n, 1024 * 1024),
            None => (s.trim(), 1),
        },
    };
    let bytes = number
        .trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit));
    match bytes {
        Some(bytes) if bytes <= 16 * 1024 * 1024 => Ok(bytes),
        _ => Err(format!(
            "{s:?} is not a size from 0 to 16MiB, as in 64KiB or 1MiB"
        )),
    }
}

fn parse_idle_timeout(s: &str) -> Result<(String, Duration), String> {
    let shape = "NAME=DURATION, as in --idle-timeout console=15m";
    let (name, limit) = channel_and_value(s, shape)?;
    let limit = duration_in(Duration::from_secs(1), Duration::from_secs(24 * 3600))(limit)?;
    Ok((name.to_string(), limit))
}

impl Cli {
    /// `Cli::parse`, plus the checks in [`Cli::try_parse_checked`]; a
    /// mistake prints clap's error and exits with code 2.
    pub fn parse_checked() -> Cli {
        Self::try_parse_checked(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// Parses like `Cli::try_parse_from`, and also refuses an agent flag
    /// (`--channel`, `--name`, …) written before `forward` or `connect`:
    /// clap accepts it there, but the clients would silently ignore it. Only
    /// the command line counts: an environment shared with an agent
    /// (`UPTUN_CHANNELS`) is fine.
    pub fn try_parse_checked<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Cli::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let Some((client, _)) = matches.subcommand() else {
            return Ok(cli);
        };
        let ignored: Vec<String> = command
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .filter(|a| matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .filter_map(|a| a.get_long().map(|long| format!("--{long}")))
            .collect();
        if ignored.is_empty() {
            return Ok(cli);
        }
        let flags = ignored.join(", ");
        let msg = format!(
            "{flags} configure{s} the agent (local-agent without a subcommand), but `{client}` \
             is a client and serves no channels: leave {flags} out of this command, and run \
             the agent as a command of its own",
            s = if ignored.len() == 1 { "s" } else { "" },
        );
        Err(command.error(clap::error::ErrorKind::ArgumentConflict, msg))
    }

    /// For the agent (no subcommand): what `main` refuses before dialing,
    /// with the fix: no `--channel`, or a `--proxy-protocol` or
    /// `--idle-timeout` for a channel it does not serve or that does not
    /// take it.
    pub fn check_agent(&self) -> Result<(), String> {
        if self.channels.is_empty() {
            return Err(
                "no --channel given: say what to serve, as in --channel web=127.0.0.1:3000".into(),
            );
        }
        self.agent().check().map_err(|err| err.to_string())
    }

    /// The agent these flags describe, but for what every command shares
    /// (server, token, proxy, transport), which `main` adds.
    pub fn agent(&self) -> AgentBuilder {
        let mut agent = Agent::builder()
            .target_timeout(self.target_timeout)
            .links(self.links.into())
            .mux(self.common.link.mux())
            .grace(self.common.grace)
            .session(SessionOptions {
                restart: self.session_restart,
                ring_bytes: self.session_replay,
            });
        for (name, target) in &self.channels {
            agent = agent.channel(name, target.clone());
        }
        for (name, version) in &self.proxy_protocol {
            agent = agent.proxy_protocol(name, *version);
        }
        for (name, limit) in &self.idle_timeouts {
            agent = agent.idle_timeout(name, *limit);
        }
        if let Some(name) = &self.name {
            agent = agent.name(name);
        }
        if let Some(dir) = &self.pty_cwd {
            agent = agent.pty_cwd(dir);
        }
        if let Some(limit) = self.exit_when_idle {
            agent = agent.exit_when_idle(limit);
        }
        agent
    }
}
