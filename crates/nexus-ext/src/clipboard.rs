//! The clipboard, for extensions granted `clipboard:read` or
//! `clipboard:write`: the system's through `arboard` (X11 here; Wayland and
//! macOS where built), or one in memory for tests and headless hosts.
//!
//! On X11 a clipboard's content lives in the process that set it, so the
//! system clipboard keeps one `arboard::Clipboard` open for as long as the
//! host runs: text an extension writes stays pasteable after the call.

use std::sync::Mutex;

/// A text clipboard. Calls may block (X11 round trips); the host makes them
/// on a blocking thread.
pub trait Clipboard: Send + Sync {
    /// The clipboard's text ("" when it holds none).
    fn read(&self) -> Result<String, String>;
    /// Replaces the clipboard's content with `text`.
    fn write(&self, text: &str) -> Result<(), String>;
}

/// A clipboard in memory.
#[derive(Debug, Default)]
pub struct MemoryClipboard(Mutex<String>);

impl Clipboard for MemoryClipboard {
    fn read(&self) -> Result<String, String> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
    fn write(&self, text: &str) -> Result<(), String> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text.to_string();
        Ok(())
    }
}

/// The desktop's clipboard, opened on first use.
#[derive(Default)]
pub struct SystemClipboard(Mutex<Option<arboard::Clipboard>>);

impl std::fmt::Debug for SystemClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SystemClipboard")
    }
}

fn unavailable(e: arboard::Error) -> String {
    format!("the clipboard is not available ({e}); is there a desktop session (DISPLAY or WAYLAND_DISPLAY)?")
}

impl SystemClipboard {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut arboard::Clipboard) -> Result<T, arboard::Error>,
    ) -> Result<T, String> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(arboard::Clipboard::new().map_err(unavailable)?);
        }
        let Some(c) = slot.as_mut() else {
            return Err("the clipboard is not available".into());
        };
        f(c).map_err(|e| match e {
            arboard::Error::ContentNotAvailable => String::new(),
            e => unavailable(e),
        })
    }
}

impl Clipboard for SystemClipboard {
    fn read(&self) -> Result<String, String> {
        match self.with(arboard::Clipboard::get_text) {
            // Empty, or not text: nothing to read.
            Err(e) if e.is_empty() => Ok(String::new()),
            r => r,
        }
    }
    fn write(&self, text: &str) -> Result<(), String> {
        self.with(|c| c.set_text(text))
    }
}

/// The shared clipboard conformance suite; it panics on failure.
#[allow(clippy::unwrap_used, clippy::panic)]
pub mod conformance {
    use super::Clipboard;

    /// What one writes, the next read returns; a write replaces; text
    /// beyond ASCII survives.
    pub fn run(c: &dyn Clipboard) {
        c.write("first").unwrap();
        assert_eq!(c.read().unwrap(), "first");
        c.write("second — ünïcode ✓\nline two").unwrap();
        assert_eq!(c.read().unwrap(), "second — ünïcode ✓\nline two");
        let big = "x".repeat(256 * 1024);
        c.write(&big).unwrap();
        assert_eq!(c.read().unwrap().len(), big.len());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_clipboard_conforms() {
        super::conformance::run(&super::MemoryClipboard::default());
    }
}
