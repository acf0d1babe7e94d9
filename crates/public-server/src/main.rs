//! `public-server`: parses flags and runs the server library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use public_server::{init_logging, run, Cli};
use tokio_util::sync::CancellationToken;

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
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        uptun_cli::shutdown_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    run(listener, config, shutdown).await
}
