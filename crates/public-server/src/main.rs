//! `public-server`: parses flags (and the config file) and runs the server
//! library.

use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use public_server::{
    generate_token, init_logging, reload_tls, run, Grant, LiveConfig, Resolved, ServerTls,
    Settings, Shutdown, TlsSettings,
};
use uptun_cli::{Signal, Signals};

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
        // Certificate files are checked too; ACME only once it runs.
        if let TlsSettings::Files { cert, key } = &resolved.tls {
            if let Err(err) = ServerTls::from_pem_files(cert, key) {
                eprintln!("public-server: {err:#}");
                return ExitCode::from(2);
            }
        }
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
    // Installed before the port opens, so a signal never finds the default
    // action (the end of the process) once anyone can connect.
    let signals = Signals::new().context("could not install the signal handlers")?;
    let addr = resolved.listen.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| {
            format!("could not listen on {addr} (choose another with --listen or PORT)")
        })?;
    let local = listener.local_addr()?;
    resolved.config.tls = resolved.tls.load()?;
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
    if resolved.config.legacy.enabled() {
        let paths = resolved.config.legacy.paths();
        tracing::info!("rhost legacy links on for {paths}");
    }
    let live = LiveConfig::new(resolved.config);
    let shutdown = Shutdown::new();
    let reloading = Reloading {
        settings,
        live: live.clone(),
        generated,
    };
    tokio::spawn(obey(signals, shutdown.clone(), resolved.grace, reloading));
    run(listener, live, shutdown).await
}

/// What a reload needs: how the config was made, where it lives, and the
/// token generated at start (kept, so its agents stay welcome).
struct Reloading {
    settings: Settings,
    live: LiveConfig,
    generated: Option<Grant>,
}

/// What each signal means to the server (README, "Stopping: signals").
async fn obey(mut signals: Signals, shutdown: Shutdown, grace: Duration, reloading: Reloading) {
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
            Signal::Reload => reload(
                &reloading.settings,
                &reloading.live,
                reloading.generated.as_ref(),
            ),
        }
    }
}

/// `HUP`: reads the config file again and puts its routes and tokens in
/// force for new connections, and reads the TLS certificate and key files
/// again (with or without a config file: a renewed certificate needs no
/// restart); a bad file is logged and changes nothing.
fn reload(settings: &Settings, live: &LiveConfig, generated: Option<&Grant>) {
    let path = settings.config_path();
    let mut resolved = match settings.resolve() {
        Ok(resolved) => resolved,
        Err(err) => {
            tracing::error!("HUP: config not reloaded, the old one stays in force: {err}");
            return;
        }
    };
    let old = live.current();
    if path.is_none() && resolved.tls == TlsSettings::Off {
        tracing::warn!("HUP: no --config file and no --tls-cert given; nothing to reload");
        return;
    }
    if let (true, Some(grant)) = (resolved.config.tokens.agents.is_empty(), generated) {
        resolved.config.tokens.agents.push(grant.clone());
    }
    if old.limits != resolved.config.limits || old.mux != resolved.config.mux {
        tracing::warn!("HUP: admission limits and link settings take effect only at restart");
    }
    resolved.config.tls = reload_tls(old.tls.as_ref(), &resolved.tls);
    let routes = resolved.config.routes.len();
    let legacy = resolved.config.legacy.paths();
    if legacy != old.legacy.paths() {
        match legacy.is_empty() {
            true => tracing::info!("HUP: rhost legacy links now off"),
            false => tracing::info!("HUP: rhost legacy links now on for {legacy}"),
        }
    }
    live.replace(resolved.config);
    if let Some(path) = path {
        tracing::info!(file = %path.display(), routes, "HUP: config reloaded");
    }
}
