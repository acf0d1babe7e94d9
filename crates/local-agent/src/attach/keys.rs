//! The detach sequence of `attach` (`--detach-keys`, `ctrl-],d` unless set):
//! keys written as docker writes them, and a detector that watches typed
//! bytes for the sequence while passing everything else on unchanged.

use std::fmt;

/// The most keys a sequence may have.
const MAX_KEYS: usize = 8;

/// The default: Ctrl-] (telnet's escape, which programs rarely bind), then
/// `d`. Not Ctrl-P, which shells use for history (kubectl and docker users
/// lose it to their detach keys).
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-],d";

/// A detach sequence: the bytes a terminal sends for its keys; empty for
/// `none` (no sequence: every byte goes to the channel).
#[derive(Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl DetachKeys {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The keys as a person presses them: `Ctrl-] d`.
    pub fn describe(&self) -> String {
        let keys: Vec<String> = self.0.iter().map(|&b| key_name(b)).collect();
        keys.join(" ")
    }
}

impl Default for DetachKeys {
    fn default() -> DetachKeys {
        DEFAULT_DETACH_KEYS.parse().expect("the default parses")
    }
}

impl std::str::FromStr for DetachKeys {
    type Err = String;

    /// `none`, or keys separated by commas: `ctrl-X` for a letter or one of
    /// `@ [ \ ] ^ _`, or one printable character.
    fn from_str(s: &str) -> Result<DetachKeys, String> {
        if s == "none" {
            return Ok(DetachKeys(Vec::new()));
        }
        let keys = s
            .split(',')
            .map(parse_key)
            .collect::<Result<Vec<u8>, String>>()?;
        if keys.len() > MAX_KEYS {
            return Err(format!(
                "{s:?} has {} keys; a detach sequence has at most {MAX_KEYS}",
                keys.len()
            ));
        }
        Ok(DetachKeys(keys))
    }
}

fn parse_key(key: &str) -> Result<u8, String> {
    let what = || {
        format!(
            "{key:?} is not a key: write ctrl-X (X a letter or one of @ [ \\ ] ^ _) or one \
             printable character, keys separated by commas, as in --detach-keys ctrl-],d; \
             or none"
        )
    };
    if let Some(x) = key.strip_prefix("ctrl-") {
        let [x] = x.as_bytes() else {
            return Err(what());
        };
        return match x.to_ascii_uppercase() {
            // What a terminal sends for Ctrl with these: the low five bits.
            c @ (b'@'..=b'_') => Ok(c & 0x1f),
            _ => Err(what()),
        };
    }
    match key.as_bytes() {
        [c] if c.is_ascii_graphic() || *c == b' ' => Ok(*c),
        _ => Err(what()),
    }
}

fn key_name(byte: u8) -> String {
    match byte {
        0..=0x1f => format!("Ctrl-{}", char::from(byte | 0x40)),
        b' ' => "Space".into(),
        _ => char::from(byte).to_string(),
    }
}

/// `ctrl-],d`, as `--detach-keys` takes it.
impl fmt::Display for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let keys: Vec<String> = self
            .0
            .iter()
            .map(|&b| match b {
                0..=0x1f => format!("ctrl-{}", char::from(b | 0x40).to_ascii_lowercase()),
                _ => char::from(b).to_string(),
            })
            .collect();
        f.write_str(&keys.join(","))
    }
}

impl fmt::Debug for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DetachKeys({self})")
    }
}

/// Watches typed bytes for the detach sequence. Bytes that could begin it
/// are held back until the next key decides: the rest of the sequence
/// detaches; any other key sends what was held, as typed. The sequence's
/// first key pressed twice sends that key once, so it can still be typed.
#[derive(Debug)]
pub(crate) struct Detector {
    keys: DetachKeys,
    /// How many keys of the sequence were typed last (and are held back).
    matched: usize,
}

impl Detector {
    pub fn new(keys: DetachKeys) -> Detector {
        Detector { keys, matched: 0 }
    }

    /// Feeds `typed`; appends to `out` what goes to the channel. True when
    /// the sequence is complete: the user detaches, and whatever was typed
    /// after it in the same read is dropped.
    pub fn feed(&mut self, typed: &[u8], out: &mut Vec<u8>) -> bool {
        let keys = self.keys.bytes();
        if keys.is_empty() {
            out.extend_from_slice(typed);
            return false;
        }
        for &byte in typed {
            if byte == keys[self.matched] {
                self.matched += 1;
                if self.matched == keys.len() {
                    self.matched = 0;
                    return true;
                }
                continue;
            }
            if self.matched == 1 && byte == keys[0] {
                // The first key twice: that key, once.
                out.push(byte);
                self.matched = 0;
                continue;
            }
            out.extend_from_slice(&keys[..self.matched]);
            self.matched = 0;
            if byte == keys[0] {
                self.matched = 1;
            } else {
                out.push(byte);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &str) -> DetachKeys {
        s.parse().unwrap()
    }

    /// Feeds each read in turn; what went out, and whether (and on which
    /// read) it detached.
    fn typed(spec: &str, reads: &[&[u8]]) -> (Vec<u8>, Option<usize>) {
        let mut detector = Detector::new(keys(spec));
        let mut out = Vec::new();
        for (i, read) in reads.iter().enumerate() {
            if detector.feed(read, &mut out) {
                return (out, Some(i));
            }
        }
        (out, None)
    }

    #[test]
    fn keys_parse_as_docker_writes_them_and_print_back() {
        assert_eq!(keys("ctrl-],d").bytes(), [0x1d, b'd']);
        assert_eq!(
            keys("ctrl-a,ctrl-@,ctrl-_,ctrl-\\").bytes(),
            [1, 0, 0x1f, 0x1c]
        );
        assert_eq!(keys("ctrl-Q").bytes(), [0x11]);
        assert_eq!(keys("none").bytes(), [] as [u8; 0]);
        assert_eq!(DetachKeys::default().to_string(), "ctrl-],d");
        assert_eq!(DetachKeys::default().describe(), "Ctrl-] d");
        assert_eq!(keys("ctrl-a,x").to_string(), "ctrl-a,x");
        assert_eq!(keys("none").to_string(), "none");
        for bad in [
            "",
            "ctrl-",
            "ctrl-1",
            "ctrl-ab",
            "dd",
            "é",
            "a,,b",
            "1,2,3,4,5,6,7,8,9",
        ] {
            let err = bad.parse::<DetachKeys>().unwrap_err();
            assert!(
                err.contains("ctrl-") || err.contains("at most"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn the_sequence_detaches_even_across_reads() {
        assert_eq!(
            typed("ctrl-],d", &[b"ls\r\x1dd"]),
            (b"ls\r".to_vec(), Some(0))
        );
        assert_eq!(
            typed("ctrl-],d", &[b"ls", b"\x1d", b"d", b"x"]),
            (b"ls".to_vec(), Some(2))
        );
        // Bytes after the sequence in the same read are not sent.
        assert_eq!(typed("ctrl-],d", &[b"\x1ddrm -rf"]), (Vec::new(), Some(0)));
        assert_eq!(typed("ctrl-q", &[b"a\x11b"]), (b"a".to_vec(), Some(0)));
    }

    #[test]
    fn other_keys_pass_as_typed_and_the_first_key_twice_sends_it_once() {
        // Ctrl-] then another key: both go out, in order.
        assert_eq!(typed("ctrl-],d", &[b"\x1dx"]), (b"\x1dx".to_vec(), None));
        // Held back until the next key decides.
        assert_eq!(typed("ctrl-],d", &[b"a\x1d"]), (b"a".to_vec(), None));
        // Ctrl-] Ctrl-] is one Ctrl-], then a fresh start.
        assert_eq!(
            typed("ctrl-],d", &[b"\x1d\x1d", b"d"]),
            (b"\x1dd".to_vec(), None)
        );
        assert_eq!(
            typed("ctrl-],d", &[b"\x1d\x1d\x1dd"]),
            (b"\x1d".to_vec(), Some(0))
        );
        // A longer sequence broken late sends what was held, and the
        // breaking key may start the sequence again.
        assert_eq!(typed("a,b,c", &[b"abac"]), (b"abac".to_vec(), None));
        assert_eq!(typed("a,b,c", &[b"ababc"]), (b"ab".to_vec(), Some(0)));
        // Without a sequence everything goes out.
        assert_eq!(
            typed("none", &[b"\x1dd\x03"]),
            (b"\x1dd\x03".to_vec(), None)
        );
    }

    /// How the keys fall into reads changes nothing; input without the
    /// first key passes through untouched.
    #[test]
    fn reads_may_split_anywhere() {
        let alphabet = [b'a', 0x1d, b'd', b'x'];
        let mut seed = 12345u32;
        let input: Vec<u8> = (0..4096)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                alphabet[(seed >> 16) as usize % 4]
            })
            .collect();
        let whole = {
            let mut d = Detector::new(DetachKeys::default());
            let mut out = Vec::new();
            let detached = d.feed(&input, &mut out);
            (out, detached)
        };
        assert!(whole.1, "a random mix of these keys contains Ctrl-] d");
        for size in [1, 2, 3, 7, 64] {
            let mut d = Detector::new(DetachKeys::default());
            let mut out = Vec::new();
            let detached = input.chunks(size).any(|chunk| d.feed(chunk, &mut out));
            assert!(detached, "reads of {size}");
            assert_eq!(out, whole.0, "reads of {size}");
        }
        let plain: Vec<u8> = input.iter().copied().filter(|&b| b != 0x1d).collect();
        let mut out = Vec::new();
        assert!(!Detector::new(DetachKeys::default()).feed(&plain, &mut out));
        assert_eq!(out, plain);
    }
}
