//! Progress on stderr while slow work goes on, on a terminal only: a
//! spinner while waiting for an answer, and lines above it for retries and
//! escalations. Off a terminal nothing animates (scripts and logs get the
//! plain lines).

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner, or nothing when stderr is not a terminal.
#[derive(Clone, Default)]
pub(crate) struct Progress {
    bar: Arc<Mutex<Option<ProgressBar>>>,
}

impl Progress {
    /// Whether stderr is a terminal (spinners and live lines go there).
    pub(crate) fn on_terminal() -> bool {
        std::io::stderr().is_terminal()
    }

    /// Starts a spinner saying `msg` (on a terminal).
    pub(crate) fn start(&self, msg: impl Into<String>) {
        if !Progress::on_terminal() {
            return;
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(msg.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Some(old) = self.slot().replace(bar) {
            old.finish_and_clear();
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Prints a line on stderr, above the spinner if one runs.
    pub(crate) fn line(&self, text: &str) {
        match &*self.slot() {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    /// Stops and clears the spinner.
    pub(crate) fn stop(&self) {
        if let Some(bar) = self.slot().take() {
            bar.finish_and_clear();
        }
    }
}
