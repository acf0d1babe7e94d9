//! Which legacy agent holds each legacy channel, with the token its legacy
//! clients must present. rhost allows one agent per channel, and the agent
//! sets that token: a second agent is refused while the first is up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use uptun_protocol::Secret;

use super::LegacyPath;

#[derive(Debug, Default)]
pub(crate) struct Owners {
    held: Mutex<HashMap<LegacyPath, (Secret, SocketAddr)>>,
}

/// Holds a legacy channel until dropped.
#[derive(Debug)]
pub(crate) struct Owned<'a> {
    owners: &'a Owners,
    path: LegacyPath,
}

impl Owners {
    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<LegacyPath, (Secret, SocketAddr)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes `path` for an agent at `addr` whose clients present `token`;
    /// `Err` names the address of the agent that holds it.
    pub fn take(
        &self,
        path: &LegacyPath,
        token: Secret,
        addr: SocketAddr,
    ) -> Result<Owned<'_>, SocketAddr> {
        let mut held = self.held();
        if let Some((_, holder)) = held.get(path) {
            return Err(*holder);
        }
        held.insert(path.clone(), (token, addr));
        Ok(Owned {
            owners: self,
            path: path.clone(),
        })
    }

    /// Whether `presented` is the token of the agent holding `path`
    /// (compared in constant time).
    pub fn admits(&self, path: &LegacyPath, presented: &str) -> bool {
        self.held()
            .get(path)
            .is_some_and(|(token, _)| token.matches(presented))
    }
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        self.owners.held().remove(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_per_channel_and_its_token_admits_clients() {
        let owners = Owners::default();
        let ssh = LegacyPath::Named("ssh".into());
        let first: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let held = owners.take(&ssh, "tok".into(), first).unwrap();
        assert_eq!(owners.take(&ssh, "other".into(), first).unwrap_err(), first);
        assert!(owners.take(&LegacyPath::Root, "r".into(), first).is_ok());
        assert!(owners.admits(&ssh, "tok"));
        assert!(!owners.admits(&ssh, "tok2"));
        drop(held);
        assert!(!owners.admits(&ssh, "tok"));
        assert!(owners.take(&ssh, "other".into(), first).is_ok());
    }
}
