//! The local terminal in raw mode for as long as `attach` runs, and back as
//! it was on every way out: the guard's drop (a normal end, an error, a
//! signal, which `attach` turns into an ordinary return) and a panic hook
//! (so the panic's message is readable, before unwinding drops the guard).

use std::io::IsTerminal;
use std::sync::Once;

use uptun_protocol::TermSize;

/// Raw mode on the terminal of stdin while this lives. crossterm keeps the
/// settings it found and puts exactly those back, so `stty -g` reads the
/// same before and after.
#[derive(Debug)]
pub(crate) struct RawMode(());

impl RawMode {
    /// Switches stdin's terminal to raw mode: every key goes to the channel
    /// as it is typed (Ctrl-C too), nothing is echoed locally.
    pub fn enable() -> std::io::Result<RawMode> {
        restore_on_panic();
        crossterm::terminal::enable_raw_mode()?;
        Ok(RawMode(()))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing to do about a failure: the terminal may be gone (SIGHUP).
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Installs, once, a panic hook that restores the terminal before the
/// message is printed (in raw mode it would be unreadable) and then hands
/// over to the hook that was there.
fn restore_on_panic() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::terminal::disable_raw_mode();
            previous(info);
        }));
    });
}

/// Whether stdin is a terminal: `attach` is a terminal client then, and a
/// plain pipe otherwise.
pub(crate) fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// The size of the controlling terminal, if there is one with cells.
pub(crate) fn size() -> Option<TermSize> {
    let (cols, rows) = crossterm::terminal::size().ok()?;
    (cols > 0 && rows > 0).then_some(TermSize { cols, rows })
}
