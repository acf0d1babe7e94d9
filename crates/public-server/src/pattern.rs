//! The `regex` matcher of a route: a regular expression over a connection's
//! first bytes, matched from the first byte. Two automata from one pattern:
//! `regex::bytes` finds the match and its captures (for `channel =
//! "git-$1"`), and a DFA walked over the bytes read so far tells whether
//! more bytes could still make it match. That second answer is what lets a
//! route wait for a slow start without holding every other connection until
//! the classification bounds run out.

use regex::bytes::Regex;
use regex_automata::dfa::{dense, Automaton};
use regex_automata::util::syntax;
use regex_automata::{nfa::thompson, Anchored, Input};

/// The largest automaton one route's pattern may build. Patterns come from
/// the operator's config, but a typo like `(a|b){1000}` should be an error
/// at load time, not a server that eats its memory.
const SIZE_LIMIT: usize = 2 << 20;

/// A compiled `regex` matcher.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
    dfa: dense::DFA<Vec<u32>>,
}

/// Whether the pattern matches the bytes read so far.
#[derive(Debug, PartialEq, Eq)]
pub enum PatternMatch {
    Yes,
    No,
    /// No match yet, but more bytes could make one.
    NotYet,
}

impl Pattern {
    /// Compiles `source`; the error says what is wrong with it.
    pub fn new(source: &str) -> Result<Pattern, String> {
        // Anchored at the first byte: routing looks at how a connection
        // starts. A pattern that already begins with `^` is unchanged.
        let anchored = format!("^(?:{source})");
        let regex = regex::bytes::RegexBuilder::new(&anchored)
            .size_limit(SIZE_LIMIT)
            .build()
            .map_err(|e| format!("bad regex: {e}"))?;
        let dfa = dense::Builder::new()
            .configure(
                dense::DFA::config()
                    .start_kind(regex_automata::dfa::StartKind::Anchored)
                    .dfa_size_limit(Some(SIZE_LIMIT))
                    .determinize_size_limit(Some(SIZE_LIMIT))
                    // `\b` is Unicode-aware in `regex::bytes`; this guesses
                    // it from ASCII and gives up (never wrongly) otherwise.
                    .unicode_word_boundary(true),
            )
            .syntax(syntax::Config::new().utf8(false))
            .thompson(thompson::Config::new().utf8(false))
            .build(&anchored)
            .map_err(|e| format!("regex cannot be used for routing: {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            regex,
            dfa,
        })
    }

    /// The pattern as written in the config.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Matches `bytes`; `complete` says no more will come.
    pub fn verdict(&self, bytes: &[u8], complete: bool) -> PatternMatch {
        if self.regex.is_match(bytes) {
            return PatternMatch::Yes;
        }
        if complete || !self.could_still_match(bytes) {
            return PatternMatch::No;
        }
        PatternMatch::NotYet
    }

    /// Whether some continuation of `bytes` matches: the DFA, walked over
    /// them, has not died.
    fn could_still_match(&self, bytes: &[u8]) -> bool {
        let input = Input::new(bytes).anchored(Anchored::Yes);
        let Ok(mut state) = self.dfa.start_state_forward(&input) else {
            // A byte the DFA gave up on (`\b` beyond ASCII): wait, the
            // bounds on classification still end the wait.
            return true;
        };
        for &byte in bytes {
            state = self.dfa.next_state(state, byte);
            if self.dfa.is_dead_state(state) {
                return false;
            }
            if self.dfa.is_quit_state(state) {
                return true;
            }
        }
        true
    }

    /// Expands `$1`, `${name}` in `template` from the captures of the match
    /// on `bytes`; `None` if the pattern does not match or the result is
    /// not text.
    pub fn expand(&self, template: &str, bytes: &[u8]) -> Option<String> {
        let captures = self.regex.captures(bytes)?;
        let mut out = Vec::new();
        captures.expand(template.as_bytes(), &mut out);
        String::from_utf8(out).ok()
    }

    /// The names and numbers of the pattern's capture groups, for checking
    /// a channel template when the config loads.
    pub fn has_group(&self, group: &str) -> bool {
        match group.parse::<usize>() {
            Ok(n) => n < self.regex.captures_len(),
            Err(_) => self.regex.capture_names().any(|name| name == Some(group)),
        }
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

#[cfg(test)]
mod tests {
    use super::*;

    const GIT: &str = r"[0-9a-f]{4}git-upload-pack /([a-z]+)\.git";

    #[test]
    fn a_prefix_of_a_match_waits_and_anything_else_is_decided() {
        let git = Pattern::new(GIT).unwrap();
        let request = b"0032git-upload-pack /alpha.git\0host=x\0";
        assert_eq!(git.verdict(request, false), PatternMatch::Yes);
        for cut in 1..30 {
            assert_eq!(
                git.verdict(&request[..cut], false),
                PatternMatch::NotYet,
                "{cut}"
            );
            assert_eq!(git.verdict(&request[..cut], true), PatternMatch::No);
        }
        assert_eq!(git.verdict(b"SSH-2.0-x", false), PatternMatch::No);
        assert_eq!(git.verdict(b"0032git-receive", false), PatternMatch::No);
        // Anchored: a match later in the bytes does not count.
        assert_eq!(
            git.verdict(b"x0032git-upload-pack /a.git", false),
            PatternMatch::No
        );
    }

    #[test]
    fn captures_fill_the_channel_template() {
        let git = Pattern::new(GIT).unwrap();
        let request = b"0032git-upload-pack /beta.git\0";
        assert_eq!(git.expand("git-$1", request).as_deref(), Some("git-beta"));
        assert_eq!(git.expand("git-$1", b"nope"), None);
        let named = Pattern::new(r"(?P<proto>[A-Z]+) ").unwrap();
        assert_eq!(
            named.expand("p-${proto}", b"PING x").as_deref(),
            Some("p-PING")
        );
        assert!(named.has_group("proto") && named.has_group("1"));
        assert!(!named.has_group("2") && !named.has_group("host"));
    }

    #[test]
    fn bad_and_huge_patterns_are_refused_with_a_reason() {
        let err = Pattern::new("(unclosed").unwrap_err();
        assert!(err.starts_with("bad regex"), "{err}");
        let err = Pattern::new(r"[a-z]{1000}[0-9]{1000}\w{1000}").unwrap_err();
        assert!(!err.is_empty());
    }

    #[test]
    fn binary_bytes_match() {
        let tls = Pattern::new(r"(?-u:\x16\x03[\x00-\x04])").unwrap();
        assert_eq!(tls.verdict(b"\x16\x03\x01\x02", false), PatternMatch::Yes);
        assert_eq!(tls.verdict(b"\x16", false), PatternMatch::NotYet);
        assert_eq!(tls.verdict(b"\x17", false), PatternMatch::No);
    }
}
