//! The config file's `[legacy]` table (rhost compatibility,
//! docs/rhost-compat.md): the key of each legacy channel, written as
//! rhost's paths, how long a half-close lingers, and which channels `/`
//! stands for. Checked as it loads; mistakes point at their own place.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;
use uptun_protocol::{valid_channel_name, Secret};

use crate::config_file::{ConfigError, Source};
use crate::legacy::settings::{empty_key, parse_path, FileLegacy};
use crate::timeouts;

/// `[legacy]` as written:
///
/// ```toml
/// [legacy]
/// keys = { "/" = "…", "/ssh" = "…" }
/// linger = "30s"
/// root_channels = ["web", "ssh", "tcp"]
/// ```
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyTable {
    pub keys: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub linger: Option<Spanned<String>>,
    pub root_channels: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The paths only: the keys are secrets.
impl std::fmt::Debug for LegacyTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths = self.keys.iter().flatten().map(|(path, _)| path.get_ref());
        f.debug_struct("LegacyTable")
            .field("keys", &paths.collect::<Vec<_>>())
            .field("linger", &self.linger)
            .field("root_channels", &self.root_channels)
            .finish()
    }
}

/// Checks the table; errors never repeat a key.
pub fn check(table: &LegacyTable, source: &Source<'_>) -> Result<FileLegacy, ConfigError> {
    let mut keys = Vec::new();
    for (path, key) in table.keys.iter().flatten() {
        let legacy = source.check(path, |p| parse_path(p))?;
        if key.get_ref().is_empty() {
            let setting = format!("[legacy] keys {:?}", path.get_ref());
            let remedy = format!("leave {:?} out", path.get_ref());
            return Err(source.error(key.span(), empty_key(&setting, &legacy, &remedy)));
        }
        keys.push((legacy, Secret::new(key.get_ref().as_str())));
    }
    let linger = table
        .linger
        .as_ref()
        .map(|text| source.check(text, |t| timeouts::linger(t)))
        .transpose()?;
    let root_channels = table
        .root_channels
        .as_ref()
        .map(|list| root_channels(list, source))
        .transpose()?;
    Ok(FileLegacy {
        keys,
        linger,
        root_channels,
    })
}

fn root_channels(
    list: &Spanned<Vec<Spanned<String>>>,
    source: &Source<'_>,
) -> Result<Vec<String>, ConfigError> {
    if list.get_ref().is_empty() {
        return Err(source.error(
            list.span(),
            "root_channels is empty, so a legacy agent on / would serve nothing: name at least one channel, or leave it out for the http, ssh and tcp channels",
        ));
    }
    let channel = |name: &String| match valid_channel_name(name) {
        true => Ok(name.clone()),
        false => Err(format!(
            "root_channels: {name:?} is not a channel name: use letters, digits, '-', '_' or '.'"
        )),
    };
    list.get_ref()
        .iter()
        .map(|name| source.check(name, channel))
        .collect()
}
