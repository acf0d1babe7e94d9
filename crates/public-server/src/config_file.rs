//! The config file (`public-server --config uptun.toml`): what it may say,
//! and errors that name the file, the line and what is wrong. Values keep
//! their place in the file (`Spanned`) until they are checked, so a bad
//! regex or duration points at its own line. Turning the `[[route]]` tables
//! into rules is `config_routes.rs`, the `[legacy]` table (rhost
//! compatibility) is `config_legacy.rs`; layering flags over the file is in
//! `settings.rs`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use uptun_cli::{
    duration_in, LogFormat, MAX_PING_INTERVAL, MAX_PING_MISSES, MIN_PING_INTERVAL, MIN_PING_MISSES,
};
use uptun_protocol::handshake::{MAX_WINDOW, MIN_WINDOW};
use uptun_protocol::{valid_channel_name, Secret};

use crate::auth::{Channels, Grant};
use crate::config_legacy::LegacyTable;
use crate::legacy::settings::FileLegacy;
use crate::route::Rule;
use crate::timeouts;

/// The file as written: every field optional, a flag or the built-in
/// default fills what it leaves out.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    #[serde(default)]
    pub agent_tokens: Option<Vec<Spanned<TokenEntry>>>,
    #[serde(default)]
    pub client_tokens: Option<Vec<Spanned<TokenEntry>>>,
    pub admin_token: Option<Spanned<String>>,
    pub http_channel: Option<Spanned<String>>,
    pub ssh_channel: Option<Spanned<String>>,
    pub tcp_channel: Option<Spanned<String>>,
    pub endpoint_prefix: Option<String>,
    pub connect_timeout: Option<Spanned<String>>,
    pub sniff_timeout: Option<Spanned<String>>,
    pub header_timeout: Option<Spanned<String>>,
    pub grace: Option<Spanned<String>>,
    /// Channel name to duration.
    pub idle_timeout: Option<BTreeMap<String, Spanned<String>>>,
    pub max_unclassified: Option<Spanned<usize>>,
    pub max_unclassified_per_source: Option<Spanned<usize>>,
    pub max_links_per_token: Option<Spanned<usize>>,
    pub window: Option<Spanned<u32>>,
    pub ping_interval: Option<Spanned<String>>,
    pub ping_misses: Option<Spanned<u32>>,
    pub max_streams: Option<Spanned<usize>>,
    pub log_format: Option<Spanned<String>>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub acme_domains: Option<Vec<Spanned<String>>>,
    pub acme_directory: Option<String>,
    pub acme_cache: Option<String>,
    pub acme_contacts: Option<Vec<Spanned<String>>>,
    pub acme_ca: Option<String>,
    pub legacy: Option<LegacyTable>,
    #[serde(default)]
    pub route: Vec<Spanned<RouteTable>>,
}

/// A token in `agent_tokens`/`client_tokens`: `"TOKEN"`, `"TOKEN:web,ssh"`
/// or `{ token = "…", channels = ["web", "dev-*"] }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TokenEntry {
    Text(String),
    Scoped {
        token: String,
        channels: Vec<String>,
    },
}

/// One `[[route]]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTable {
    pub http: Option<Spanned<bool>>,
    pub host: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub prefix: Option<Spanned<String>>,
    pub regex: Option<Spanned<String>>,
    pub silent: Option<Spanned<bool>>,
    pub channel: Option<Spanned<String>>,
    pub reply: Option<Spanned<String>>,
    pub close: Option<Spanned<Close>>,
    pub connect_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    pub sniff_timeout: Option<Spanned<String>>,
}

/// `close = true` or `close = "bye\n"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Close {
    Flag(bool),
    Text(String),
}

/// A mistake in the config file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the mistake has no place (the file is unreadable).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            // A mistake in the flags alone has no file to name.
            0 if self.path.as_os_str().is_empty() => f.write_str(&self.message),
            0 => write!(f, "{}: {}", self.path.display(), self.message),
            line => write!(
                f,
                "{}:{line}:{}: {}",
                self.path.display(),
                self.column,
                self.message
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// The file's text and path, to turn byte offsets into lines.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    /// An error at `span` (a byte range in the file).
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        ConfigError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    /// Checks a spanned value with `check`; its error gets the value's place.
    pub fn check<T, U>(
        &self,
        value: &Spanned<T>,
        check: impl FnOnce(&T) -> Result<U, String>,
    ) -> Result<U, ConfigError> {
        check(value.get_ref()).map_err(|why| self.error(value.span(), why))
    }
}

/// What a loaded file says, checked and typed; `None` where it is silent.
#[derive(Debug, Default)]
pub struct FileValues {
    pub listen: Option<String>,
    pub agent_tokens: Option<Vec<Grant>>,
    pub client_tokens: Option<Vec<Grant>>,
    pub admin_token: Option<Secret>,
    /// `None` when the file has no `[[route]]` tables.
    pub routes: Option<Vec<Rule>>,
    pub http_channel: Option<String>,
    pub ssh_channel: Option<String>,
    pub tcp_channel: Option<String>,
    pub endpoint_prefix: Option<String>,
    pub connect_timeout: Option<Duration>,
    pub sniff_timeout: Option<Duration>,
    pub header_timeout: Option<Duration>,
    pub grace: Option<Duration>,
    pub idle_timeouts: Option<Vec<(String, Duration)>>,
    pub max_unclassified: Option<usize>,
    pub max_unclassified_per_source: Option<usize>,
    pub max_links_per_token: Option<usize>,
    pub window: Option<u32>,
    pub ping_interval: Option<Duration>,
    pub ping_misses: Option<u32>,
    pub max_streams: Option<usize>,
    pub log_format: Option<LogFormat>,
    /// Paths relative to the file's own directory, made whole.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub acme_domains: Option<Vec<String>>,
    pub acme_directory: Option<String>,
    pub acme_cache: Option<PathBuf>,
    pub acme_contacts: Option<Vec<String>>,
    pub acme_ca: Option<PathBuf>,
    /// `[legacy]`; empty when the file has none.
    pub legacy: FileLegacy,
}

/// Reads, parses and checks the file at `path`.
pub fn load(path: &Path) -> Result<FileValues, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message: format!("cannot read the config file: {err}"),
    })?;
    parse(path, &text)
}

/// Parses and checks `text`, the contents of the file at `path`.
pub fn parse(path: &Path, text: &str) -> Result<FileValues, ConfigError> {
    let source = Source { path, text };
    let file: FileConfig = toml::from_str(text).map_err(|err| {
        // `message()`, not `Display`: the latter quotes the file's line,
        // which may hold a token.
        let span = err.span().unwrap_or(0..0);
        source.error(span, err.message().trim_end().to_string())
    })?;
    let routes = match file.route.is_empty() {
        true => None,
        false => Some(crate::config_routes::compile(&file.route, &source)?),
    };
    let channels = [&file.http_channel, &file.ssh_channel, &file.tcp_channel];
    if let (Some(_), Some(named)) = (&routes, channels.iter().find_map(|c| c.as_ref())) {
        return Err(source.error(
            named.span(),
            "http_channel, ssh_channel and tcp_channel shape the default routes; with [[route]] tables, write those routes instead",
        ));
    }
    values(&file, routes, &source)
}

/// The file's settings, each checked against the bounds its flag has.
fn values(
    file: &FileConfig,
    routes: Option<Vec<Rule>>,
    source: &Source<'_>,
) -> Result<FileValues, ConfigError> {
    let channel = |value: &Option<Spanned<String>>| {
        optional(value, source, |name| match valid_channel_name(name) {
            true => Ok(name.clone()),
            false => Err(format!(
                "{name:?} is not a channel name: use letters, digits, '-', '_' or '.'"
            )),
        })
    };
    let tokens = |list: &Option<Vec<Spanned<TokenEntry>>>| {
        list.as_ref()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| source.check(entry, TokenEntry::grant))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
    };
    let time = |value: &Option<Spanned<String>>, parse: fn(&str) -> Result<Duration, String>| {
        optional(value, source, |text| parse(text))
    };
    let count = |value: &Option<Spanned<usize>>, max: usize| {
        optional(value, source, |n| in_range(*n, 1, max))
    };
    Ok(FileValues {
        listen: file.listen.clone(),
        agent_tokens: tokens(&file.agent_tokens)?,
        client_tokens: tokens(&file.client_tokens)?,
        admin_token: optional(&file.admin_token, source, |t| crate::cli::admin_token(t))?,
        routes,
        http_channel: channel(&file.http_channel)?,
        ssh_channel: channel(&file.ssh_channel)?,
        tcp_channel: channel(&file.tcp_channel)?,
        endpoint_prefix: file.endpoint_prefix.clone(),
        connect_timeout: time(&file.connect_timeout, timeouts::connect)?,
        sniff_timeout: time(&file.sniff_timeout, timeouts::sniff)?,
        header_timeout: time(&file.header_timeout, timeouts::header)?,
        grace: time(&file.grace, timeouts::grace)?,
        idle_timeouts: idle_timeouts(file, source)?,
        max_unclassified: count(&file.max_unclassified, 1_000_000)?,
        max_unclassified_per_source: count(&file.max_unclassified_per_source, 1_000_000)?,
        max_links_per_token: count(&file.max_links_per_token, 1_000_000)?,
        window: optional(&file.window, source, |w| {
            in_range(*w, MIN_WINDOW, MAX_WINDOW)
        })?,
        ping_interval: optional(&file.ping_interval, source, |t| {
            duration_in(MIN_PING_INTERVAL, MAX_PING_INTERVAL)(t)
        })?,
        ping_misses: optional(&file.ping_misses, source, |n| {
            in_range(*n, MIN_PING_MISSES, MAX_PING_MISSES)
        })?,
        max_streams: count(&file.max_streams, 1_048_576)?,
        log_format: optional(&file.log_format, source, |f| f.parse())?,
        tls_cert: beside(source.path, &file.tls_cert),
        tls_key: beside(source.path, &file.tls_key),
        acme_domains: list(&file.acme_domains, source, |name| {
            crate::acme::check_domain(name)
                .map(|()| name.clone())
                .map_err(|err| err.to_string())
        })?,
        acme_directory: file.acme_directory.clone(),
        acme_cache: beside(source.path, &file.acme_cache),
        acme_contacts: list(&file.acme_contacts, source, |c| crate::cli::acme_contact(c))?,
        acme_ca: beside(source.path, &file.acme_ca),
        legacy: match &file.legacy {
            Some(table) => crate::config_legacy::check(table, source)?,
            None => FileLegacy::default(),
        },
    })
}

/// A path the file names, taken from the file's own directory when it is
/// relative (so the server finds it whatever directory it runs in).
fn beside(file: &Path, value: &Option<String>) -> Option<PathBuf> {
    let dir = file.parent().unwrap_or(Path::new(""));
    value.as_ref().map(|v| dir.join(v))
}

/// Checks every entry of an optional list.
fn list<T, U>(
    values: &Option<Vec<Spanned<T>>>,
    source: &Source<'_>,
    check: impl Fn(&T) -> Result<U, String>,
) -> Result<Option<Vec<U>>, ConfigError> {
    let Some(values) = values else {
        return Ok(None);
    };
    let checked = values.iter().map(|v| source.check(v, &check));
    checked.collect::<Result<_, _>>().map(Some)
}

/// Checks an optional value.
fn optional<T, U>(
    value: &Option<Spanned<T>>,
    source: &Source<'_>,
    check: impl FnOnce(&T) -> Result<U, String>,
) -> Result<Option<U>, ConfigError> {
    value.as_ref().map(|v| source.check(v, check)).transpose()
}

fn in_range<N: PartialOrd + Copy + std::fmt::Display>(n: N, min: N, max: N) -> Result<N, String> {
    match n >= min && n <= max {
        true => Ok(n),
        false => Err(format!("{n} is out of range: use {min} to {max}")),
    }
}

fn idle_timeouts(
    file: &FileConfig,
    source: &Source<'_>,
) -> Result<Option<Vec<(String, Duration)>>, ConfigError> {
    let Some(table) = &file.idle_timeout else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let limit_span =
        |table: &BTreeMap<String, Spanned<String>>, channel: &str| table[channel].span();
    for (channel, limit) in table {
        let limit = source.check(limit, |t| timeouts::idle(t))?;
        if !valid_channel_name(channel) {
            return Err(source.error(
                limit_span(table, channel),
                format!("idle_timeout: {channel:?} is not a channel name"),
            ));
        }
        out.push((channel.clone(), limit));
    }
    Ok(Some(out))
}

impl TokenEntry {
    /// The grant this entry makes; errors never repeat the token.
    fn grant(&self) -> Result<Grant, String> {
        match self {
            TokenEntry::Text(text) => Grant::parse(text),
            TokenEntry::Scoped { token, channels } => {
                if token.contains(':') {
                    return Err(
                        "a token in a table cannot hold ':'; list its channels in `channels`"
                            .into(),
                    );
                }
                let mut grant = Grant::parse(token)?;
                grant.channels = Channels::parse(&channels.join(","))?;
                Ok(grant)
            }
        }
    }
}
