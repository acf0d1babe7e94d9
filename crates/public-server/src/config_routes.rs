//! `[[route]]` tables into rules, checked as they load: each table has one
//! action, matchers that can work together, a channel name (or a template
//! whose `$1` the regex can fill) and timeouts within the flags' bounds.

use std::time::Duration;

use toml::Spanned;
use uptun_protocol::valid_channel_name;

use crate::config_file::{Close, ConfigError, RouteTable, Source};
use crate::pattern::Pattern;
use crate::route::{Action, Matcher, RouteTimeouts, Rule};
use crate::timeouts;

/// Compiles the tables in order; the first mistake is the error.
pub fn compile(
    tables: &[Spanned<RouteTable>],
    source: &Source<'_>,
) -> Result<Vec<Rule>, ConfigError> {
    tables
        .iter()
        .enumerate()
        .map(|(index, table)| {
            compile_one(table.get_ref(), source).map_err(|mut err| {
                if err.line == 0 {
                    err = source.error(table.span(), err.message);
                }
                err.message = format!("route {}: {}", index + 1, err.message);
                err
            })
        })
        .collect()
}

/// An error with no place of its own: `compile` gives it the table's.
fn placeless(message: impl Into<String>) -> ConfigError {
    ConfigError {
        path: Default::default(),
        line: 0,
        column: 0,
        message: message.into(),
    }
}

fn compile_one(table: &RouteTable, source: &Source<'_>) -> Result<Rule, ConfigError> {
    let matchers = matchers(table, source)?;
    let regex = matchers.iter().find_map(|m| match m {
        Matcher::Regex(pattern) => Some(pattern.as_ref()),
        _ => None,
    });
    let channel = table
        .channel
        .as_ref()
        .map(|name| source.check(name, |name| check_channel(name, regex)))
        .transpose()?;
    let action =
        match (&table.close, &table.reply, channel) {
            (Some(close), None, None) => Action::Close(match close.get_ref() {
                Close::Text(text) => text.as_bytes().to_vec(),
                Close::Flag(true) => Vec::new(),
                Close::Flag(false) => {
                    return Err(source.error(close.span(), "write close = true, or leave it out"))
                }
            }),
            (Some(close), _, _) => {
                return Err(source.error(
                    close.span(),
                    "close ends the connection: it cannot go with reply or channel",
                ))
            }
            (None, Some(reply), then) => Action::Reply {
                bytes: reply.get_ref().as_bytes().to_vec(),
                then,
            },
            (None, None, Some(channel)) => Action::Channel(channel),
            (None, None, None) => return Err(placeless(
                "no action: give it channel = \"…\", close = true, close = \"…\" or reply = \"…\"",
            )),
        };
    let timeouts = RouteTimeouts {
        connect: duration(&table.connect_timeout, timeouts::connect, source)?,
        idle: duration(&table.idle_timeout, timeouts::idle, source)?,
        sniff: duration(&table.sniff_timeout, timeouts::sniff, source)?,
    };
    if let Some(sniff) = &table.sniff_timeout {
        if !matchers.iter().all(|m| *m == Matcher::Silent) {
            return Err(source.error(
                sniff.span(),
                "sniff_timeout is how long a silent route waits: it needs silent = true",
            ));
        }
    }
    Ok(Rule {
        matchers,
        action,
        timeouts,
    })
}

/// The table's matchers; `silent` goes alone (a silent connection has no
/// bytes for the others to look at).
fn matchers(table: &RouteTable, source: &Source<'_>) -> Result<Vec<Matcher>, ConfigError> {
    let mut matchers = Vec::new();
    if let Some(http) = &table.http {
        match http.get_ref() {
            true => matchers.push(Matcher::Http),
            false => return Err(source.error(http.span(), "write http = true, or leave it out")),
        }
    }
    if let Some(host) = &table.host {
        matchers.push(Matcher::Host(source.check(host, check_host)?));
    }
    if let Some(method) = &table.method {
        matchers.push(Matcher::Method(source.check(method, check_method)?));
    }
    if let Some(path) = &table.path {
        matchers.push(Matcher::Path(source.check(path, check_path)?));
    }
    if let Some(prefix) = &table.prefix {
        matchers.push(Matcher::Prefix(source.check(
            prefix,
            |p| match p.is_empty() {
                true => Err("an empty prefix matches everything: leave it out".to_string()),
                false => Ok(p.as_bytes().to_vec()),
            },
        )?));
    }
    if let Some(regex) = &table.regex {
        matchers.push(Matcher::Regex(Box::new(
            source.check(regex, |r| Pattern::new(r))?,
        )));
    }
    if let Some(silent) = &table.silent {
        if !silent.get_ref() {
            return Err(source.error(silent.span(), "write silent = true, or leave it out"));
        }
        if !matchers.is_empty() {
            return Err(source.error(
                silent.span(),
                "silent = true cannot go with other matchers: a silent connection sent nothing to match",
            ));
        }
        matchers.push(Matcher::Silent);
    }
    Ok(matchers)
}

fn check_host(host: &String) -> Result<String, String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    let fine = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    match fine {
        true => Ok(host.to_ascii_lowercase()),
        false => Err(format!(
            "{host:?} is not a host name: write a name like example.com, or *.example.com for any name under it"
        )),
    }
}

fn check_method(method: &String) -> Result<String, String> {
    match !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) {
        true => Ok(method.clone()),
        false => Err(format!(
            "{method:?} is not an HTTP method: write it in capitals, as GET or POST"
        )),
    }
}

fn check_path(path: &String) -> Result<String, String> {
    match path.starts_with('/') {
        true => Ok(path.clone()),
        false => Err(format!("{path:?} is not a path: it must start with /")),
    }
}

/// A channel name, or a template the regex can fill (`git-$1`).
fn check_channel(template: &String, regex: Option<&Pattern>) -> Result<String, String> {
    let groups = referenced_groups(template);
    if groups.is_empty() {
        return match valid_channel_name(template) {
            true => Ok(template.clone()),
            false => Err(format!(
                "{template:?} is not a channel name: use letters, digits, '-', '_' or '.'"
            )),
        };
    }
    let Some(regex) = regex else {
        return Err(format!(
            "channel {template:?} uses ${}, but the route has no regex to capture it",
            groups[0]
        ));
    };
    match groups.iter().find(|g| !regex.has_group(g)) {
        Some(missing) => Err(format!(
            "channel {template:?} uses ${missing}, but the regex has no such group"
        )),
        None => Ok(template.clone()),
    }
}

/// The groups `$1`, `$name` and `${name}` in a template (`$$` is a `$`).
fn referenced_groups(template: &str) -> Vec<String> {
    let mut groups = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            rest = after;
        } else if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            groups.push(inner[..end].to_string());
            rest = &inner[(end + 1).min(inner.len())..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            groups.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    groups
}

fn duration(
    value: &Option<Spanned<String>>,
    parse: fn(&str) -> Result<Duration, String>,
    source: &Source<'_>,
) -> Result<Option<Duration>, ConfigError> {
    value
        .as_ref()
        .map(|text| source.check(text, |t| parse(t)))
        .transpose()
}
