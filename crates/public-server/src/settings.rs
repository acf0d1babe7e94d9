//! Where each setting comes from: a flag or its environment variable if one
//! was given, else the config file if it says, else the built-in default.
//! Kept apart from the flag definitions (`cli.rs`) and the file's format
//! (`config_file.rs`); `HUP` runs the same layering again.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use uptun_cli::LogFormat;

use crate::acme::AcmeSettings;
use crate::cli::Cli;
use crate::config::Config;
use crate::config_file::{self, ConfigError, FileValues};
use crate::legacy::settings::{self as legacy, EnvKeys};
use crate::limits::Limits;
use crate::route::default_rules;
use crate::tls::TlsSettings;

/// The command line as given, and which of its values were given rather
/// than defaulted.
#[derive(Clone)]
pub struct Settings {
    cli: Cli,
    matches: ArgMatches,
}

/// Only the parsed flags: `ArgMatches` keeps the raw text of each value,
/// tokens included.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("cli", &self.cli).finish()
    }
}

/// Everything a run needs from its settings.
#[derive(Debug)]
pub struct Resolved {
    pub config: Config,
    pub listen: String,
    pub log_format: LogFormat,
    /// How long open streams get to finish after `TERM`.
    pub grace: Duration,
    /// Rules from the config file, if it has `[[route]]` tables.
    pub file_routes: Option<usize>,
    /// Where the server's certificate comes from; `main` loads it (and puts
    /// it in `config.tls`), so resolving reads no certificate.
    pub tls: TlsSettings,
}

impl Settings {
    /// Parses the process's arguments; exits with clap's message on a mistake.
    pub fn parse() -> Settings {
        Settings::try_parse_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    pub fn try_parse_from<I, T>(args: I) -> Result<Settings, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        Ok(Settings { cli, matches })
    }

    pub fn cli(&self) -> &Cli {
        &self.cli
    }

    /// The config file named by `--config`, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.cli.config.as_deref()
    }

    /// Reads the config file (if any) and the process's `KEYS_*` variables
    /// and layers the flags over them. The agent tokens stay empty when
    /// neither names one.
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with_env(std::env::vars_os())
    }

    /// [`Settings::resolve`] with `env` in place of the process's
    /// environment for the legacy keys (`KEYS_SSH=…`); flags read their own
    /// variables as clap parsed them.
    pub fn resolve_with_env<I>(&self, env: I) -> Result<Resolved, ConfigError>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let legacy_env = legacy::keys_from_env(env)?;
        let file = match self.config_path() {
            Some(path) => config_file::load(path)?,
            None => FileValues::default(),
        };
        self.layer(file, legacy_env)
    }

    /// Whether `id`'s value came from the command line or the environment.
    fn given(&self, id: &str) -> bool {
        matches!(
            self.matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }

    /// The flag's value if given, else the file's, else the flag's default.
    fn pick<T: Clone>(&self, id: &str, flag: &T, file: Option<T>) -> T {
        match (self.given(id), file) {
            (false, Some(from_file)) => from_file,
            _ => flag.clone(),
        }
    }

    fn layer(&self, mut file: FileValues, legacy_env: EnvKeys) -> Result<Resolved, ConfigError> {
        let tls = self.tls(&mut file)?;
        let cli = &self.cli;
        let mut config = Config::new(uptun_protocol::Secret::default());
        config.tokens.agents = self.pick("agent_token", &cli.agent_token, file.agent_tokens);
        config.tokens.clients = self.pick("client_token", &cli.client_token, file.client_tokens);
        config.admin_token = self.pick("admin_token", &cli.admin_token, file.admin_token.map(Some));
        let file_routes = file.routes.as_ref().map(Vec::len);
        let [http, ssh, tcp] = [
            self.pick("http_channel", &cli.http_channel, file.http_channel),
            self.pick("ssh_channel", &cli.ssh_channel, file.ssh_channel),
            self.pick("tcp_channel", &cli.tcp_channel, file.tcp_channel),
        ];
        config.routes = match file.routes {
            Some(routes) => routes,
            None => default_rules(&http, &ssh, &tcp),
        };
        config.legacy = legacy::layer(legacy_env, file.legacy, [&http, &ssh, &tcp]);
        let prefix = self.pick(
            "endpoint_prefix",
            &cli.endpoint_prefix,
            file.endpoint_prefix,
        );
        config.endpoint_prefix = prefix.trim_end_matches('/').to_string();
        config.connect_timeout = self.pick(
            "connect_timeout",
            &cli.connect_timeout,
            file.connect_timeout,
        );
        config.sniff_timeout = self.pick("sniff_timeout", &cli.sniff_timeout, file.sniff_timeout);
        config.header_timeout =
            self.pick("header_timeout", &cli.header_timeout, file.header_timeout);
        config.idle_timeouts = self.pick("idle_timeouts", &cli.idle_timeouts, file.idle_timeouts);
        config.limits = Limits {
            unclassified: self.pick(
                "max_unclassified",
                &cli.max_unclassified,
                file.max_unclassified,
            ),
            unclassified_per_source: self.pick(
                "max_unclassified_per_source",
                &cli.max_unclassified_per_source,
                file.max_unclassified_per_source,
            ),
            links_per_token: self.pick(
                "max_links_per_token",
                &cli.max_links_per_token,
                file.max_links_per_token,
            ),
        };
        let mut link = cli.link.clone();
        link.window = self.pick("window", &link.window, file.window);
        link.ping_interval = self.pick("ping_interval", &link.ping_interval, file.ping_interval);
        link.ping_misses = self.pick("ping_misses", &link.ping_misses, file.ping_misses);
        link.max_streams = self.pick("max_streams", &link.max_streams, file.max_streams);
        config.mux = link.mux();
        Ok(Resolved {
            config,
            listen: listen_addr(self.pick("listen", &cli.listen, file.listen.map(Some))),
            log_format: self.pick("log_format", &link.log_format, file.log_format),
            grace: self.pick("grace", &cli.grace, file.grace),
            file_routes,
            tls,
        })
    }

    /// The TLS settings from the flags and the file: a certificate and its
    /// key, or ACME, or neither. Mistakes name the flag and the file's key.
    fn tls(&self, file: &mut FileValues) -> Result<TlsSettings, ConfigError> {
        let cli = &self.cli;
        let cert = self.pick("tls_cert", &cli.tls_cert, file.tls_cert.take().map(Some));
        let key = self.pick("tls_key", &cli.tls_key, file.tls_key.take().map(Some));
        let domains = self.pick("acme_domain", &cli.acme_domain, file.acme_domains.take());
        let error = |message: &str| ConfigError {
            path: self
                .config_path()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            line: 0,
            column: 0,
            message: message.into(),
        };
        let acme = match (cert, key, domains.is_empty()) {
            (None, None, true) => return Ok(TlsSettings::Off),
            (Some(cert), Some(key), true) => return Ok(TlsSettings::Files { cert, key }),
            (Some(_), None, _) => return Err(error("--tls-cert needs --tls-key (tls_key in the config file), the certificate's private key")),
            (None, Some(_), _) => return Err(error("--tls-key needs --tls-cert (tls_cert in the config file), the certificate chain")),
            (Some(_), Some(_), false) => return Err(error("a certificate from files (--tls-cert) or from ACME (--acme-domain), not both")),
            (None, None, false) => domains,
        };
        let cache = self.pick(
            "acme_cache",
            &cli.acme_cache,
            file.acme_cache.take().map(Some),
        );
        let cache = cache.ok_or_else(|| error("--acme-domain needs --acme-cache DIR (acme_cache in the config file): without it every start orders a new certificate, and Let's Encrypt allows 5 a week for the same names"))?;
        Ok(TlsSettings::Acme(AcmeSettings {
            domains: acme,
            directory: self.pick(
                "acme_directory",
                &cli.acme_directory,
                file.acme_directory.take(),
            ),
            cache,
            contacts: self.pick("acme_contact", &cli.acme_contact, file.acme_contacts.take()),
            directory_ca: self.pick("acme_ca", &cli.acme_ca, file.acme_ca.take().map(Some)),
        }))
    }
}

/// `--listen`, else `0.0.0.0:$PORT`, else `0.0.0.0:8080`.
fn listen_addr(listen: Option<String>) -> String {
    listen.unwrap_or_else(|| {
        let port = std::env::var("PORT")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "8080".into());
        format!("0.0.0.0:{port}")
    })
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
