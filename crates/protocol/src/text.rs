//! Text a peer chose (reasons in REFUSE, RESET and GOAWAY, the user address
//! in OPEN, the agent's `Uptun-Name`, a server's `Uptun-Reason`) passes
//! through [`sanitize`] where it is decoded, before it can reach a log line,
//! so a peer cannot forge log lines with newlines or rewrite a terminal with
//! escape sequences.

/// Peer text longer than this many characters is cut, with `…` at the end.
pub const MAX_PEER_TEXT: usize = 512;

/// `text` with every control character (C0, DEL, C1: newlines, escapes) and
/// every invisible reordering mark written as its Rust escape (`\n`,
/// `\u{1b}`), cut to [`MAX_PEER_TEXT`] characters.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_PEER_TEXT));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_PEER_TEXT {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Marks that reorder text as it is displayed (`U+202E` shows what follows
/// backwards), so a log line would read differently from what it holds.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newline_cannot_start_a_second_log_line() {
        let forged = sanitize("a\nb");
        assert_eq!(forged, "a\\nb");
        assert_eq!(forged.lines().count(), 1);
        let forged = sanitize("ok\r\n2024-01-01T00:00:00Z  INFO agent link up\u{85}x");
        assert_eq!(forged.lines().count(), 1);
        assert!(!forged.contains(['\r', '\n', '\u{85}']), "{forged}");
    }

    #[test]
    fn escapes_and_reordering_marks_are_written_out() {
        assert_eq!(sanitize("\u{1b}[2Jred"), "\\u{1b}[2Jred");
        assert_eq!(sanitize("tab\there\0"), "tab\\there\\u{0}");
        assert_eq!(sanitize("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(sanitize("\u{7f}"), "\\u{7f}");
    }

    #[test]
    fn ordinary_text_is_kept_and_long_text_is_cut() {
        let plain = "could not reach 127.0.0.1:22 — connection refused (é, 日本)";
        assert_eq!(sanitize(plain), plain);
        let long = "x".repeat(10_000);
        let cut = sanitize(&long);
        assert_eq!(cut.chars().count(), MAX_PEER_TEXT + 1);
        assert!(cut.ends_with('…'));
    }
}
