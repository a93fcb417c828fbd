//! Rendering: aligned tables and JSON.

use std::io::Write;

use crate::exit::CliError;

/// Prints rows as a table with a header, columns padded to fit.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    print_str(&out)
}

static JQ: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Filters every `json` output through `expr` (`--jq`).
pub(crate) fn set_jq(expr: String) {
    let _ = JQ.set(expr);
}

/// Pretty JSON on stdout (or what `--jq` makes of it).
pub(crate) fn json(v: &impl serde::Serialize) -> Result<(), CliError> {
    if let Some(expr) = JQ.get() {
        let value = serde_json::to_value(v)
            .map_err(|e| CliError::internal(format!("cannot render JSON: {e}")))?;
        let lines = crate::jq::run(expr, &value).map_err(CliError::config)?;
        let mut out = String::new();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        return print_str(&out);
    }
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| CliError::internal(format!("cannot render JSON: {e}")))?;
    print_str(&format!("{s}\n"))
}

/// Writes to stdout and says whether it got there (the inbox marks a
/// message shown only then).
pub(crate) fn write_str(s: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes()).and_then(|()| out.flush())
}

/// Writes to stdout; a closed pipe (`nexus models list | head`) is not an error.
pub(crate) fn print_str(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::internal(format!("cannot write to stdout: {e}"))),
    }
}
