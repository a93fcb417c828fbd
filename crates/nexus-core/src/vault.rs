//! The `Vault` trait: named secrets, and its in-memory implementation.
//!
//! Names are namespaced, `namespace/name[/more]`, using `[A-Za-z0-9._:@-]` in
//! each segment: `provider/openai/api_key`, `oauth/google`, `mesh/identity`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroize;

/// A secret string. Its `Debug` and `Display` never show the value, and it is
/// wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value. Call this only where the value is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

/// A vault failure. Never carries a secret value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// The name breaks the naming rules.
    #[error("invalid secret name `{name}`: {why}; names look like `namespace/name`")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The vault is locked or its key is wrong.
    #[error("the vault is locked: {0}")]
    Locked(String),
    /// The vault's storage is damaged or was tampered with.
    #[error("the vault is damaged or was tampered with: {0}")]
    Corrupt(String),
    /// The backend is not available on this machine.
    #[error("vault backend `{backend}` is unavailable: {why}")]
    Unavailable {
        /// Which backend.
        backend: String,
        /// Why.
        why: String,
    },
    /// The backend failed.
    #[error("vault backend `{backend}` failed: {why}")]
    Backend {
        /// Which backend.
        backend: String,
        /// What failed.
        why: String,
    },
}

/// Checks a secret name against the naming rules.
pub fn validate_name(name: &str) -> Result<(), VaultError> {
    let bad = |why| {
        Err(VaultError::InvalidName {
            name: name.chars().take(64).collect(),
            why,
        })
    };
    if name.is_empty() || name.len() > 256 {
        return bad("must be 1 to 256 characters");
    }
    let segments: Vec<&str> = name.split('/').collect();
    if segments.len() < 2 {
        return bad("needs a namespace");
    }
    for s in segments {
        if s.is_empty() || s == "." || s == ".." {
            return bad("has an empty, `.` or `..` segment");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '@'))
        {
            return bad("may use only letters, digits and . _ - : @");
        }
    }
    Ok(())
}

/// A store of named secrets.
///
/// Implementations: `MemoryVault` here; the OS keyring and an encrypted file
/// in `nexus-vault`; a host-language vault through the bindings. All run the
/// shared [conformance suite](crate::conformance::vault).
pub trait Vault: Send + Sync {
    /// The backend's name, for `nexus vault status`.
    fn backend(&self) -> &str;

    /// Reads a secret.
    fn get(&self, name: &str) -> Result<Option<Secret>, VaultError>;

    /// Writes a secret, replacing any old value.
    fn set(&self, name: &str, value: &Secret) -> Result<(), VaultError>;

    /// Removes a secret; says whether there was one.
    fn delete(&self, name: &str) -> Result<bool, VaultError>;

    /// The names (never the values) that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, VaultError>;
}

/// A vault that lives in memory only.
#[derive(Default)]
pub struct MemoryVault {
    map: Mutex<BTreeMap<String, Secret>>,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault").finish_non_exhaustive()
    }
}

impl MemoryVault {
    /// An empty vault.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Secret>> {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Vault for MemoryVault {
    fn backend(&self) -> &str {
        "memory"
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        validate_name(name)?;
        Ok(self.map().get(name).cloned())
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), VaultError> {
        validate_name(name)?;
        self.map().insert(name.to_string(), value.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        Ok(self.map().remove(name).is_some())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, VaultError> {
        Ok(self
            .map()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::vault_conformance_tests!(Box::new(MemoryVault::new()) as Box<dyn Vault>);

    #[test]
    fn panics_never_show_the_value() {
        let s = Secret::new("sk-live-panic-value");
        let caught = std::panic::catch_unwind(|| panic!("while using {s:?} / {s}"));
        let msg = caught.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("[REDACTED]") && !msg.contains("sk-live"),
            "{msg}"
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-live-123");
        assert!(!format!("{s:?} {s}").contains("sk-live"));
    }
}
