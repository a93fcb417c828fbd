//! Permissions: what an extension declared in its manifest, which requests
//! need the user's approval at run time, and the decisions the user asked
//! to remember. The policy is pure; the remembered decisions and the audit
//! log are files under `NEXUS_HOME`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One capability an extension may be granted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Read its own store.
    StoreRead,
    /// Write its own store.
    StoreWrite,
    /// Read the clipboard.
    ClipboardRead,
    /// Write the clipboard.
    ClipboardWrite,
    /// Send mesh messages.
    MeshSend,
    /// Ask a model through the hierarchy, within the budget.
    Ask,
    /// Files under this absolute path.
    Fs(PathBuf),
    /// Network connections to this host (`*.example.com` for subdomains).
    Net(String),
    /// Run programs.
    Exec,
}

impl std::str::FromStr for Permission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "store:read" => Permission::StoreRead,
            "store:write" => Permission::StoreWrite,
            "clipboard:read" => Permission::ClipboardRead,
            "clipboard:write" => Permission::ClipboardWrite,
            "mesh:send" => Permission::MeshSend,
            "ask" => Permission::Ask,
            "exec" => Permission::Exec,
            _ => {
                if let Some(p) = s.strip_prefix("fs:") {
                    let path = Path::new(p);
                    if !path.is_absolute()
                        || path.components().any(|c| matches!(c, Component::ParentDir))
                    {
                        return Err(format!(
                            "permission `{s}`: fs: needs an absolute path without `..`"
                        ));
                    }
                    Permission::Fs(path.to_path_buf())
                } else if let Some(h) = s.strip_prefix("net:") {
                    let host = h.strip_prefix("*.").unwrap_or(h);
                    let ok = !host.is_empty()
                        && host.len() <= 253
                        && host
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
                    if !ok {
                        return Err(format!("permission `{s}`: net: needs a host name"));
                    }
                    Permission::Net(h.to_ascii_lowercase())
                } else {
                    return Err(format!(
                        "unknown permission `{s}`; use store:read, store:write, clipboard:read, clipboard:write, mesh:send, ask, fs:<path>, net:<host> or exec"
                    ));
                }
            }
        })
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Permission::StoreRead => f.write_str("store:read"),
            Permission::StoreWrite => f.write_str("store:write"),
            Permission::ClipboardRead => f.write_str("clipboard:read"),
            Permission::ClipboardWrite => f.write_str("clipboard:write"),
            Permission::MeshSend => f.write_str("mesh:send"),
            Permission::Ask => f.write_str("ask"),
            Permission::Fs(p) => write!(f, "fs:{}", p.display()),
            Permission::Net(h) => write!(f, "net:{h}"),
            Permission::Exec => f.write_str("exec"),
        }
    }
}

impl Permission {
    /// Whether using it asks the user first (everything but the store).
    pub fn sensitive(&self) -> bool {
        !matches!(self, Permission::StoreRead | Permission::StoreWrite)
    }

    /// Whether a grant of `self` covers a request for `wanted`.
    pub fn covers(&self, wanted: &Permission) -> bool {
        match (self, wanted) {
            (Permission::Fs(root), Permission::Fs(p)) => {
                !p.components().any(|c| matches!(c, Component::ParentDir)) && p.starts_with(root)
            }
            (Permission::Net(pattern), Permission::Net(host)) => match pattern.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => pattern == host,
            },
            (a, b) => a == b,
        }
    }
}

/// What the policy says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused, and why.
    Deny(String),
    /// Ask the user (declared and sensitive, nothing remembered).
    Ask,
}

/// A remembered answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remembered {
    /// Always allow.
    Allow,
    /// Always deny.
    Deny,
}

/// Decisions the user asked to remember: extension id → capability → answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decisions(pub BTreeMap<String, BTreeMap<String, Remembered>>);

/// The policy for one request by extension `id`, which declared `declared`.
pub fn decide(
    id: &str,
    declared: &[Permission],
    remembered: &Decisions,
    wanted: &Permission,
) -> Decision {
    let Some(grant) = declared.iter().find(|d| d.covers(wanted)) else {
        return Decision::Deny(format!(
            "`{wanted}` is not in the extension's manifest (permissions = [...])"
        ));
    };
    if !wanted.sensitive() {
        return Decision::Allow;
    }
    match remembered.0.get(id).and_then(|m| m.get(&grant.to_string())) {
        Some(Remembered::Allow) => Decision::Allow,
        Some(Remembered::Deny) => {
            Decision::Deny(format!("`{wanted}` was denied before, and remembered"))
        }
        None => Decision::Ask,
    }
}

/// The user's answer to an approval prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// Yes, this once.
    Allow,
    /// Yes, and remember it.
    AllowAlways,
    /// No, this once.
    Deny,
    /// No, and remember it.
    DenyAlways,
    /// Nobody answered in time: no.
    TimedOut,
}

impl Answer {
    /// Whether the request goes ahead.
    pub fn allows(self) -> bool {
        matches!(self, Answer::Allow | Answer::AllowAlways)
    }
}

impl Decisions {
    /// Reads `path`; missing means none.
    pub fn load(path: &Path) -> Decisions {
        std::fs::read(path)
            .ok()
            .filter(|b| b.len() < 1 << 20)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes `path` atomically, 0600.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        nexus_core::atomic_write(path, &bytes, nexus_core::FileMode::Secret)
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// Remembers `answer` for (`id`, `capability`) when it asks to be.
    pub fn remember(&mut self, id: &str, capability: &str, answer: Answer) {
        let r = match answer {
            Answer::AllowAlways => Remembered::Allow,
            Answer::DenyAlways => Remembered::Deny,
            _ => return,
        };
        self.0
            .entry(id.to_string())
            .or_default()
            .insert(capability.to_string(), r);
    }

    /// Forgets what was remembered for `id` (one capability, or all).
    pub fn revoke(&mut self, id: &str, capability: Option<&str>) -> usize {
        match capability {
            None => self.0.remove(id).map_or(0, |m| m.len()),
            Some(c) => {
                let n = self
                    .0
                    .get_mut(id)
                    .and_then(|m| m.remove(c))
                    .map_or(0, |_| 1);
                if self.0.get(id).is_some_and(BTreeMap::is_empty) {
                    self.0.remove(id);
                }
                n
            }
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// The extension.
    pub extension: String,
    /// What it asked for.
    pub capability: String,
    /// `allow`, `deny`, or the user's answer.
    pub decision: String,
    /// Why (policy, remembered, the user, a timeout).
    pub by: String,
}

/// Appends `e` to the audit log at `path` (JSON lines, 0600).
pub fn audit(path: &Path, e: &AuditEntry) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        nexus_core::private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
    line.push(b'\n');
    f.write_all(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Permission {
        s.parse().unwrap()
    }

    #[test]
    fn declared_sensitive_remembered() {
        let declared = vec![
            p("store:read"),
            p("clipboard:read"),
            p("fs:/srv/data"),
            p("net:*.example.com"),
        ];
        let mut r = Decisions::default();
        assert_eq!(
            decide("x", &declared, &r, &p("store:read")),
            Decision::Allow
        );
        assert!(matches!(
            decide("x", &declared, &r, &p("store:write")),
            Decision::Deny(_)
        ));
        assert_eq!(
            decide("x", &declared, &r, &p("clipboard:read")),
            Decision::Ask
        );
        assert_eq!(
            decide("x", &declared, &r, &p("fs:/srv/data/a.txt")),
            Decision::Ask
        );
        assert!(matches!(
            decide("x", &declared, &r, &p("fs:/srv/other")),
            Decision::Deny(_)
        ));
        assert!("fs:/srv/data/../etc".parse::<Permission>().is_err());
        assert_eq!(
            decide("x", &declared, &r, &p("net:api.example.com")),
            Decision::Ask
        );
        assert!(matches!(
            decide("x", &declared, &r, &p("net:example.org")),
            Decision::Deny(_)
        ));
        r.remember("x", "clipboard:read", Answer::AllowAlways);
        assert_eq!(
            decide("x", &declared, &r, &p("clipboard:read")),
            Decision::Allow
        );
        assert_eq!(
            decide("y", &declared, &r, &p("clipboard:read")),
            Decision::Ask,
            "per extension"
        );
        r.remember("x", "fs:/srv/data", Answer::DenyAlways);
        assert!(matches!(
            decide("x", &declared, &r, &p("fs:/srv/data/b")),
            Decision::Deny(_)
        ));
        assert_eq!(r.revoke("x", None), 2);
        assert_eq!(
            decide("x", &declared, &r, &p("clipboard:read")),
            Decision::Ask
        );
    }
}
