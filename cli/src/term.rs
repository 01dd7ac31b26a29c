//! What only a terminal gets: colour and a progress line. Piped or
//! redirected output (CI logs, `--format json`, tests) stays plain.

use std::io::{IsTerminal, Write};

/// Whether to style output going to a stream that `is_terminal` or not:
/// only a terminal, and never with `NO_COLOR` set (<https://no-color.org>).
pub(crate) fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A transient `checking …` line on stderr while work runs, erased when
/// dropped; nothing at all when stderr is not a terminal.
pub(crate) struct Progress {
    shown: bool,
}

impl Progress {
    pub(crate) fn start(what: &str) -> Self {
        let shown = std::io::stderr().is_terminal();
        if shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{what}…");
            let _ = err.flush();
        }
        Self { shown }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.shown {
            // Back to the start of the line, and clear it.
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`durable-schema check --format
/// json | head -1`) is not an error of ours: what is left is dropped, and
/// the exit code still tells the outcome.
pub(crate) fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
