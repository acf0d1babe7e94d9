//! `local-agent`: parses flags and runs the agent, `forward`, `connect` or
//! `attach`.

use std::process::ExitCode;

use local_agent::{
    attach, connect, forward, init_logging, run_agent, AgentConfig, AgentError, AttachOptions, Cli,
    ClientConfig, Command, DialError, Ending,
};
use tokio_util::sync::CancellationToken;
use uptun_protocol::ExitStatus;

/// Exit code for mistakes a person must fix (bad token, bad flags).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    uptun_cli::tune_allocator();
    let cli = Cli::parse_checked();
    init_logging(cli.common.link.log_format);
    let (server, token) = match cli.common.server_and_token() {
        Ok(pair) => pair,
        Err(msg) => return fail(&msg, USAGE),
    };
    let proxy = match cli.common.proxy_for(&server) {
        Ok(proxy) => proxy,
        Err(msg) => return fail(&msg, USAGE),
    };
    if let Some(proxy) = &proxy {
        tracing::info!(%proxy, from = proxy.source(), "reaching the server through an HTTP proxy");
    }
    let transport = match cli.common.transport() {
        Ok(transport) => transport,
        Err(msg) => return fail(&msg, USAGE),
    };
    let (mux, grace) = (cli.common.link.mux(), cli.common.grace);
    let client = |server, token, proxy, transport| ClientConfig {
        server,
        token,
        proxy,
        transport,
        mux: mux.clone(),
        grace,
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let shutdown = CancellationToken::new();
    let code = runtime.block_on(async {
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            uptun_cli::shutdown_signal().await;
            trigger.cancel();
        });
        match cli.command {
            None => {
                if let Err(msg) = cli.check_agent() {
                    return fail(&msg, USAGE);
                }
                let mut config = AgentConfig::new(server, token, cli.channels);
                config.proxy = proxy;
                config.transport = transport;
                config.proxy_protocol = cli.proxy_protocol;
                config.name = cli.name.or_else(hostname);
                config.target_timeout = cli.target_timeout;
                config.idle_timeouts = cli.idle_timeouts;
                config.pty_cwd = cli.pty_cwd;
                config.links = cli.links.into();
                config.exit_when_idle = cli.exit_when_idle;
                config.mux = cli.common.link.mux();
                config.grace = cli.common.grace;
                config.session = local_agent::SessionOptions {
                    restart: cli.session_restart,
                    ring_bytes: cli.session_replay,
                };
                match run_agent(config, shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(AgentError::Refused(r)) => fail(
                        &format!("the server refused this agent ({}): {}", r.status, r.reason),
                        USAGE,
                    ),
                    Err(AgentError::Config(msg) | AgentError::Certificate(msg)) => {
                        fail(&msg, USAGE)
                    }
                    Err(AgentError::Proxy(refused)) => fail(&refused.to_string(), USAGE),
                }
            }
            Some(Command::Forward { forwards }) => {
                let config = client(server, token, proxy, transport);
                report(forward(config, forwards, shutdown).await)
            }
            Some(Command::Connect { channel }) => {
                let config = client(server, token, proxy, transport);
                // Asked to stop, the session gets the grace to end by itself.
                let grace = config.grace;
                let grace_over = async {
                    shutdown.cancelled().await;
                    tokio::time::sleep(grace).await;
                };
                tokio::select! {
                    done = connect(config, &channel) => exit_with(done),
                    () = grace_over => ExitCode::SUCCESS,
                }
            }
            Some(Command::Attach {
                channel,
                detach_keys,
                read_only,
            }) => {
                let config = client(server, token, proxy, transport);
                let options = AttachOptions {
                    channel,
                    detach_keys,
                    read_only,
                };
                attached(&options.channel.clone(), attach(config, options).await)
            }
        }
    });
    // stdin is read on a blocking thread that would keep the runtime alive.
    runtime.shutdown_background();
    code
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let fatal = err
                .downcast_ref::<DialError>()
                .is_some_and(DialError::is_fatal);
            fail(&format!("{err:#}"), if fatal { USAGE } else { 1 })
        }
    }
}

/// The remote process's status when the stream brought one (a terminal
/// channel: `exit 3` there is exit code 3 here), as a shell reports it.
fn exit_with(result: anyhow::Result<Option<ExitStatus>>) -> ExitCode {
    match result {
        Ok(Some(status)) => ExitCode::from(status.shell_code() as u8),
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => report(Err(err)),
    }
}

/// `attach`'s exit: its note (detached, stopped), printed once the
/// terminal is back, and the remote status as the code.
fn attached(channel: &str, result: anyhow::Result<Ending>) -> ExitCode {
    match result {
        Ok(ending) => {
            if let Some(note) = ending.note(channel) {
                eprintln!("local-agent: {note}");
            }
            ExitCode::from(ending.exit_code())
        }
        Err(err) => report(Err(err)),
    }
}

fn fail(msg: &str, code: u8) -> ExitCode {
    eprintln!("local-agent: {msg}");
    ExitCode::from(code)
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
