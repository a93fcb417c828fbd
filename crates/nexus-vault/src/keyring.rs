//! `KeyringVault`: secrets in the OS keyring, through the `keyring` crate
//! with real backends only (Secret Service or kernel keyutils on Linux,
//! the Keychain on macOS, Credential Manager on Windows).
//!
//! Entries are created from an explicitly chosen backend, never through
//! the crate's default store, so a build can never fall back to its
//! in-memory mock. Values longer than a backend's cap are split over
//! several entries. Keyrings cannot enumerate, so an index entry keeps the
//! names (never the values) for `list`.

use std::path::{Path, PathBuf};

use nexus_core::vault::validate_name;
use nexus_core::{Secret, Vault, VaultError};

/// A keyring backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyringBackend {
    /// The freedesktop Secret Service over D-Bus (GNOME Keyring, KWallet).
    SecretService,
    /// The Linux kernel's keyutils keyrings (not kept across reboots).
    Keyutils,
    /// The platform's own store (macOS Keychain, Windows Credential Manager).
    Native,
}

impl KeyringBackend {
    /// A name for `nexus vault status`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyringBackend::SecretService => "keyring (Secret Service)",
            KeyringBackend::Keyutils => "keyring (kernel keyutils)",
            KeyringBackend::Native if cfg!(target_os = "macos") => "keyring (macOS Keychain)",
            KeyringBackend::Native => "keyring (Windows Credential Manager)",
        }
    }

    /// The default persistent backend for this platform.
    pub fn platform_default() -> KeyringBackend {
        if cfg!(target_os = "linux") {
            KeyringBackend::SecretService
        } else {
            KeyringBackend::Native
        }
    }

    /// The longest value one entry may hold, in bytes.
    fn chunk_len(self) -> usize {
        match self {
            // Credential Manager caps a blob at 2,560 bytes of UTF-16.
            KeyringBackend::Native if cfg!(windows) => 1000,
            // A keyutils "user" key holds at most 32,767 bytes.
            KeyringBackend::Keyutils => 16 * 1024,
            _ => 64 * 1024,
        }
    }
}

const INDEX_USER: &str = "__nexus_index__";
const PROBE_USER: &str = "__nexus_probe__";

/// A vault in the OS keyring.
#[derive(Debug)]
pub struct KeyringVault {
    backend: KeyringBackend,
    service: String,
    lock_path: PathBuf,
}

fn map_err(backend: KeyringBackend, e: keyring::Error) -> VaultError {
    use keyring::Error as K;
    match e {
        K::NoStorageAccess(inner) => VaultError::Unavailable {
            backend: backend.as_str().into(),
            why: inner.to_string(),
        },
        // Never echo the bytes: they are the secret.
        K::BadEncoding(_) => {
            VaultError::Corrupt(format!("{}: an entry is not valid UTF-8", backend.as_str()))
        }
        other => VaultError::Backend {
            backend: backend.as_str().into(),
            why: other.to_string(),
        },
    }
}

impl KeyringVault {
    /// A vault in `backend` under `service`; `lock_dir` holds the lock
    /// that serializes index updates between processes.
    pub fn new(backend: KeyringBackend, service: impl Into<String>, lock_dir: &Path) -> Self {
        KeyringVault {
            backend,
            service: service.into(),
            lock_path: lock_dir.join("keyring-index.lock"),
        }
    }

    /// Whether the backend works here: writes, reads and deletes a probe.
    pub fn probe(&self) -> Result<(), VaultError> {
        self.write(PROBE_USER, "probe")?;
        let back = self.read(PROBE_USER);
        // Removed whatever the read said: a probe never stays behind.
        let removed = self.remove(PROBE_USER);
        if back?.as_deref() != Some("probe") {
            return Err(VaultError::Unavailable {
                backend: self.backend.as_str().into(),
                why: "a probe value did not read back".into(),
            });
        }
        removed.map(|_| ())
    }

    #[cfg(target_os = "linux")]
    fn kernel(&self) -> bool {
        matches!(
            self.backend,
            KeyringBackend::Keyutils | KeyringBackend::Native
        )
    }

    /// The kernel key's description for entry `user`.
    #[cfg(target_os = "linux")]
    fn description(&self, user: &str) -> String {
        format!("nexus:{}:{user}", self.service)
    }

    #[cfg(target_os = "linux")]
    fn kernel_err(&self, why: String) -> VaultError {
        VaultError::Backend {
            backend: self.backend.as_str().into(),
            why,
        }
    }

    fn entry(&self, user: &str) -> Result<keyring::Entry, VaultError> {
        let b = self.backend;
        #[cfg(target_os = "linux")]
        {
            let cred =
                keyring::secret_service::SsCredential::new_with_target(None, &self.service, user)
                    .map_err(|e| map_err(b, e))?;
            Ok(keyring::Entry::new_with_credential(Box::new(cred)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            // Only the platform's native store is compiled in, so the
            // default store is that store, not the mock.
            keyring::Entry::new(&self.service, user).map_err(|e| map_err(b, e))
        }
    }

    fn read(&self, user: &str) -> Result<Option<String>, VaultError> {
        #[cfg(target_os = "linux")]
        if self.kernel() {
            return match crate::keyutils::read(&self.description(user)) {
                Ok(None) => Ok(None),
                Ok(Some(bytes)) => String::from_utf8(bytes).map(Some).map_err(|_| {
                    VaultError::Corrupt(format!(
                        "{}: an entry is not valid UTF-8",
                        self.backend.as_str()
                    ))
                }),
                Err(why) => Err(self.kernel_err(why)),
            };
        }
        match self.entry(user)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_err(self.backend, e)),
        }
    }

    fn write(&self, user: &str, value: &str) -> Result<(), VaultError> {
        #[cfg(target_os = "linux")]
        if self.kernel() {
            return crate::keyutils::write(&self.description(user), value.as_bytes())
                .map_err(|why| self.kernel_err(why));
        }
        self.entry(user)?
            .set_password(value)
            .map_err(|e| map_err(self.backend, e))
    }

    fn remove(&self, user: &str) -> Result<bool, VaultError> {
        #[cfg(target_os = "linux")]
        if self.kernel() {
            return crate::keyutils::remove(&self.description(user))
                .map_err(|why| self.kernel_err(why));
        }
        match self.entry(user)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map_err(self.backend, e)),
        }
    }

    fn chunks_of(&self, name: &str) -> Result<usize, VaultError> {
        Ok(match self.read(name)? {
            Some(v) => v
                .strip_prefix("1c:")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            None => 0,
        })
    }

    fn with_index<T>(&self, f: impl FnOnce(&mut Vec<String>) -> T) -> Result<T, VaultError> {
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| VaultError::Backend {
                backend: self.backend.as_str().into(),
                why: format!("cannot open {}: {e}", self.lock_path.display()),
            })?;
        lock.lock().map_err(|e| VaultError::Backend {
            backend: self.backend.as_str().into(),
            why: format!("cannot lock {}: {e}", self.lock_path.display()),
        })?;
        let mut names: Vec<String> = self
            .read(INDEX_USER)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let out = f(&mut names);
        names.sort();
        names.dedup();
        let json = serde_json::to_string(&names).map_err(|e| VaultError::Backend {
            backend: self.backend.as_str().into(),
            why: e.to_string(),
        })?;
        self.write(INDEX_USER, &json)?;
        Ok(out)
    }
}

fn split(value: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out.push(rest);
    out
}

impl Vault for KeyringVault {
    fn backend(&self) -> &str {
        self.backend.as_str()
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        validate_name(name)?;
        let Some(head) = self.read(name)? else {
            return Ok(None);
        };
        if let Some(v) = head.strip_prefix("1:") {
            return Ok(Some(Secret::new(v)));
        }
        let n: usize = head
            .strip_prefix("1c:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                VaultError::Corrupt(format!("keyring entry `{name}` is not in Nexus's format"))
            })?;
        let mut value = String::new();
        for i in 1..=n {
            let part = self.read(&format!("{name}#{i}"))?.ok_or_else(|| {
                VaultError::Corrupt(format!("keyring entry `{name}` is missing part {i} of {n}"))
            })?;
            value.push_str(&part);
        }
        Ok(Some(Secret::new(value)))
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), VaultError> {
        validate_name(name)?;
        let old_parts = self.chunks_of(name)?;
        let parts = split(value.expose(), self.backend.chunk_len());
        if parts.len() == 1 {
            self.write(name, &format!("1:{}", parts[0]))?;
        } else {
            // Parts first, head last: a reader never sees a head whose
            // parts are missing.
            for (i, p) in parts.iter().enumerate() {
                self.write(&format!("{name}#{}", i + 1), p)?;
            }
            self.write(name, &format!("1c:{}", parts.len()))?;
        }
        let now = if parts.len() == 1 { 0 } else { parts.len() };
        for i in now + 1..=old_parts {
            self.remove(&format!("{name}#{i}"))?;
        }
        self.with_index(|names| names.push(name.to_string()))
    }

    fn delete(&self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        let parts = self.chunks_of(name)?;
        let existed = self.remove(name)?;
        for i in 1..=parts {
            self.remove(&format!("{name}#{i}"))?;
        }
        self.with_index(|names| names.retain(|n| n != name))?;
        Ok(existed)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, VaultError> {
        let names: Vec<String> = self
            .read(INDEX_USER)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        Ok(names
            .into_iter()
            .filter(|n| n.starts_with(prefix))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_char_boundaries() {
        let v = "é".repeat(10);
        let parts = split(&v, 5);
        assert!(parts.iter().all(|p| p.len() <= 5));
        assert_eq!(parts.concat(), v);
        assert_eq!(split("short", 100), ["short"]);
    }

    /// Outside any `keyctl session` (as this test runs under nextest), the
    /// kernel backend writes, reads back and deletes, and its probe leaves
    /// nothing behind.
    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_keyring_works_without_a_session_and_probes_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let service = format!("nexus-unit-{}", std::process::id());
        let v = KeyringVault::new(KeyringBackend::Keyutils, service, d.path());
        match v.probe() {
            Err(VaultError::Backend { why, .. })
                if why.contains("no keyrings") || why.contains("refused") =>
            {
                println!("SKIP: this kernel or sandbox offers no keyrings ({why})");
                return;
            }
            other => other.unwrap(),
        }
        assert_eq!(
            crate::keyutils::read(&v.description(PROBE_USER)).unwrap(),
            None
        );
        v.set("unit/key", &Secret::new("value")).unwrap();
        // A second handle (another process would be the same) reads it.
        let again = KeyringVault::new(KeyringBackend::Keyutils, v.service.clone(), d.path());
        assert_eq!(again.get("unit/key").unwrap().unwrap().expose(), "value");
        assert!(again.delete("unit/key").unwrap());
        assert_eq!(v.get("unit/key").unwrap(), None);
    }
}
