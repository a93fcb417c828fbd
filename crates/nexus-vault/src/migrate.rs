//! Moving plaintext secrets under `NEXUS_HOME` into the vault.
//!
//! | plaintext | vault name | what stays behind |
//! |---|---|---|
//! | `plugins.json`: each plugin's `auth_token_hash` (plugins are a list, or `{"plugins": [...]}`, each with an `id` or `name`) | `plugin/<id>/auth_token_hash` | the plugin metadata, with `"auth_token_hash_vault": "<name>"` instead of the hash |
//! | `mcp_gateway_token` (the whole file) | `gateway/mcp_token` | nothing: overwritten, then unlinked |
//! | `trusted_keys.json` (the whole file) | `signing/trusted_keys` | nothing: overwritten, then unlinked |
//! | `config.toml`: `providers.<p>.api_key` | `provider/<p>/api_key` | the rest of `config.toml`, comments included |
//!
//! For each secret: read it, write it to the vault, read it back and
//! compare, and only then remove the plaintext (JSON and TOML files are
//! rewritten atomically; whole files are overwritten with zeros, synced, then
//! unlinked). A crash at any point leaves every secret in the plaintext,
//! the vault, or both; running again finishes the job. Running on a
//! migrated home changes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use nexus_core::{atomic_write, ConfigEditor, FileMode, NexusHome, Secret, Vault, VaultError};

/// A point in the migration where a test can inject a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The plaintext was read.
    Read,
    /// The secret was written to the vault.
    Written,
    /// The vault copy was read back and matched.
    Verified,
    /// A whole file was overwritten, before it is unlinked.
    Overwritten,
    /// The plaintext was removed.
    Removed,
}

/// What happened to one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// Where it was (`config.toml providers.openai.api_key`, ...).
    pub from: String,
    /// Its vault name.
    pub to: String,
    /// `moved`, `already_in_vault` (plaintext removed), or `would_move` (dry run).
    pub action: &'static str,
}

/// A migration failure; every secret is still somewhere.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The vault failed.
    #[error("migration stopped, nothing lost: {0}")]
    Vault(#[from] VaultError),
    /// A file could not be read or written.
    #[error("migration stopped, nothing lost: {path}: {why}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        why: String,
    },
    /// The vault returned something other than what was written.
    #[error("migration stopped, nothing lost: the vault did not return `{0}` as written; the plaintext was kept")]
    Mismatch(String),
    /// An injected failure (tests).
    #[error("injected failure at {step:?} of {what}")]
    Injected {
        /// The step.
        step: Step,
        /// The secret.
        what: String,
    },
}

/// Called at each step; an `Err` stops the migration there (tests use it
/// to simulate a crash).
pub type FailPoint<'a> = &'a dyn Fn(Step, &str) -> Result<(), ()>;

fn file_err(path: &Path, why: impl std::fmt::Display) -> MigrateError {
    MigrateError::File {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

struct Run<'a> {
    vault: &'a dyn Vault,
    dry_run: bool,
    fail: FailPoint<'a>,
    out: Vec<Moved>,
}

impl Run<'_> {
    fn point(&self, step: Step, what: &str) -> Result<(), MigrateError> {
        (self.fail)(step, what).map_err(|()| MigrateError::Injected {
            step,
            what: what.to_string(),
        })
    }

    /// Writes and verifies one secret; says whether it was already there.
    fn secure(&mut self, from: &str, name: &str, value: &str) -> Result<bool, MigrateError> {
        self.point(Step::Read, name)?;
        let already = self.vault.get(name)?.is_some_and(|s| s.expose() == value);
        if self.dry_run {
            self.out.push(Moved {
                from: from.to_string(),
                to: name.to_string(),
                action: "would_move",
            });
            return Ok(already);
        }
        if !already {
            self.vault.set(name, &Secret::new(value))?;
        }
        self.point(Step::Written, name)?;
        match self.vault.get(name)? {
            Some(s) if s.expose() == value => {}
            _ => return Err(MigrateError::Mismatch(name.to_string())),
        }
        self.point(Step::Verified, name)?;
        Ok(already)
    }

    fn done(&mut self, from: String, to: &str, already: bool) -> Result<(), MigrateError> {
        self.point(Step::Removed, to)?;
        self.out.push(Moved {
            from,
            to: to.to_string(),
            action: if already { "already_in_vault" } else { "moved" },
        });
        Ok(())
    }

    /// Overwrites a file with zeros, syncs it, then unlinks it.
    fn shred(&self, path: &Path, what: &str) -> Result<(), MigrateError> {
        let len = std::fs::metadata(path)
            .map_err(|e| file_err(path, e))?
            .len();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| file_err(path, e))?;
        f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(0)])
            .and_then(|()| f.sync_all())
            .map_err(|e| file_err(path, e))?;
        drop(f);
        self.point(Step::Overwritten, what)?;
        std::fs::remove_file(path).map_err(|e| file_err(path, e))
    }

    fn whole_file(&mut self, path: &Path, name: &str, trim: bool) -> Result<(), MigrateError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(file_err(path, e)),
        };
        // A file of zeros is one a crash left between overwrite and unlink:
        // its secret was verified in the vault before it was overwritten.
        if !bytes.is_empty() && bytes.iter().all(|b| *b == 0) {
            if !self.dry_run {
                std::fs::remove_file(path).map_err(|e| file_err(path, e))?;
            }
            return Ok(());
        }
        let text = String::from_utf8(bytes).map_err(|_| file_err(path, "not UTF-8"))?;
        let value = if trim { text.trim().to_string() } else { text };
        if value.is_empty() {
            return Ok(());
        }
        let already = self.secure(&path.display().to_string(), name, &value)?;
        if self.dry_run {
            return Ok(());
        }
        self.shred(path, name)?;
        self.done(path.display().to_string(), name, already)
    }

    fn plugins(&mut self, path: &Path) -> Result<(), MigrateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(file_err(path, e)),
        };
        let mut doc: Value =
            serde_json::from_str(&text).map_err(|e| file_err(path, format!("not JSON: {e}")))?;
        // Find every plugin with a hash first; rewrite once, after all are safe.
        let list = match &mut doc {
            Value::Array(a) => Some(a),
            Value::Object(o) => o.get_mut("plugins").and_then(Value::as_array_mut),
            _ => None,
        };
        let Some(list) = list else { return Ok(()) };
        let mut moved = Vec::new();
        for p in list.iter_mut() {
            let Some(obj) = p.as_object_mut() else {
                continue;
            };
            let Some(hash) = obj
                .get("auth_token_hash")
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let id = obj
                .get("id")
                .or_else(|| obj.get("name"))
                .and_then(Value::as_str)
                .map(|s| {
                    s.chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                                c
                            } else {
                                '_'
                            }
                        })
                        .collect::<String>()
                })
                .ok_or_else(|| {
                    file_err(path, "a plugin with an auth_token_hash has no id or name")
                })?;
            let name = format!("plugin/{id}/auth_token_hash");
            let already = self.secure(&format!("{} plugin {id}", path.display()), &name, &hash)?;
            if !self.dry_run {
                obj.remove("auth_token_hash");
                obj.insert("auth_token_hash_vault".into(), Value::String(name.clone()));
                moved.push((name, already));
            }
        }
        if self.dry_run || moved.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec_pretty(&doc).map_err(|e| file_err(path, e))?;
        atomic_write(path, &json, FileMode::Secret).map_err(|e| file_err(path, e))?;
        for (name, already) in moved {
            self.done(format!("{} ({name})", path.display()), &name, already)?;
        }
        Ok(())
    }

    fn config(&mut self, home: &NexusHome) -> Result<(), MigrateError> {
        let config =
            nexus_core::Config::load(home).map_err(|e| file_err(&home.config_path(), e))?;
        let keys: Vec<(String, String)> = config
            .providers
            .iter()
            .filter_map(|(p, c)| c.api_key.clone().map(|k| (p.clone(), k)))
            .collect();
        for (provider, key) in keys {
            let name = format!("provider/{provider}/api_key");
            let from = format!("config.toml providers.{provider}.api_key");
            let already = self.secure(&from, &name, &key)?;
            if self.dry_run {
                continue;
            }
            let mut ed = ConfigEditor::load(home).map_err(|e| file_err(&home.config_path(), e))?;
            ed.unset(&format!("providers.{provider}.api_key"))
                .map_err(|e| file_err(&home.config_path(), e))?;
            ed.save(&home.config_path())
                .map_err(|e| file_err(&home.config_path(), e))?;
            self.done(from, &name, already)?;
        }
        Ok(())
    }
}

/// The plaintext files the migration looks at.
pub fn sources(home: &NexusHome) -> Vec<PathBuf> {
    [
        "plugins.json",
        "mcp_gateway_token",
        "trusted_keys.json",
        "config.toml",
    ]
    .iter()
    .map(|f| home.join(f))
    .collect()
}

/// Whether any plaintext secret is waiting to move (cheap: no vault needed).
pub fn pending(home: &NexusHome) -> bool {
    if home.join("mcp_gateway_token").exists() || home.join("trusted_keys.json").exists() {
        return true;
    }
    if std::fs::read_to_string(home.join("plugins.json"))
        .is_ok_and(|t| t.contains("\"auth_token_hash\""))
    {
        return true;
    }
    nexus_core::Config::load(home).is_ok_and(|c| c.providers.values().any(|p| p.api_key.is_some()))
}

/// Migrates every plaintext secret under `home` into `vault`.
pub fn migrate(
    home: &NexusHome,
    vault: &dyn Vault,
    dry_run: bool,
) -> Result<Vec<Moved>, MigrateError> {
    migrate_with(home, vault, dry_run, &|_, _| Ok(()))
}

/// [`migrate`], calling `fail` at each step (for crash tests).
pub fn migrate_with(
    home: &NexusHome,
    vault: &dyn Vault,
    dry_run: bool,
    fail: FailPoint<'_>,
) -> Result<Vec<Moved>, MigrateError> {
    let mut run = Run {
        vault,
        dry_run,
        fail,
        out: Vec::new(),
    };
    run.plugins(&home.join("plugins.json"))?;
    run.whole_file(&home.join("mcp_gateway_token"), "gateway/mcp_token", true)?;
    run.whole_file(
        &home.join("trusted_keys.json"),
        "signing/trusted_keys",
        false,
    )?;
    run.config(home)?;
    Ok(run.out)
}
