//! `nexus-extension.toml`: who an extension is, how to run it, what it
//! may do and what it offers. Read from untrusted archives, so bounded.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::permissions::Permission;

/// The manifest's file name, at the root of an extension.
pub const FILE: &str = "nexus-extension.toml";

/// The most bytes a manifest may have.
pub const MAX_BYTES: u64 = 64 * 1024;

/// A command or tool the extension offers (a method the host may call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// The method name.
    pub name: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of its parameters, for tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<serde_json::Value>,
}

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Unique id: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
    pub id: String,
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// The version (`1.2.3`).
    pub version: String,
    /// The file the signature covers (a script or a binary), relative to
    /// the extension's directory.
    pub entry: String,
    /// How to run it: the program and its arguments, run in the extension's
    /// directory (`["python3", "main.py"]`; `["./hello"]` for a binary).
    pub command: Vec<String>,
    /// What it may do; see [`Permission`].
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Keep its store when it is uninstalled.
    #[serde(default)]
    pub persistent_data: bool,
    /// Methods it offers as commands.
    #[serde(default)]
    pub commands: Vec<Offer>,
    /// Methods it offers as tools for models.
    #[serde(default)]
    pub tools: Vec<Offer>,
}

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// It cannot be read.
    #[error("cannot read {path}: {why}")]
    Read {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// It is not valid.
    #[error("{path}: {why}")]
    Invalid {
        /// Where.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Whether `id` is a valid extension id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && !id.contains("..")
}

fn relative_file(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty()
        && path.is_relative()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

impl Manifest {
    /// Parses and validates manifest text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Manifest, ManifestError> {
        let bad = |why: String| ManifestError::Invalid {
            path: path.to_string(),
            why,
        };
        let m: Manifest = toml::from_str(text).map_err(|e| bad(e.message().to_string()))?;
        if !valid_id(&m.id) {
            return Err(bad(format!(
                "id `{}`: use 1-64 of a-z, 0-9, `-`, `_`, `.`, starting with a letter or digit",
                m.id.chars().take(64).collect::<String>()
            )));
        }
        if m.version.is_empty() || m.version.len() > 64 || m.version.contains(char::is_whitespace) {
            return Err(bad("version: give one like 1.0.0".into()));
        }
        if !relative_file(&m.entry) {
            return Err(bad(format!(
                "entry `{}` must be a file inside the extension's directory",
                m.entry
            )));
        }
        if m.command.is_empty() || m.command.iter().any(|a| a.is_empty() || a.contains('\0')) {
            return Err(bad(
                "command: give the program and its arguments, like [\"python3\", \"main.py\"]"
                    .into(),
            ));
        }
        for p in &m.permissions {
            p.parse::<Permission>().map_err(bad)?;
        }
        for o in m.commands.iter().chain(&m.tools) {
            if o.name.is_empty() || o.name.len() > 128 || o.name.starts_with("nexus/") {
                return Err(bad(format!(
                    "command or tool name `{}` is not allowed",
                    o.name
                )));
            }
        }
        Ok(m)
    }

    /// Reads and validates `dir/nexus-extension.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(FILE);
        let shown = path.display().to_string();
        let read_err = |why: String| ManifestError::Read {
            path: shown.clone(),
            why,
        };
        let meta = std::fs::metadata(&path).map_err(|e| read_err(e.to_string()))?;
        if meta.len() > MAX_BYTES {
            return Err(read_err(format!("larger than {MAX_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(e.to_string()))?;
        Manifest::parse(&text, &shown)
    }

    /// The declared permissions, parsed.
    pub fn permissions(&self) -> Vec<Permission> {
        self.permissions
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "hello"
version = "1.0.0"
entry = "main.py"
command = ["python3", "main.py"]
permissions = ["store:read", "store:write", "fs:/tmp", "net:example.com"]
persistent_data = true

[[commands]]
name = "greet"
description = "Says hello"
"#;

    #[test]
    fn parses_and_refuses_what_it_must() {
        let m = Manifest::parse(GOOD, "t").unwrap();
        assert_eq!(m.id, "hello");
        assert_eq!(m.permissions().len(), 4);
        for (from, to, why) in [
            ("id = \"hello\"", "id = \"../x\"", "id"),
            ("entry = \"main.py\"", "entry = \"/etc/passwd\"", "entry"),
            ("entry = \"main.py\"", "entry = \"../main.py\"", "entry"),
            ("\"store:read\"", "\"root:all\"", "permission"),
            (
                "command = [\"python3\", \"main.py\"]",
                "command = []",
                "command",
            ),
            ("persistent_data = true", "surprise = 1", "unknown field"),
        ] {
            let text = GOOD.replace(from, to);
            let e = Manifest::parse(&text, "t").unwrap_err().to_string();
            assert!(e.contains(why), "{to}: {e}");
        }
    }
}
