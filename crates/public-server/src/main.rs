//! `public-server`: parses flags (and the config file) and runs the server
//! library.

use std::process::ExitCode;

use anyhow::Context;
use public_server::{generate_token, init_logging, run, Grant, LiveConfig, Resolved, Settings};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    uptun_cli::tune_allocator();
    let settings = Settings::parse();
    let resolved = match settings.resolve() {
        Ok(resolved) => resolved,
        Err(err) => {
            eprintln!("public-server: {err}");
            return ExitCode::from(2);
        }
    };
    if settings.cli().check_config {
        println!("{}", checked(&settings, &resolved));
        return ExitCode::SUCCESS;
    }
    init_logging(resolved.log_format);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(serve(settings, resolved)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("public-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The line `--check-config` prints for a good file.
fn checked(settings: &Settings, resolved: &Resolved) -> String {
    let path = settings.config_path().expect("clap requires --config");
    let routes = match resolved.file_routes {
        Some(n) => format!("{n} routes"),
        None => "no [[route]] tables, so the default routes".into(),
    };
    format!("{}: ok ({routes})", path.display())
}

async fn serve(settings: Settings, mut resolved: Resolved) -> anyhow::Result<()> {
    let addr = resolved.listen.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| {
            format!("could not listen on {addr} (choose another with --listen or PORT)")
        })?;
    let local = listener.local_addr()?;
    // A token generated for this run is kept across reloads, so agents
    // started with it stay welcome.
    let generated = match resolved.config.tokens.agents.is_empty() {
        true => Some(Grant::any(generate_token())),
        false => None,
    };
    if let Some(grant) = &generated {
        resolved.config.tokens.agents.push(grant.clone());
        eprintln!(
            "No --agent-token given; this run accepts agents with a generated token:\n\n    UPTUN_AGENT_TOKEN={token}\n\nStart an agent with:\n\n    local-agent --server http://{host}:{port} --token {token} --channel web=127.0.0.1:3000\n",
            token = grant.token.expose(),
            host = if local.ip().is_unspecified() { "THIS_HOST".to_string() } else { local.ip().to_string() },
            port = local.port(),
        );
    }
    if resolved.config.tokens.clients.is_empty() {
        tracing::info!("no --client-token: clients (forward, connect) are refused");
    }
    let live = LiveConfig::new(resolved.config);
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        uptun_cli::shutdown_signal().await;
        tracing::info!("shutting down");
        trigger.cancel();
    });
    tokio::spawn(reload_on_hup(settings, live.clone(), generated));
    run(listener, live, shutdown).await
}

/// `HUP`: read the config file again and put its routes and tokens in
/// force for new connections; a bad file is logged and changes nothing.
async fn reload_on_hup(settings: Settings, live: LiveConfig, generated: Option<Grant>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hups.recv().await.is_some() {
        reload(&settings, &live, generated.as_ref());
    }
}

fn reload(settings: &Settings, live: &LiveConfig, generated: Option<&Grant>) {
    let Some(path) = settings.config_path() else {
        tracing::warn!("HUP: no --config file given; nothing to reload");
        return;
    };
    let mut resolved = match settings.resolve() {
        Ok(resolved) => resolved,
        Err(err) => {
            tracing::error!("HUP: config not reloaded, the old one stays in force: {err}");
            return;
        }
    };
    if let (true, Some(grant)) = (resolved.config.tokens.agents.is_empty(), generated) {
        resolved.config.tokens.agents.push(grant.clone());
    }
    let old = live.current();
    if old.limits != resolved.config.limits || old.mux != resolved.config.mux {
        tracing::warn!("HUP: admission limits and link settings take effect only at restart");
    }
    let routes = resolved.config.routes.len();
    live.replace(resolved.config);
    tracing::info!(file = %path.display(), routes, "HUP: config reloaded");
}
