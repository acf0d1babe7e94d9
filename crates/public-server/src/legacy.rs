//! rhost (`extra-tunnel`) compatibility: legacy agents (`tunnel/server`)
//! and legacy clients (`tunnel/client`) on the same port as native links.
//! See docs/rhost-compat.md.

mod config;
mod owners;
mod serve;
pub(crate) mod settings;

pub use config::{LegacyConfig, LegacyPath};
pub(crate) use owners::Owners;
pub(crate) use serve::serve;
