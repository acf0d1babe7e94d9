//! `public-server`: parses flags and runs the server library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use public_server::{init_logging, run, Cli, Shutdown};
use uptun_cli::{Signal, Signals};

fn main() -> ExitCode {
    uptun_cli::tune_allocator();
    let cli = Cli::parse();
    init_logging(cli.link.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("public-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    // Installed before the port opens, so a signal never finds the default
    // action (the end of the process) once anyone can connect.
    let signals = Signals::new().context("could not install the signal handlers")?;
    let grace = cli.grace;
    let addr = cli.listen_addr();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| {
            format!("could not listen on {addr} (choose another with --listen or PORT)")
        })?;
    let local = listener.local_addr()?;
    let (config, generated) = cli.into_config();
    if generated {
        eprintln!(
            "No --agent-token given; this run accepts agents with a generated token:\n\n    UPTUN_AGENT_TOKEN={token}\n\nStart an agent with:\n\n    local-agent --server http://{host}:{port} --token {token} --channel web=127.0.0.1:3000\n",
            token = config.tokens.agents[0].token.expose(),
            host = if local.ip().is_unspecified() { "THIS_HOST".to_string() } else { local.ip().to_string() },
            port = local.port(),
        );
    }
    if config.tokens.clients.is_empty() {
        tracing::info!("no --client-token: clients (forward, connect) are refused");
    }
    let shutdown = Shutdown::new();
    tokio::spawn(obey(signals, shutdown.clone(), grace));
    run(listener, config, shutdown).await
}

/// What each signal means to the server (README, "Signals").
async fn obey(mut signals: Signals, shutdown: Shutdown, grace: Duration) {
    let mut terminating = false;
    loop {
        match signals.recv().await {
            Signal::Quit => {
                tracing::info!("QUIT: draining; waiting for every open stream to finish");
                shutdown.drain();
            }
            // A second TERM or INT (an impatient Ctrl-C) closes at once.
            Signal::Terminate if terminating => {
                tracing::info!("asked again: closing everything now");
                shutdown.stop(Duration::ZERO);
            }
            Signal::Terminate => {
                terminating = true;
                tracing::info!(
                    "shutting down: open streams get {:.1} s to finish",
                    grace.as_secs_f64()
                );
                shutdown.stop(grace);
            }
            Signal::Reload => reload(),
        }
    }
}

/// `HUP`: reads the routes and tokens again.
// TODO(lead, issue 9 item 5): reload `--config` here; keep the old config on
// a bad file and say why in the log.
fn reload() {
    tracing::warn!("reload: no --config file given; nothing to reload");
}
