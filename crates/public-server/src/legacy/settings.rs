//! Where the rhost compatibility settings come from: `KEYS_<NAME>`
//! environment variables, as rhost read them, and the config file's
//! `[legacy]` table (`config_legacy.rs`), layered per channel with the
//! environment winning. `Settings::resolve` calls this on every start and
//! every `HUP`.

use std::ffi::OsString;

use uptun_protocol::{valid_channel_name, Secret};

use super::config::{LegacyConfig, LegacyPath, DEFAULT_LINGER};
use crate::config_file::ConfigError;

/// What the environment says: the key of each channel it names.
pub(crate) type EnvKeys = Vec<(LegacyPath, Secret)>;

/// What the config file's `[legacy]` table says, checked.
#[derive(Debug, Default)]
pub(crate) struct FileLegacy {
    pub keys: Vec<(LegacyPath, Secret)>,
    pub linger: Option<std::time::Duration>,
    pub root_channels: Option<Vec<String>>,
}

const PREFIX: &str = "KEYS_";

/// The legacy keys among `vars`: `KEYS_SSH=admin` is channel `/ssh`,
/// `KEYS_=…` is `/`. Errors name the variable, never its value.
pub(crate) fn keys_from_env<I>(vars: I) -> Result<EnvKeys, ConfigError>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut keys: Vec<(LegacyPath, Secret, String)> = Vec::new();
    for (name, value) in vars {
        // Lossy only to look: a name that is not UTF-8 but starts with
        // KEYS_ is still ours, and refused by the channel-name check.
        let shown = name.to_string_lossy();
        let Some(suffix) = shown.strip_prefix(PREFIX) else {
            continue;
        };
        let path = env_path(&shown, suffix).map_err(env_error)?;
        let key = match value.into_string() {
            Ok(key) if key.is_empty() => {
                let remedy = format!("unset {shown}");
                return Err(env_error(empty_key(&shown, &path, &remedy)));
            }
            Ok(key) => Secret::new(key),
            Err(_) => {
                return Err(env_error(format!(
                    "{shown} is not UTF-8 text: write the key in plain ASCII"
                )))
            }
        };
        if let Some((_, _, other)) = keys.iter().find(|(p, _, _)| *p == path) {
            // The environment's order is not defined: neither may win.
            return Err(env_error(format!(
                "{other} and {shown} both set the key of legacy channel {path}: keep one"
            )));
        }
        keys.push((path, key, shown.into_owned()));
    }
    Ok(keys.into_iter().map(|(path, key, _)| (path, key)).collect())
}

/// The channel `KEYS_<suffix>` names: `/` for no suffix, else the suffix
/// lower-cased (rhost's rule), which must be an uptun channel name.
fn env_path(name: &str, suffix: &str) -> Result<LegacyPath, String> {
    if suffix.is_empty() {
        return Ok(LegacyPath::Root);
    }
    // ASCII only: full Unicode lower-casing would turn the Kelvin sign
    // into `k` and let a look-alike name through.
    let channel = suffix.to_ascii_lowercase();
    match valid_channel_name(&channel) {
        true => Ok(LegacyPath::Named(channel)),
        false => Err(format!(
            "{name} does not name a legacy channel: write KEYS_NAME=KEY with NAME of letters, digits, '-', '_' or '.' (KEYS_SSH=… sets /ssh), or KEYS_=… for /"
        )),
    }
}

/// Why a key may not be empty; `setting` is where it was written, `remedy`
/// how to do without it.
pub(crate) fn empty_key(setting: &str, path: &LegacyPath, remedy: &str) -> String {
    format!(
        "{setting} is empty, which would let anyone serve legacy channel {path} and take its users (rhost's default key for / was empty, so anyone could capture every user): give a long random key, or {remedy}"
    )
}

/// A legacy channel as the file writes it, rhost's path: `/` or `/name`.
pub(crate) fn parse_path(text: &str) -> Result<LegacyPath, String> {
    let Some(name) = text.strip_prefix('/') else {
        return Err(format!(
            "{text:?} is not a legacy channel: write it as rhost's path, \"/\" or \"/{text}\""
        ));
    };
    if name.is_empty() {
        return Ok(LegacyPath::Root);
    }
    match valid_channel_name(name) {
        true => Ok(LegacyPath::Named(name.to_string())),
        false => Err(format!(
            "{text:?} is not a legacy channel: write \"/\" or \"/NAME\" with NAME of letters, digits, '-', '_' or '.'"
        )),
    }
}

fn env_error(message: String) -> ConfigError {
    ConfigError {
        path: Default::default(),
        line: 0,
        column: 0,
        message,
    }
}

/// The settings in force: keys from the file and the environment, the
/// environment's winning for the same channel; `linger` from the file or
/// the default; `/` stands for the file's `root_channels`, else for the
/// http, ssh and tcp channels of the default routes (`defaults`).
pub(crate) fn layer(env: EnvKeys, file: FileLegacy, defaults: [&str; 3]) -> LegacyConfig {
    let mut keys = file.keys;
    for (path, key) in env {
        match keys.iter_mut().find(|(p, _)| *p == path) {
            Some(slot) => slot.1 = key,
            None => keys.push((path, key)),
        }
    }
    // A stable order for the log line and for a reload to compare.
    keys.sort_by_key(|(path, _)| path.to_string());
    LegacyConfig {
        keys,
        root_channels: file
            .root_channels
            .unwrap_or_else(|| defaults.iter().map(|c| c.to_string()).collect()),
        linger: file.linger.unwrap_or(DEFAULT_LINGER),
    }
}

impl LegacyConfig {
    /// The channels legacy agents may serve, as `/, /ssh` (no keys), for
    /// log lines; empty when legacy support is off.
    pub fn paths(&self) -> String {
        let paths: Vec<String> = self.keys.iter().map(|(p, _)| p.to_string()).collect();
        paths.join(", ")
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
