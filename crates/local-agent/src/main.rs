//! `local-agent`: parses flags and runs the agent, `forward`, `connect` or
//! `attach`.

use std::process::ExitCode;

use cli::{Cli, Command};
use local_agent::{
    attach, connect, AgentBuilder, AgentError, AttachOptions, ClientConfig, DialError, Ending,
    Forward, ForwardBuilder, ForwardError,
};
use tokio_util::sync::CancellationToken;
use uptun_cli::init_logging;
use uptun_protocol::ExitStatus;

mod cli;
#[cfg(test)]
#[path = "cli/tests.rs"]
mod cli_tests;

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
                let mut agent = cli.agent().server(server).token(token).transport(transport);
                if let Some(proxy) = proxy {
                    agent = agent.proxy(proxy);
                }
                if cli.name.is_none() {
                    if let Some(name) = hostname() {
                        agent = agent.name(name);
                    }
                }
                run_agent(agent, shutdown).await
            }
            Some(Command::Forward { forwards }) => {
                let config = client(server, token, proxy, transport);
                let forward = Forward::builder().client(config).specs(forwards);
                run_forward(forward, shutdown).await
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

/// Runs the agent until it stops by itself or `shutdown` (a signal), then
/// drains it; the exit code says how it ended.
async fn run_agent(agent: AgentBuilder, shutdown: CancellationToken) -> ExitCode {
    let outcome = match agent.start() {
        Ok(mut agent) => tokio::select! {
            done = agent.wait() => done,
            _ = shutdown.cancelled() => agent.shutdown().await,
        },
        Err(err) => Err(err),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // Retrying gave up: a person may not need to change anything.
        Err(err @ AgentError::GaveUp { .. }) => fail(&err.to_string(), 1),
        Err(err) => fail(&err.to_string(), USAGE),
    }
}

/// Runs the forward until `shutdown` (a signal), then drains it; fails at
/// once when the server or a port is not to be had.
async fn run_forward(forward: ForwardBuilder, shutdown: CancellationToken) -> ExitCode {
    match forward.start().await {
        Ok(forward) => {
            shutdown.cancelled().await;
            forward.shutdown().await;
            ExitCode::SUCCESS
        }
        Err(ForwardError::Dial(err)) => {
            fail(&err.to_string(), if err.is_fatal() { USAGE } else { 1 })
        }
        Err(err @ ForwardError::Config(_)) => fail(&err.to_string(), USAGE),
        Err(err) => fail(&err.to_string(), 1),
    }
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
