//! The audit log: one JSON object per line, each carrying the SHA-256 of
//! the line before it (`prev`) and of itself (`hash`), so editing,
//! removing or reordering any line breaks the chain from there on.
//! Pure: [`Chain`] makes lines and [`verify`] checks text; writing the file
//! is the caller's.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The longest line verified, bytes.
pub const MAX_LINE: usize = 64 * 1024;

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Who acted (`apikey:ID`, `cli`, `mcp`).
    pub actor: String,
    /// What was acted on.
    pub resource: String,
    /// The action.
    pub verb: String,
    /// `allow`, `deny`, `prompt`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// Anything else (mesh, peer, topic).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
    /// The previous line's hash.
    pub prev: String,
    /// This line's hash: SHA-256 of `prev` and the entry without `hash`.
    pub hash: String,
}

fn digest(e: &Entry) -> String {
    let mut body = e.clone();
    body.hash = String::new();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(e.prev.as_bytes());
    h.update(b"\n");
    h.update(&bytes);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes chained lines, continuing from `last` (the previous line's hash).
#[derive(Debug, Clone)]
pub struct Chain {
    last: String,
}

impl Chain {
    /// Continues after a line whose hash is `last` (or from the start).
    pub fn after(last: Option<String>) -> Chain {
        Chain {
            last: last.unwrap_or_else(|| GENESIS.to_string()),
        }
    }

    /// The hash of the last line of `text` (a log's content), if any.
    pub fn resume(text: &str) -> Chain {
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<Entry>(l).ok())
            .map(|e| e.hash);
        Chain::after(last)
    }

    /// The next line (with its newline) for `entry` (its `prev` and `hash`
    /// are set here).
    pub fn line(&mut self, mut entry: Entry) -> String {
        entry.prev = self.last.clone();
        entry.hash = String::new();
        entry.hash = digest(&entry);
        self.last = entry.hash.clone();
        let mut s = serde_json::to_string(&entry).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log was changed at line {line}: {why}")]
pub struct Broken {
    /// 1-based.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Checks every line of `text`; the number of entries when the chain holds.
pub fn verify(text: &str) -> Result<usize, Broken> {
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let broken = |why: &str| Broken {
            line: i + 1,
            why: why.to_string(),
        };
        if line.len() > MAX_LINE {
            return Err(broken("the line is too long"));
        }
        let e: Entry = serde_json::from_str(line).map_err(|_| broken("not an audit entry"))?;
        if e.prev != prev {
            return Err(broken(
                "it does not follow the line before (removed, inserted or reordered)",
            ));
        }
        if digest(&e) != e.hash {
            return Err(broken("its content does not match its hash (edited)"));
        }
        prev = e.hash;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(n: u64) -> Entry {
        Entry {
            at_ms: n,
            actor: "apikey:ab12".into(),
            resource: "messages".into(),
            verb: "send".into(),
            decision: "allow".into(),
            reason: format!("rule {n}"),
            detail: serde_json::json!({"peer": "bob"}),
            prev: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn any_edit_removal_or_reorder_is_found() {
        let mut c = Chain::after(None);
        let text: String = (0..5).map(|n| c.line(entry(n))).collect();
        assert_eq!(verify(&text), Ok(5));
        // Appending after a resume keeps the chain.
        let mut again = Chain::resume(&text);
        let more = format!("{text}{}", again.line(entry(5)));
        assert_eq!(verify(&more), Ok(6));
        let lines: Vec<&str> = text.lines().collect();
        let edited = text.replacen("rule 2", "rule X", 1);
        assert_eq!(verify(&edited).unwrap_err().line, 3);
        let removed = [lines[0], lines[1], lines[3], lines[4]].join("\n");
        assert_eq!(verify(&removed).unwrap_err().line, 3);
        let swapped = [lines[0], lines[2], lines[1], lines[3]].join("\n");
        assert_eq!(verify(&swapped).unwrap_err().line, 2);
        assert!(verify("garbage\n").is_err());
        assert_eq!(verify(""), Ok(0));
    }
}
