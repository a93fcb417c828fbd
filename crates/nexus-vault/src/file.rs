//! `FileVault`: every secret in one encrypted file.
//!
//! # Format (version 1)
//!
//! ```text
//! offset  size  field
//!      0     8  magic "NXVAULT1"
//!      8     1  key source: 1 = Argon2id over a passphrase, 2 = random key held in the OS keyring
//!      9     4  Argon2id memory cost, KiB (u32 LE; 0 for source 2)
//!     13     4  Argon2id iterations (u32 LE; 0 for source 2)
//!     17     4  Argon2id parallelism (u32 LE; 0 for source 2)
//!     21    16  salt (zeros for source 2)
//!     37    16  key check: the XChaCha20-Poly1305 tag of an empty message under the
//!               key, nonce 0 and AAD "nexus-vault-key-check"
//!     53    24  nonce, fresh and random on every write
//!     77     …  XChaCha20-Poly1305 ciphertext of {"entries": {name: value}}, with
//!               bytes 0..77 as associated data
//! ```
//!
//! The whole header is authenticated, so a changed parameter is detected
//! like a changed byte of ciphertext. The key check tells a wrong
//! passphrase apart from a damaged or tampered file. Writes hold a lock,
//! re-read the file, and replace it atomically (mode 0600); a failure
//! changes nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use nexus_core::vault::validate_name;
use nexus_core::{atomic_write, FileMode, Secret, Vault, VaultError};

const MAGIC: &[u8; 8] = b"NXVAULT1";
const HEADER_LEN: usize = 77;
const CHECK_AAD: &[u8] = b"nexus-vault-key-check";

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// The parameters new vaults use: 64 MiB, 3 passes, 1 lane (above
    /// OWASP's Argon2id minimum of 19 MiB × 2 passes).
    pub const DEFAULT: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Cheap parameters for tests only.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        m_cost_kib: 256,
        t_cost: 1,
        p_cost: 1,
    };

    /// The most memory a vault file may ask for (KiB): 256 MiB, four times
    /// what Nexus writes.
    pub const MAX_M_COST_KIB: u32 = 256 * 1024;
    /// The most passes a vault file may ask for.
    pub const MAX_T_COST: u32 = 10;
    /// The most lanes a vault file may ask for.
    pub const MAX_P_COST: u32 = 4;

    /// Refuses costs outside those bounds. The header is read before
    /// anything in the file is authenticated (the key it derives is what
    /// authenticates it), so a damaged or crafted header must not make the
    /// derivation take gigabytes or hours.
    pub fn check(&self) -> Result<(), VaultError> {
        if self.p_cost == 0
            || self.p_cost > Self::MAX_P_COST
            || self.m_cost_kib < 8 * self.p_cost
            || self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost == 0
            || self.t_cost > Self::MAX_T_COST
        {
            return Err(VaultError::Corrupt(format!(
                "the vault file asks for key-derivation costs out of bounds ({} KiB, {} passes, {} lanes; at most {} KiB, {} passes, {} lanes): the file is damaged or not from Nexus; restore it from a backup",
                self.m_cost_kib,
                self.t_cost,
                self.p_cost,
                Self::MAX_M_COST_KIB,
                Self::MAX_T_COST,
                Self::MAX_P_COST
            )));
        }
        Ok(())
    }
}

/// Where the file's key comes from.
pub enum KeySource {
    /// Argon2id over a passphrase.
    Passphrase(Secret),
    /// A random 32-byte key (kept in the OS keyring by the caller).
    Raw(Zeroizing<[u8; 32]>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeySource::Passphrase(_) => "KeySource::Passphrase([REDACTED])",
            KeySource::Raw(_) => "KeySource::Raw([REDACTED])",
        })
    }
}

#[derive(Clone, Copy)]
struct Header {
    source: u8,
    kdf: KdfParams,
    salt: [u8; 16],
    check: [u8; 16],
    nonce: [u8; 24],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..8].copy_from_slice(MAGIC);
        h[8] = self.source;
        h[9..13].copy_from_slice(&self.kdf.m_cost_kib.to_le_bytes());
        h[13..17].copy_from_slice(&self.kdf.t_cost.to_le_bytes());
        h[17..21].copy_from_slice(&self.kdf.p_cost.to_le_bytes());
        h[21..37].copy_from_slice(&self.salt);
        h[37..53].copy_from_slice(&self.check);
        h[53..77].copy_from_slice(&self.nonce);
        h
    }

    fn decode(b: &[u8]) -> Result<Header, VaultError> {
        if b.len() < HEADER_LEN + 16 {
            return Err(VaultError::Corrupt("the vault file is truncated".into()));
        }
        if &b[..8] != MAGIC {
            return Err(VaultError::Corrupt(
                "not a Nexus vault file (or a newer format than this build reads)".into(),
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&b[21..37]);
        let mut check = [0u8; 16];
        check.copy_from_slice(&b[37..53]);
        let mut nonce = [0u8; 24];
        nonce.copy_from_slice(&b[53..77]);
        Ok(Header {
            source: b[8],
            kdf: KdfParams {
                m_cost_kib: u32_at(9),
                t_cost: u32_at(13),
                p_cost: u32_at(17),
            },
            salt,
            check,
            nonce,
        })
    }
}

#[derive(Serialize, Deserialize, Default)]
struct Contents {
    entries: BTreeMap<String, String>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        for v in self.entries.values_mut() {
            v.zeroize();
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).map_err(|e| VaultError::Backend {
        backend: "file".into(),
        why: format!("no randomness from the OS: {e}"),
    })?;
    Ok(b)
}

fn derive(
    source: &KeySource,
    kdf: KdfParams,
    salt: &[u8; 16],
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    match source {
        KeySource::Raw(k) => Ok(k.clone()),
        KeySource::Passphrase(p) => {
            kdf.check()?;
            let params = argon2::Params::new(kdf.m_cost_kib, kdf.t_cost, kdf.p_cost, Some(32))
                .map_err(|e| {
                    VaultError::Corrupt(format!(
                        "invalid key-derivation parameters in the header: {e}"
                    ))
                })?;
            let a =
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
            let mut key = Zeroizing::new([0u8; 32]);
            a.hash_password_into(p.expose().as_bytes(), salt, &mut *key)
                .map_err(|e| VaultError::Backend {
                    backend: "file".into(),
                    why: format!("key derivation failed: {e}"),
                })?;
            Ok(key)
        }
    }
}

fn key_check(key: &[u8; 32]) -> Result<[u8; 16], VaultError> {
    let c = XChaCha20Poly1305::new(key.into());
    let tag = c
        .encrypt(
            XNonce::from_slice(&[0u8; 24]),
            Payload {
                msg: b"",
                aad: CHECK_AAD,
            },
        )
        .map_err(|_| VaultError::Corrupt("cannot compute the key check".into()))?;
    let mut out = [0u8; 16];
    out.copy_from_slice(&tag);
    Ok(out)
}

/// The unlocked state: the key and the header it belongs to.
struct Unlocked {
    key: Zeroizing<[u8; 32]>,
    header: Header,
    contents: Contents,
}

/// An encrypted vault file.
pub struct FileVault {
    path: PathBuf,
    lock_path: PathBuf,
    source: KeySource,
    kdf: KdfParams,
    state: Mutex<Option<Unlocked>>,
    /// What the file looked like when last read: another process's write
    /// replaces it (a new inode), so a long-lived reader (nexusd) re-reads
    /// when this changes and sees what the CLI stored meanwhile.
    seen: Mutex<Option<Stamp>>,
}

/// A file's identity and version, as `stat` tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<std::time::SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.modified().ok(),
    })
}

impl std::fmt::Debug for FileVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileVault")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileVault {
    /// Opens (or prepares to create) the vault at `path`, and unlocks it
    /// now if it exists: a wrong passphrase fails here.
    pub fn open(path: &Path, source: KeySource) -> Result<Self, VaultError> {
        Self::open_with(path, source, KdfParams::DEFAULT)
    }

    /// As [`open`](Self::open), choosing the KDF cost for a new file.
    pub fn open_with(path: &Path, source: KeySource, kdf: KdfParams) -> Result<Self, VaultError> {
        let v = FileVault {
            path: path.to_path_buf(),
            lock_path: path.with_extension("lock"),
            source,
            kdf,
            state: Mutex::new(None),
            seen: Mutex::new(None),
        };
        // `load` takes the state lock itself: take the result, then store it.
        let loaded = v.load()?;
        *v.state() = loaded;
        Ok(v)
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Option<Unlocked>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn io(&self, what: &str, e: std::io::Error) -> VaultError {
        VaultError::Backend {
            backend: "file".into(),
            why: format!("{what} {}: {e}", self.path.display()),
        }
    }

    /// Reads and decrypts the file; `None` if it does not exist yet. The key
    /// is reused when the header's KDF inputs have not changed.
    fn load(&self) -> Result<Option<Unlocked>, VaultError> {
        // Stamped before reading: a write in between makes the next read
        // look again, never miss it.
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stamp(&self.path);
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot read", e)),
        };
        let header = Header::decode(&bytes)?;
        let expected = match self.source {
            KeySource::Passphrase(_) => 1,
            KeySource::Raw(_) => 2,
        };
        if header.source != expected {
            return Err(VaultError::Locked(format!(
                "{} was created with {}, not with {}",
                self.path.display(),
                if header.source == 1 {
                    "a passphrase"
                } else {
                    "a key held in the OS keyring"
                },
                if expected == 1 {
                    "a passphrase"
                } else {
                    "a key from the OS keyring"
                },
            )));
        }
        let reuse = self
            .state()
            .as_ref()
            .filter(|u| u.header.salt == header.salt && u.header.kdf == header.kdf)
            .map(|u| u.key.clone());
        let key = match reuse {
            Some(k) => k,
            None => derive(&self.source, header.kdf, &header.salt)?,
        };
        if key_check(&key)? != header.check {
            return Err(VaultError::Locked(match self.source {
                KeySource::Passphrase(_) => format!(
                    "wrong passphrase for {}; check NEXUS_VAULT_PASSPHRASE or retype it",
                    self.path.display()
                ),
                KeySource::Raw(_) => format!(
                    "the key in the OS keyring does not open {}",
                    self.path.display()
                ),
            }));
        }
        let aad = header.encode();
        let plain = Zeroizing::new(
            XChaCha20Poly1305::new((&*key).into())
                .decrypt(
                    XNonce::from_slice(&header.nonce),
                    Payload {
                        msg: &bytes[HEADER_LEN..],
                        aad: &aad,
                    },
                )
                .map_err(|_| {
                    VaultError::Corrupt(format!(
                        "{} failed authentication: it was damaged or tampered with (the key is right). \
                         Restore it from a backup; nothing was changed",
                        self.path.display()
                    ))
                })?,
        );
        let contents: Contents = serde_json::from_slice(&plain)
            .map_err(|e| VaultError::Corrupt(format!("decrypted contents are not valid: {e}")))?;
        Ok(Some(Unlocked {
            key,
            header,
            contents,
        }))
    }

    /// Encrypts and atomically writes `contents` under `u`'s key with a
    /// fresh nonce.
    fn store(
        &self,
        key: &[u8; 32],
        mut header: Header,
        contents: &Contents,
    ) -> Result<Header, VaultError> {
        header.nonce = random()?;
        let aad = header.encode();
        let plain =
            Zeroizing::new(
                serde_json::to_vec(contents).map_err(|e| VaultError::Backend {
                    backend: "file".into(),
                    why: e.to_string(),
                })?,
            );
        let ct = XChaCha20Poly1305::new(key.into())
            .encrypt(
                XNonce::from_slice(&header.nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Backend {
                backend: "file".into(),
                why: "encryption failed".into(),
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.extend_from_slice(&aad);
        out.extend_from_slice(&ct);
        atomic_write(&self.path, &out, FileMode::Secret).map_err(|e| VaultError::Backend {
            backend: "file".into(),
            why: e.to_string(),
        })?;
        Ok(header)
    }

    /// Read-modify-write under an exclusive lock, so processes sharing the
    /// file never lose each other's changes.
    fn modify<T>(&self, f: impl FnOnce(&mut Contents) -> T) -> Result<T, VaultError> {
        if let Some(dir) = self.path.parent() {
            nexus_core::private_dir(dir)
                .map_err(|e| self.io("cannot create the directory of", e))?;
        }
        let mut opts = File::options();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let lock = opts
            .open(&self.lock_path)
            .map_err(|e| self.io("cannot open the lock of", e))?;
        lock.lock().map_err(|e| self.io("cannot lock", e))?;
        let current = self.load()?;
        let (key, header, mut contents) = match current {
            Some(u) => {
                let Unlocked {
                    key,
                    header,
                    contents,
                } = u;
                (key, header, contents)
            }
            None => {
                let salt = random()?;
                let kdf = match self.source {
                    KeySource::Passphrase(_) => self.kdf,
                    KeySource::Raw(_) => KdfParams {
                        m_cost_kib: 0,
                        t_cost: 0,
                        p_cost: 0,
                    },
                };
                let key = derive(&self.source, kdf, &salt)?;
                let header = Header {
                    source: match self.source {
                        KeySource::Passphrase(_) => 1,
                        KeySource::Raw(_) => 2,
                    },
                    kdf,
                    salt: if matches!(self.source, KeySource::Raw(_)) {
                        [0; 16]
                    } else {
                        salt
                    },
                    check: key_check(&key)?,
                    nonce: [0; 24],
                };
                (key, header, Contents::default())
            }
        };
        let out = f(&mut contents);
        let header = self.store(&key, header, &contents)?;
        *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stamp(&self.path);
        *self.state() = Some(Unlocked {
            key,
            header,
            contents,
        });
        drop(lock);
        Ok(out)
    }

    /// Re-reads the file if another process replaced it since it was read.
    fn fresh(&self) -> Result<(), VaultError> {
        let now = stamp(&self.path);
        let seen = *self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now != seen {
            self.refresh()?;
        }
        Ok(())
    }

    /// Re-reads the file so changes by other processes are seen.
    pub fn refresh(&self) -> Result<(), VaultError> {
        let fresh = self.load()?;
        *self.state() = fresh;
        Ok(())
    }
}

impl Vault for FileVault {
    fn backend(&self) -> &str {
        match self.source {
            KeySource::Passphrase(_) => "file (passphrase)",
            KeySource::Raw(_) => "file (key in OS keyring)",
        }
    }

    fn get(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        validate_name(name)?;
        self.fresh()?;
        Ok(self
            .state()
            .as_ref()
            .and_then(|u| u.contents.entries.get(name))
            .map(|v| Secret::new(v.clone())))
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), VaultError> {
        validate_name(name)?;
        self.modify(|c| {
            c.entries
                .insert(name.to_string(), value.expose().to_string());
        })
    }

    fn delete(&self, name: &str) -> Result<bool, VaultError> {
        validate_name(name)?;
        if !self.path.exists() {
            return Ok(false);
        }
        self.modify(|c| c.entries.remove(name).map(|mut v| v.zeroize()).is_some())
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, VaultError> {
        self.fresh()?;
        Ok(self
            .state()
            .as_ref()
            .map(|u| {
                u.contents
                    .entries
                    .keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(p: &str) -> KeySource {
        KeySource::Passphrase(Secret::new(p))
    }

    fn open(dir: &Path, p: &str) -> Result<FileVault, VaultError> {
        FileVault::open_with(
            &dir.join("vault.enc"),
            pass(p),
            KdfParams::INSECURE_FOR_TESTS,
        )
    }

    nexus_core::vault_conformance_tests!({
        let dir = tempfile::tempdir().unwrap().keep();
        Box::new(open(&dir, "correct horse").unwrap()) as Box<dyn Vault>
    });

    #[test]
    fn survives_reopen_and_is_private() {
        let d = tempfile::tempdir().unwrap();
        open(d.path(), "pw")
            .unwrap()
            .set("provider/openai/api_key", &Secret::new("sk-1"))
            .unwrap();
        let v = open(d.path(), "pw").unwrap();
        assert_eq!(
            v.get("provider/openai/api_key").unwrap().unwrap().expose(),
            "sk-1"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(d.path().join("vault.enc"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600);
        }
        let raw = std::fs::read(d.path().join("vault.enc")).unwrap();
        assert!(!raw.windows(4).any(|w| w == b"sk-1"), "plaintext on disk");
    }

    #[test]
    fn a_long_lived_reader_sees_what_another_writer_stored() {
        let d = tempfile::tempdir().unwrap();
        let daemon = open(d.path(), "pw").unwrap();
        assert!(daemon.get("ext/token/a").unwrap().is_none());
        // Another process (the CLI) writes and deletes meanwhile.
        let cli = open(d.path(), "pw").unwrap();
        cli.set("ext/token/a", &Secret::new("h1")).unwrap();
        assert_eq!(daemon.get("ext/token/a").unwrap().unwrap().expose(), "h1");
        assert_eq!(daemon.list("ext/").unwrap(), ["ext/token/a"]);
        cli.set("ext/token/a", &Secret::new("h2")).unwrap();
        assert_eq!(daemon.get("ext/token/a").unwrap().unwrap().expose(), "h2");
        assert!(cli.delete("ext/token/a").unwrap());
        assert!(daemon.get("ext/token/a").unwrap().is_none());
        // Its own writes keep the other's.
        cli.set("x/one", &Secret::new("1")).unwrap();
        daemon.set("x/two", &Secret::new("2")).unwrap();
        assert_eq!(cli.list("x/").unwrap(), ["x/one", "x/two"]);
    }

    #[test]
    fn wrong_passphrase_is_told_apart_and_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        open(d.path(), "pw")
            .unwrap()
            .set("a/b", &Secret::new("v"))
            .unwrap();
        let before = std::fs::read(d.path().join("vault.enc")).unwrap();
        let e = open(d.path(), "nope").unwrap_err().to_string();
        assert!(e.contains("wrong passphrase"), "{e}");
        assert_eq!(std::fs::read(d.path().join("vault.enc")).unwrap(), before);
    }

    #[test]
    fn any_tampered_byte_is_detected_and_changes_nothing() {
        let d = tempfile::tempdir().unwrap();
        open(d.path(), "pw")
            .unwrap()
            .set("a/b", &Secret::new("value"))
            .unwrap();
        let path = d.path().join("vault.enc");
        let good = std::fs::read(&path).unwrap();
        // Flip one bit in each region: parameters, salt, check, nonce, ciphertext, tag.
        for i in [9, 14, 25, 40, 60, HEADER_LEN + 1, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            let e = open(d.path(), "pw").unwrap_err();
            assert!(
                matches!(e, VaultError::Corrupt(_) | VaultError::Locked(_)),
                "byte {i}: {e}"
            );
            assert_eq!(
                std::fs::read(&path).unwrap(),
                bad,
                "byte {i}: the file was rewritten"
            );
        }
        std::fs::write(&path, &good).unwrap();
        assert!(open(d.path(), "pw").is_ok());
    }

    #[test]
    fn out_of_bounds_costs_in_the_header_are_refused_before_deriving() {
        let d = tempfile::tempdir().unwrap();
        FileVault::open_with(&d.path().join("vault.enc"), pass("pw"), KdfParams::DEFAULT)
            .unwrap()
            .set("a/b", &Secret::new("value"))
            .unwrap();
        let path = d.path().join("vault.enc");
        let good = std::fs::read(&path).unwrap();
        // One bit flipped in the memory cost (64 MiB -> 8 GiB), in the
        // passes (3 -> 268 M) and in the lanes.
        for (i, bit) in [(11, 0x80u8), (16, 0x10), (20, 0x01), (17, 0x20)] {
            let mut bad = good.clone();
            bad[i] ^= bit;
            std::fs::write(&path, &bad).unwrap();
            let t = std::time::Instant::now();
            let e = FileVault::open_with(&path, pass("pw"), KdfParams::DEFAULT)
                .unwrap_err()
                .to_string();
            assert!(e.contains("out of bounds"), "byte {i}: {e}");
            assert!(
                t.elapsed() < std::time::Duration::from_millis(100),
                "byte {i}"
            );
        }
        KdfParams::DEFAULT.check().unwrap();
        KdfParams::INSECURE_FOR_TESTS.check().unwrap();
        // Found by the vault_file property test: huge lanes overflowed the
        // bound's own arithmetic.
        let lanes = KdfParams {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: u32::MAX,
        };
        assert!(lanes.check().is_err());
    }

    #[test]
    fn a_raw_key_vault_and_a_mismatched_source() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("vault.enc");
        let key = Zeroizing::new([7u8; 32]);
        let v = FileVault::open(&path, KeySource::Raw(key.clone())).unwrap();
        v.set("mesh/identity", &Secret::new("ed25519-seed"))
            .unwrap();
        let again = FileVault::open(&path, KeySource::Raw(key)).unwrap();
        assert!(again.get("mesh/identity").unwrap().is_some());
        let e = FileVault::open_with(&path, pass("x"), KdfParams::INSECURE_FOR_TESTS).unwrap_err();
        assert!(
            e.to_string()
                .contains("created with a key held in the OS keyring"),
            "{e}"
        );
        let wrong = FileVault::open(&path, KeySource::Raw(Zeroizing::new([8u8; 32]))).unwrap_err();
        assert!(wrong.to_string().contains("does not open"), "{wrong}");
    }

    #[test]
    fn two_handles_do_not_lose_each_others_writes() {
        let d = tempfile::tempdir().unwrap();
        let a = open(d.path(), "pw").unwrap();
        a.set("x/one", &Secret::new("1")).unwrap();
        let b = open(d.path(), "pw").unwrap();
        a.set("x/two", &Secret::new("2")).unwrap();
        b.set("x/three", &Secret::new("3")).unwrap();
        let c = open(d.path(), "pw").unwrap();
        assert_eq!(c.list("x/").unwrap(), ["x/one", "x/three", "x/two"]);
    }
}
