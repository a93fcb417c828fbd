//! Choosing the vault backend.
//!
//! The order, first match wins:
//!
//! 1. `NEXUS_VAULT_BACKEND`, else `vault.backend` in `config.toml`:
//!    `keyring`, `keyutils`, `file`, `file-keyring` (the file, with a random
//!    key kept in the OS keyring) or `memory` (nothing persists).
//! 2. `NEXUS_VAULT_PASSPHRASE` is set → `file`.
//! 3. The OS keyring answers a probe (Secret Service on Linux, the Keychain
//!    on macOS, Credential Manager on Windows) → `keyring`.
//! 4. A vault file already exists → `file` (its passphrase is asked for).
//! 5. A terminal can ask for a passphrase → `file` (a new one).
//! 6. Otherwise: an error that says how to choose. Nexus never falls back to
//!    plaintext, and never silently to memory.

use std::sync::Arc;

use serde::Serialize;
use zeroize::Zeroizing;

use nexus_core::{MemoryVault, NexusHome, Secret, Vault, VaultError};

use crate::file::{FileVault, KeySource};
use crate::keyring::{KeyringBackend, KeyringVault};

/// The vault file under `NEXUS_HOME`.
pub const FILE_NAME: &str = "vault.enc";

/// Where the file vault's random key is kept, in the OS keyring.
pub const FILE_KEY_NAME: &str = "vault/file-key";

/// What `nexus vault status` shows.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VaultStatus {
    /// The backend in use.
    pub backend: String,
    /// Why it was chosen.
    pub reason: String,
    /// The file, for file vaults.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Whether secrets outlive the process (and a reboot).
    pub persistent: bool,
}

/// Whether a passphrase is for a new vault (confirm it) or an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassphraseFor {
    /// Creating the vault.
    New,
    /// Unlocking it.
    Existing,
}

/// Inputs to the choice.
pub struct Options<'a> {
    /// `NEXUS_HOME`.
    pub home: &'a NexusHome,
    /// `vault.backend` from config.
    pub configured: Option<String>,
    /// Environment lookups (`NEXUS_VAULT_BACKEND`, `NEXUS_VAULT_PASSPHRASE`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Asks the user for a passphrase, when a terminal is attached.
    pub prompt: Option<&'a dyn Fn(PassphraseFor) -> Option<Secret>>,
    /// Tells the user something while prompting (a wrong passphrase).
    pub tell: Option<&'a dyn Fn(&str)>,
}

/// `vault.backend` from config.toml, if set: what every opener of the
/// vault (the CLI, the SDK, nexusd) passes as [`Options::configured`].
pub fn configured_backend(config: &nexus_core::Config) -> Option<String> {
    config
        .other
        .get("vault")
        .and_then(|v| v.get("backend"))
        .and_then(|b| b.as_str())
        .map(str::to_string)
}

/// The keyring service name for a home: one `NEXUS_HOME`, one namespace.
pub fn service_for(home: &NexusHome) -> String {
    let root = home.root();
    let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    format!("nexus:{}", abs.display())
}

fn keyring(home: &NexusHome, backend: KeyringBackend) -> KeyringVault {
    let _ = home.ensure();
    KeyringVault::new(backend, service_for(home), home.root())
}

fn status(backend: &str, reason: String, path: Option<String>, persistent: bool) -> VaultStatus {
    VaultStatus {
        backend: backend.to_string(),
        reason,
        path,
        persistent,
    }
}

fn passphrase(opts: &Options<'_>, exists: bool) -> Result<Secret, VaultError> {
    if let Some(p) = (opts.env)("NEXUS_VAULT_PASSPHRASE") {
        return Ok(Secret::new(p));
    }
    let ask = opts.prompt.ok_or_else(|| VaultError::Locked(
        "the vault needs a passphrase: set NEXUS_VAULT_PASSPHRASE, or run in a terminal to type it".into(),
    ))?;
    ask(if exists {
        PassphraseFor::Existing
    } else {
        PassphraseFor::New
    })
    .ok_or_else(|| VaultError::Locked("no passphrase was given".into()))
}

/// An open vault and how it was chosen.
pub type Opened = (Arc<dyn Vault>, VaultStatus);

/// How many times a passphrase typed on a terminal may be wrong.
const ATTEMPTS: usize = 3;

fn open_file(
    opts: &Options<'_>,
    reason: String,
) -> Result<(Arc<dyn Vault>, VaultStatus), VaultError> {
    let path = opts.home.join(FILE_NAME);
    // A passphrase from the environment gets one try; one typed on a
    // terminal is asked for again when it is wrong.
    let typed = (opts.env)("NEXUS_VAULT_PASSPHRASE").is_none();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let p = passphrase(opts, path.exists())?;
        match FileVault::open(&path, KeySource::Passphrase(p)) {
            Ok(v) => {
                let st = status(v.backend(), reason, Some(path.display().to_string()), true);
                return Ok((Arc::new(v), st));
            }
            Err(VaultError::Locked(why))
                if typed && attempt < ATTEMPTS && why.starts_with("wrong passphrase") =>
            {
                if let Some(tell) = opts.tell {
                    tell(&format!(
                        "wrong passphrase; try again ({} of {ATTEMPTS})",
                        attempt + 1
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn open_file_keyring(
    opts: &Options<'_>,
    reason: String,
) -> Result<(Arc<dyn Vault>, VaultStatus), VaultError> {
    let kr = keyring(opts.home, KeyringBackend::platform_default());
    kr.probe()?;
    let path = opts.home.join(FILE_NAME);
    let key = match kr.get(FILE_KEY_NAME)? {
        Some(hex) => decode_key(hex.expose())?,
        None => {
            if path.exists() {
                return Err(VaultError::Locked(format!(
                    "{} exists but its key is not in the OS keyring; set NEXUS_VAULT_BACKEND=file if it uses a passphrase",
                    path.display()
                )));
            }
            let mut k = Zeroizing::new([0u8; 32]);
            getrandom::getrandom(&mut *k).map_err(|e| VaultError::Backend {
                backend: "file".into(),
                why: e.to_string(),
            })?;
            kr.set(FILE_KEY_NAME, &Secret::new(encode_key(&k)))?;
            k
        }
    };
    let v = FileVault::open(&path, KeySource::Raw(key))?;
    let st = status(v.backend(), reason, Some(path.display().to_string()), true);
    Ok((Arc::new(v), st))
}

fn encode_key(k: &[u8; 32]) -> String {
    k.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_key(s: &str) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let mut k = Zeroizing::new([0u8; 32]);
    if s.len() != 64 {
        return Err(VaultError::Corrupt(
            "the file key in the OS keyring is malformed".into(),
        ));
    }
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| {
            VaultError::Corrupt("the file key in the OS keyring is malformed".into())
        })?;
    }
    Ok(k)
}

/// Opens the vault the documented order picks; an error when there is none.
pub fn open(opts: &Options<'_>) -> Result<(Arc<dyn Vault>, VaultStatus), VaultError> {
    open_if_set_up(opts)?.ok_or_else(|| VaultError::Unavailable {
        backend: "none".into(),
        why: not_set_up(opts),
    })
}

/// Why there is no vault here, and how to get one, in a line or two.
fn not_set_up(opts: &Options<'_>) -> String {
    let why_not = keyring(opts.home, KeyringBackend::platform_default())
        .probe()
        .err()
        .map(|e| short_reason(&e))
        .unwrap_or_default();
    format!(
        "no vault is set up here: no OS keyring ({why_not}) and no vault file. \
         Set NEXUS_VAULT_PASSPHRASE for an encrypted file, or NEXUS_VAULT_BACKEND=keyutils (Linux, kept until reboot)"
    )
}

/// A backend failure in a few words: D-Bus explains itself at length.
fn short_reason(e: &VaultError) -> String {
    let text = e.to_string();
    if text.contains("DBUS_SESSION_BUS_ADDRESS") || text.contains("DBus error") {
        return "no D-Bus session bus for the Secret Service".into();
    }
    text.chars().take(120).collect()
}

/// Opens the vault the documented order picks, or `None` when nothing is
/// set up (no keyring, no vault file, nothing configured, and no way to
/// ask for a passphrase): then keys come from the environment only.
pub fn open_if_set_up(opts: &Options<'_>) -> Result<Option<Opened>, VaultError> {
    let explicit = (opts.env)("NEXUS_VAULT_BACKEND")
        .map(|b| (b, "NEXUS_VAULT_BACKEND"))
        .or_else(|| {
            opts.configured
                .clone()
                .map(|b| (b, "vault.backend in config.toml"))
        });
    if let Some((b, from)) = explicit {
        let reason = format!("chosen by {from}");
        return Ok(Some(match b.as_str() {
            "keyring" => {
                let kb = KeyringBackend::platform_default();
                let v = keyring(opts.home, kb);
                v.probe()?;
                let st = status(kb.as_str(), reason, None, true);
                (Arc::new(v), st)
            }
            "keyutils" => {
                let v = keyring(opts.home, KeyringBackend::Keyutils);
                v.probe()?;
                let st = status(
                    KeyringBackend::Keyutils.as_str(),
                    format!("{reason}; kernel keyrings are cleared on reboot"),
                    None,
                    false,
                );
                (Arc::new(v), st)
            }
            "file" => open_file(opts, reason)?,
            "file-keyring" => open_file_keyring(opts, reason)?,
            "memory" => (
                Arc::new(MemoryVault::new()) as Arc<dyn Vault>,
                status("memory", format!("{reason}; nothing is kept after this process"), None, false),
            ),
            other => return Err(VaultError::Unavailable {
                backend: other.to_string(),
                why: format!("unknown vault backend from {from}; use keyring, keyutils, file, file-keyring or memory"),
            }),
        }));
    }
    if (opts.env)("NEXUS_VAULT_PASSPHRASE").is_some() {
        return open_file(opts, "NEXUS_VAULT_PASSPHRASE is set".into()).map(Some);
    }
    let kb = KeyringBackend::platform_default();
    let kr = keyring(opts.home, kb);
    let probe = kr.probe();
    if probe.is_ok() {
        let st = status(
            kb.as_str(),
            "the OS keyring is available".into(),
            None,
            true,
        );
        return Ok(Some((Arc::new(kr), st)));
    }
    let why_not = probe.err().map(|e| short_reason(&e)).unwrap_or_default();
    let path = opts.home.join(FILE_NAME);
    if path.exists() {
        return open_file(
            opts,
            format!("a vault file exists (OS keyring unavailable: {why_not})"),
        )
        .map(Some);
    }
    if opts.prompt.is_some() {
        return open_file(
            opts,
            format!("OS keyring unavailable ({why_not}); using a passphrase-protected file"),
        )
        .map(Some);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn passphrase_env_picks_the_file_vault() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path());
        let e = env(&[
            ("NEXUS_VAULT_PASSPHRASE", "pw"),
            ("NEXUS_VAULT_BACKEND", "file"),
        ]);
        let (v, st) = open(&Options {
            home: &home,
            configured: None,
            env: &e,
            prompt: None,
            tell: None,
        })
        .unwrap();
        assert_eq!(st.backend, "file (passphrase)");
        assert!(st.reason.contains("NEXUS_VAULT_BACKEND"));
        v.set("a/b", &Secret::new("c")).unwrap();
        assert!(d.path().join(FILE_NAME).exists());
    }

    #[test]
    fn memory_only_when_asked_and_unknown_backends_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path());
        let e = env(&[]);
        let (_, st) = open(&Options {
            home: &home,
            configured: Some("memory".into()),
            env: &e,
            prompt: None,
            tell: None,
        })
        .unwrap();
        assert!(!st.persistent);
        assert!(open(&Options {
            home: &home,
            configured: Some("plaintext".into()),
            env: &e,
            prompt: None,
            tell: None,
        })
        .is_err());
    }

    /// A passphrase typed wrong is asked for again (three tries in all);
    /// one from the environment gets a single try.
    #[test]
    fn a_wrong_typed_passphrase_is_asked_again() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path());
        let set = env(&[
            ("NEXUS_VAULT_BACKEND", "file"),
            ("NEXUS_VAULT_PASSPHRASE", "right"),
        ]);
        let fast = Options {
            home: &home,
            configured: None,
            env: &set,
            prompt: None,
            tell: None,
        };
        open(&fast)
            .unwrap()
            .0
            .set("a/b", &Secret::new("c"))
            .unwrap();

        let typed = std::cell::RefCell::new(vec!["right", "wrong"]);
        let told = std::cell::RefCell::new(Vec::<String>::new());
        let ask = |_: PassphraseFor| typed.borrow_mut().pop().map(Secret::new);
        let tell = |m: &str| told.borrow_mut().push(m.to_string());
        let file_only = env(&[("NEXUS_VAULT_BACKEND", "file")]);
        let opts = Options {
            home: &home,
            configured: None,
            env: &file_only,
            prompt: Some(&ask),
            tell: Some(&tell),
        };
        let (v, _) = open(&opts).unwrap();
        assert_eq!(v.get("a/b").unwrap().unwrap().expose(), "c");
        assert_eq!(told.borrow().len(), 1, "{:?}", told.borrow());
        assert!(told.borrow()[0].contains("wrong passphrase"));

        // Three wrong: locked.
        *typed.borrow_mut() = vec!["right", "z", "y", "x"];
        assert!(matches!(open(&opts), Err(VaultError::Locked(_))));
        assert_eq!(typed.borrow().len(), 1, "asked more than three times");

        let wrong_env = env(&[
            ("NEXUS_VAULT_BACKEND", "file"),
            ("NEXUS_VAULT_PASSPHRASE", "no"),
        ]);
        *typed.borrow_mut() = vec!["right"];
        let from_env = Options {
            env: &wrong_env,
            ..opts
        };
        assert!(matches!(open(&from_env), Err(VaultError::Locked(_))));
    }

    #[test]
    fn keys_round_trip_as_hex() {
        let k = [0xabu8; 32];
        assert_eq!(*decode_key(&encode_key(&k)).unwrap(), k);
        assert!(decode_key("zz").is_err());
    }
}
