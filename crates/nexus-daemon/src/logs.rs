//! Logs in one place: JSON lines under `NEXUS_HOME/logs/`, one file per
//! source (`nexusd.jsonl`, `NAME.jsonl` per service, `cli.jsonl`), rotated
//! by size (10 MiB, five kept: `.1` the newest). Writing never fails the
//! writer: an error (a full disk) is counted, kept for `status`, and the
//! file is tried again on the next line. Every line passes the redactor
//! first, so the values of credential variables never reach a log.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A file is rotated past this many bytes.
pub const MAX_BYTES: u64 = 10 << 20;
/// Rotated files kept.
pub const KEEP: usize = 5;

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// When (ms since the epoch).
    pub ts_ms: u64,
    /// `error`, `warn`, `info` or `debug`.
    pub level: String,
    /// Who wrote it: `nexusd`, a service's name, `cli`.
    pub source: String,
    /// What happened.
    pub msg: String,
}

/// The levels, least to most severe.
pub const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// The rank of a level (unknown: info).
pub fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(1)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Hides secret values: those of this process's credential variables
/// (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, `*PASSPHRASE`) and
/// any added, eight characters or longer, wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

/// Whether a variable name looks like it holds a credential.
pub fn secret_name(k: &str) -> bool {
    ["_API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "PASSPHRASE"]
        .iter()
        .any(|s| k.ends_with(s))
}

impl Redactor {
    /// One that hides this process's credential variables' values.
    pub fn from_env() -> Redactor {
        let mut r = Redactor::default();
        for (k, v) in std::env::vars() {
            if secret_name(&k) {
                r.add(&v);
            }
        }
        r
    }

    /// Hides `secret` too.
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 8 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            // Longest first, so a secret containing another is hidden whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced.
    pub fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// A source's log file.
#[derive(Debug)]
pub struct Writer {
    path: PathBuf,
    source: String,
    redact: Redactor,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    file: Option<std::fs::File>,
    size: u64,
    failures: u64,
    last_error: Option<String>,
}

impl Writer {
    /// The log of `source` in `dir`.
    pub fn new(dir: &Path, source: &str, redact: Redactor) -> Writer {
        Writer {
            path: dir.join(format!("{source}.jsonl")),
            source: source.to_string(),
            redact,
            state: Mutex::new(State::default()),
        }
    }

    /// Its file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last error writing it, if the last write failed.
    pub fn error(&self) -> Option<String> {
        let s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.last_error.clone()
    }

    /// Appends a line (redacted). Never fails; see [`error`](Self::error).
    pub fn write(&self, level: &str, msg: &str) {
        let line = Line {
            ts_ms: now_ms(),
            level: level.to_string(),
            source: self.source.clone(),
            msg: self.redact.apply(msg.trim_end_matches(['\n', '\r'])),
        };
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = self.append(&mut s, &text);
        match result {
            Ok(()) => s.last_error = None,
            Err(e) => {
                s.failures += 1;
                s.last_error = Some(format!("cannot write {}: {e}", self.path.display()));
                // Reopened on the next line.
                s.file = None;
            }
        }
    }

    fn append(&self, s: &mut State, text: &[u8]) -> std::io::Result<()> {
        if s.file.is_none() {
            if let Some(dir) = self.path.parent() {
                nexus_core::private_dir(dir)?;
            }
            let mut o = std::fs::OpenOptions::new();
            o.create(true).append(true);
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let f = o.open(&self.path)?;
            s.size = f.metadata().map_or(0, |m| m.len());
            s.file = Some(f);
        }
        if s.size + text.len() as u64 > MAX_BYTES && s.size > 0 {
            s.file = None;
            rotate(&self.path)?;
            return self.append(s, text);
        }
        let f = s
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no file"))?;
        f.write_all(text)?;
        s.size += text.len() as u64;
        Ok(())
    }
}

/// `log.jsonl` → `log.jsonl.1` → … → `.5`, the oldest dropped.
fn rotate(path: &Path) -> std::io::Result<()> {
    let name = |i: usize| PathBuf::from(format!("{}.{i}", path.display()));
    let _ = std::fs::remove_file(name(KEEP));
    for i in (1..KEEP).rev() {
        let _ = std::fs::rename(name(i), name(i + 1));
    }
    std::fs::rename(path, name(1))
}

/// Every line under `dir` (rotated files included), oldest first.
pub fn read_all(dir: &Path) -> Vec<Line> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.contains(".jsonl") {
            continue;
        }
        // Only regular files, and no more than a rotated file holds: a log
        // replaced by a device (or grown by hand) is not read forever.
        if !std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut std::io::Read::take(f, 2 * MAX_BYTES), &mut bytes)
            .is_err()
        {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        out.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Line>(l).ok()),
        );
    }
    out.sort_by_key(|l| l.ts_ms);
    out
}

/// Removes every log under `dir`; how many files.
pub fn clear(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".jsonl") || name.ends_with(".log") {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Sends the libraries' `tracing` events to a log (the daemon's): a line
/// per event, `target: message key=value ...`, at its level.
pub struct TracingToLog {
    writer: &'static Writer,
}

impl TracingToLog {
    /// Into `writer`.
    pub fn new(writer: &'static Writer) -> Self {
        TracingToLog { writer }
    }

    /// Makes `writer` the process's `tracing` destination (once; later
    /// calls change nothing).
    pub fn install(writer: &'static Writer) {
        use tracing_subscriber::layer::SubscriberExt as _;
        let subscriber = tracing_subscriber::registry().with(TracingToLog::new(writer));
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.rest.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message.push_str(&format!("{value:?}"));
        } else {
            self.rest.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TracingToLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            _ => "debug",
        };
        let mut f = Fields::default();
        event.record(&mut f);
        self.writer.write(
            level,
            &format!("{}: {}{}", meta.target(), f.message, f.rest),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted_rotated_and_read_back_in_order() {
        let d = tempfile::tempdir().unwrap();
        let mut r = Redactor::default();
        r.add("sk-very-secret-1234");
        r.add("short");
        let w = Writer::new(d.path(), "svc", r);
        w.write("info", "calling with sk-very-secret-1234 now\n");
        let lines = read_all(d.path());
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].msg, "calling with [redacted] now");
        assert_eq!(lines[0].source, "svc");
        // Past 10 MiB a file rotates; five are kept.
        let big = "x".repeat(1 << 20);
        for _ in 0..70 {
            w.write("info", &big);
        }
        assert!(w.path().exists());
        for i in 1..=KEEP {
            assert!(
                PathBuf::from(format!("{}.{i}", w.path().display())).exists(),
                "{i}"
            );
        }
        assert!(!PathBuf::from(format!("{}.6", w.path().display())).exists());
        assert!(std::fs::metadata(w.path()).unwrap().len() <= MAX_BYTES);
        assert_eq!(clear(d.path()).unwrap(), KEEP + 1);
    }

    #[test]
    fn a_full_disk_is_reported_and_the_writer_goes_on() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/full", d.path().join("svc.jsonl")).unwrap();
        let w = Writer::new(d.path(), "svc", Redactor::default());
        w.write("info", "one");
        let e = w.error().unwrap();
        assert!(e.contains("No space left"), "{e}");
        w.write("info", "two");
        assert!(w.error().is_some());
        assert_eq!(rank("error"), 3);
        assert_eq!(rank("whatever"), 1);
    }
}
