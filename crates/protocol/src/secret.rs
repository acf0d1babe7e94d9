//! Tokens: held in a type that never prints its value and compares in
//! constant time, so a secret cannot reach a log line through `{:?}` and a
//! wrong guess learns nothing from how long the answer took.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token (agent, client or admin). `Debug` prints `***`; there is no
/// `Display`. The value leaves only through [`Secret::expose`], for the one
/// place it belongs: the `Authorization` header on the wire.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call it only to put the token on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A SHA-256 digest of the token: a key to count things by token (its
    /// links, say) without keeping or comparing the token itself.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Whether `presented` is this token, in time independent of where the
    /// two differ. Both sides are hashed first, so the comparison runs over
    /// two 32-byte digests and a length mismatch does not end it early.
    pub fn matches(&self, presented: &str) -> bool {
        let ours = Sha256::digest(self.0.as_bytes());
        let theirs = Sha256::digest(presented.as_bytes());
        ours.ct_eq(&theirs).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.matches(&other.0)
    }
}

impl Eq for Secret {}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret::from(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(format!("{s:#?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn matches_only_the_same_value() {
        let s = Secret::new("hunter2");
        assert!(s.matches("hunter2"));
        assert!(!s.matches("hunter3"));
        assert!(!s.matches("hunter"));
        assert!(!s.matches("hunter22"));
        assert!(!s.matches(""));
        assert!(Secret::new("").matches(""));
        assert_eq!(s, Secret::from("hunter2"));
        assert_ne!(s, Secret::from("Hunter2"));
    }
}
