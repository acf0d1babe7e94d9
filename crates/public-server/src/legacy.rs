//! rhost (`extra-tunnel`) compatibility: legacy agents (`tunnel/server`)
//! and legacy clients (`tunnel/client`) on the same port as native links.
//! See docs/rhost-compat.md.

mod config;
pub(crate) mod settings;

pub use config::{LegacyConfig, LegacyPath};
