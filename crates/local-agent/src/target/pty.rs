//! `--channel NAME=pty:COMMAND`: each stream gets a new pseudo-terminal
//! running `sh -c COMMAND` (rama's one-off console): `TERM` from the
//! client, sized by its RESIZE frames, in `--pty-cwd`. How one stream runs
//! from start to end is in `pty/serve.rs`.

use std::fmt;

use super::terminal::{self, DEFAULT_TERM};
use super::{BoxFuture, Kind, OpenRequest, Opened};

mod serve;

#[derive(Debug)]
pub(super) struct Pty {
    command: String,
}

impl Pty {
    /// `command` is what follows `pty:`.
    pub fn parse(command: &str) -> Result<Pty, String> {
        if command.trim().is_empty() {
            return Err("pty: needs a command, as in pty:bash or pty:'bundle exec rails c'".into());
        }
        Ok(Pty {
            command: command.into(),
        })
    }
}

impl fmt::Display for Pty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pty:{}", self.command)
    }
}

impl Kind for Pty {
    fn open<'a>(&'a self, request: OpenRequest<'a>) -> BoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            // The pty now, the process once the stream is accepted and its
            // first size is known: a machine out of ptys refuses the stream.
            let pty = terminal::Pty::open()?;
            let settings = serve::Settings {
                command: self.command.clone(),
                cwd: request.cwd.map(Into::into),
                term: usable_term(request.term).to_string(),
                idle_timeout: request.idle_timeout,
            };
            let opened: Opened =
                Box::new(move |stream| Box::pin(serve::serve(stream, pty, settings)));
            Ok(opened)
        })
    }

    fn takes_idle_timeout(&self) -> bool {
        true
    }
}

/// The client's `TERM` if it looks like one (the server passes it on as
/// the client sent it), else [`DEFAULT_TERM`].
fn usable_term(term: Option<&str>) -> &str {
    term.filter(|t| {
        !t.is_empty()
            && t.len() <= 64
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    })
    .unwrap_or(DEFAULT_TERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_and_terms() {
        let pty = Pty::parse("bundle exec rails c").unwrap();
        assert_eq!(pty.to_string(), "pty:bundle exec rails c");
        assert!(Pty::parse(" ").unwrap_err().contains("pty:bash"));
        assert_eq!(usable_term(Some("screen-256color")), "screen-256color");
        assert_eq!(usable_term(None), DEFAULT_TERM);
        assert_eq!(usable_term(Some("")), DEFAULT_TERM);
        assert_eq!(usable_term(Some("xterm\0; rm")), DEFAULT_TERM);
    }
}
