//! API keys: `nxk_<prefix>_<secret>`, shown once. Only a SHA-256 of the key
//! is kept (`NEXUS_HOME/gateway/keys.json`, 0600), found by its 11-character
//! prefix and compared in constant time. Each key is for one mesh, with
//! scopes (`read`, `send`, `admin`), optional topics, and an expiry.
//!
//! The store re-reads its file when another process changed it, so a key
//! revoked with `nexus apikey revoke` stops working at the next request, and
//! open streams (which re-check every 500 ms) close within a second.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};

/// Every key starts with this.
pub const PREFIX: &str = "nxk_";
/// Characters of the random part that index the key.
pub const INDEX_LEN: usize = 11;
/// The expiry when none is asked for: 24 h.
pub const DEFAULT_TTL_MS: u64 = 24 * 3600 * 1000;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read peers, topics, messages, streams.
    Read,
    /// Send and publish.
    Send,
    /// Everything, including the store and the models.
    Admin,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "read" => Ok(Scope::Read),
            "send" => Ok(Scope::Send),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope `{other}`; scopes are read, send and admin"
            )),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Admin => "admin",
        })
    }
}

/// One key, as stored (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    /// Its id (for `revoke`).
    pub id: String,
    /// The index: the first characters of its random part.
    pub prefix: String,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    /// The mesh it acts in.
    pub mesh: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// The topics it may touch (empty: all).
    #[serde(default)]
    pub topics: Vec<String>,
    /// A name for people.
    #[serde(default)]
    pub label: String,
    /// When made, ms.
    pub created_ms: u64,
    /// When it stops working, ms.
    pub expires_ms: u64,
    /// Revoked (kept so `list` shows it).
    #[serde(default)]
    pub revoked: bool,
}

impl Key {
    /// Whether it has `scope` (admin has every scope).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    /// Whether it may touch `topic`.
    pub fn covers_topic(&self, topic: &str) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == topic)
    }

    /// Whether it works at `now_ms`.
    pub fn live(&self, now_ms: u64) -> bool {
        !self.revoked && now_ms < self.expires_ms
    }
}

/// Why a key was refused (the gateway answers 401 with this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a key of this format, or unknown.
    #[error("the API key is not valid; `nexus apikey create` makes one")]
    Unknown,
    /// Revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// Expired.
    #[error("the API key expired; make a new one with `nexus apikey create`")]
    Expired,
    /// The store could not be read or written.
    #[error("the API key store: {0}")]
    Io(String),
    /// A bad request to make one.
    #[error("{0}")]
    Bad(String),
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn eq_ct(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Default)]
struct Cache {
    keys: Vec<Key>,
    stamp: Option<(u64, u64, Option<std::time::SystemTime>)>,
}

/// The keys of one home.
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    cache: Mutex<Cache>,
}

fn stamp(p: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.ino(), m.len(), m.modified().ok()))
}

/// What `create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// The mesh.
    pub mesh: String,
    /// Scopes (at least one).
    pub scopes: Vec<Scope>,
    /// Topics (empty: all).
    pub topics: Vec<String>,
    /// Lifetime, ms (None: 24 h).
    pub ttl_ms: Option<u64>,
    /// A name for people.
    pub label: String,
}

impl KeyStore {
    /// The store at `path` (`NEXUS_HOME/gateway/keys.json`).
    pub fn at(path: PathBuf) -> KeyStore {
        KeyStore {
            path,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every key, re-read when the file changed.
    pub fn all(&self) -> Result<Vec<Key>, KeyError> {
        self.with_keys(<[Key]>::to_vec)
    }

    /// Runs `f` on the keys, re-read first when the file changed (one
    /// `stat` per call; no copy).
    fn with_keys<T>(&self, f: impl FnOnce(&[Key]) -> T) -> Result<T, KeyError> {
        let now = stamp(&self.path);
        let mut c = self.lock();
        if c.stamp != now || now.is_none() {
            c.keys = match std::fs::read(&self.path) {
                Ok(b) if b.len() <= 16 << 20 => serde_json::from_slice(&b)
                    .map_err(|e| KeyError::Io(format!("{}: {e}", self.path.display())))?,
                Ok(_) => return Err(KeyError::Io("the key file is too large".into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(KeyError::Io(e.to_string())),
            };
            c.stamp = now;
        }
        Ok(f(&c.keys))
    }

    fn save(&self, keys: &[Key]) -> Result<(), KeyError> {
        if let Some(dir) = self.path.parent() {
            nexus_core::private_dir(dir).map_err(|e| KeyError::Io(e.to_string()))?;
        }
        let bytes = serde_json::to_vec_pretty(keys).map_err(|e| KeyError::Io(e.to_string()))?;
        nexus_core::atomic_write(&self.path, &bytes, nexus_core::FileMode::Secret)
            .map_err(|e| KeyError::Io(e.to_string()))?;
        let mut c = self.lock();
        c.keys = keys.to_vec();
        c.stamp = stamp(&self.path);
        Ok(())
    }

    /// Holds the key file's lock (`keys.json.lock`) until dropped: two
    /// processes changing keys at once both keep their change.
    fn exclusive(&self) -> Result<std::fs::File, KeyError> {
        if let Some(dir) = self.path.parent() {
            nexus_core::private_dir(dir).map_err(|e| KeyError::Io(e.to_string()))?;
        }
        let mut o = std::fs::OpenOptions::new();
        o.create(true).truncate(false).write(true);
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let f = o
            .open(self.path.with_extension("json.lock"))
            .map_err(|e| KeyError::Io(e.to_string()))?;
        f.lock().map_err(|e| KeyError::Io(e.to_string()))?;
        Ok(f)
    }

    /// Makes a key; returns it (the only time the secret is seen) and its record.
    pub fn create(&self, new: &NewKey, now_ms: u64) -> Result<(String, Key), KeyError> {
        let _lock = self.exclusive()?;
        self.create_locked(new, now_ms)
    }

    fn create_locked(&self, new: &NewKey, now_ms: u64) -> Result<(String, Key), KeyError> {
        if new.scopes.is_empty() {
            return Err(KeyError::Bad(
                "a key needs at least one scope (read, send, admin)".into(),
            ));
        }
        if new.mesh.is_empty() {
            return Err(KeyError::Bad("a key is for one mesh (--mesh)".into()));
        }
        let mut raw = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| KeyError::Io("no system randomness".into()))?;
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(raw)
            .replace(['-', '_'], "x");
        let prefix = body[..INDEX_LEN].to_string();
        let secret = format!("{PREFIX}{prefix}_{}", &body[INDEX_LEN..]);
        let mut id_raw = [0u8; 6];
        let _ = ring::rand::SystemRandom::new().fill(&mut id_raw);
        let key = Key {
            id: id_raw.iter().map(|b| format!("{b:02x}")).collect(),
            prefix,
            hash: sha256_hex(&secret),
            mesh: new.mesh.clone(),
            scopes: new.scopes.clone(),
            topics: new.topics.clone(),
            label: new.label.clone(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(new.ttl_ms.unwrap_or(DEFAULT_TTL_MS)),
            revoked: false,
        };
        let mut keys = self.all()?;
        keys.push(key.clone());
        self.save(&keys)?;
        Ok((secret, key))
    }

    /// A key for one desktop session: admin on `mesh`, labelled `desktop`,
    /// living `ttl_ms`; desktop keys past their time are dropped meanwhile.
    pub fn desktop_session(
        &self,
        mesh: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<String, KeyError> {
        let _lock = self.exclusive()?;
        let keys = self.all()?;
        let live: Vec<Key> = keys
            .iter()
            .filter(|k| !(k.label == DESKTOP_LABEL && now_ms >= k.expires_ms))
            .cloned()
            .collect();
        if live.len() != keys.len() {
            self.save(&live)?;
        }
        let (secret, _) = self.create_locked(
            &NewKey {
                mesh: mesh.to_string(),
                scopes: vec![Scope::Admin],
                topics: Vec::new(),
                ttl_ms: Some(ttl_ms),
                label: DESKTOP_LABEL.into(),
            },
            now_ms,
        )?;
        Ok(secret)
    }

    /// Revokes key `id`; whether it was live.
    pub fn revoke(&self, id: &str) -> Result<bool, KeyError> {
        let _lock = self.exclusive()?;
        let mut keys = self.all()?;
        let Some(k) = keys.iter_mut().find(|k| k.id == id) else {
            return Err(KeyError::Bad(format!(
                "no API key `{id}`; `nexus apikey list` shows them"
            )));
        };
        let was = !k.revoked;
        k.revoked = true;
        self.save(&keys)?;
        Ok(was)
    }

    /// The key `secret` is, if it works at `now_ms`.
    pub fn verify(&self, secret: &str, now_ms: u64) -> Result<Key, KeyError> {
        let rest = secret.strip_prefix(PREFIX).ok_or(KeyError::Unknown)?;
        if secret.len() > 200 || rest.len() <= INDEX_LEN {
            return Err(KeyError::Unknown);
        }
        let prefix = &rest[..INDEX_LEN];
        let hash = sha256_hex(secret);
        let key = self
            .with_keys(|keys| {
                keys.iter()
                    .find(|k| k.prefix == prefix && eq_ct(k.hash.as_bytes(), hash.as_bytes()))
                    .cloned()
            })?
            .ok_or(KeyError::Unknown)?;
        if key.revoked {
            return Err(KeyError::Revoked);
        }
        if now_ms >= key.expires_ms {
            return Err(KeyError::Expired);
        }
        Ok(key)
    }
}

/// The label of the keys `nexus desktop` makes.
pub const DESKTOP_LABEL: &str = "desktop";

/// Parses `24h`, `30m`, `7d`, `90s` into ms.
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 24h, 30m or 7d"))?;
    let ms = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" | "" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}` is not a duration like 24h, 30m or 7d")),
    };
    n.checked_mul(ms)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("`{s}` is out of range"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Stores in separate "processes" (each its own cache) making keys at
    /// once keep every key; expired desktop keys are dropped on the way.
    #[test]
    fn concurrent_creates_lose_no_key_and_desktop_sessions_prune_expired_ones() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("keys.json");
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let store = KeyStore::at(path);
                    (0..10)
                        .map(|i| {
                            if (t + i) % 2 == 0 {
                                store.desktop_session("m", 1_000, 5_000).unwrap()
                            } else {
                                store
                                    .create(
                                        &NewKey {
                                            mesh: "m".into(),
                                            scopes: vec![Scope::Read],
                                            ..NewKey::default()
                                        },
                                        5_000,
                                    )
                                    .unwrap()
                                    .0
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let secrets: Vec<String> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let store = KeyStore::at(path);
        assert_eq!(store.all().unwrap().len(), 40);
        for s in &secrets {
            store.verify(s, 5_500).unwrap();
        }
        // Later, the desktop keys have expired: the next session drops them.
        store.desktop_session("m", 1_000, 10_000).unwrap();
        let left = store.all().unwrap();
        assert_eq!(left.iter().filter(|k| k.label == DESKTOP_LABEL).count(), 1);
        assert_eq!(left.len(), 21);
    }

    #[test]
    fn create_verify_revoke_expire_with_a_manual_clock() {
        let d = tempfile::tempdir().unwrap();
        let store = KeyStore::at(d.path().join("keys.json"));
        let new = NewKey {
            mesh: "team".into(),
            scopes: vec![Scope::Read],
            topics: vec!["ops".into()],
            ttl_ms: Some(60_000),
            label: "dash".into(),
        };
        let (secret, key) = store.create(&new, 1_000).unwrap();
        assert!(secret.starts_with("nxk_") && secret.len() > 40);
        let raw = std::fs::read_to_string(d.path().join("keys.json")).unwrap();
        assert!(!raw.contains(&secret[15..]), "only a hash is kept");
        let got = store.verify(&secret, 2_000).unwrap();
        assert_eq!(got.id, key.id);
        assert!(got.allows(Scope::Read) && !got.allows(Scope::Send));
        assert!(got.covers_topic("ops") && !got.covers_topic("secret"));
        assert_eq!(store.verify(&secret, 61_000), Err(KeyError::Expired));
        let mut wrong = secret.clone();
        wrong.pop();
        wrong.push('Q');
        assert_eq!(store.verify(&wrong, 2_000), Err(KeyError::Unknown));
        for junk in ["", "nxk_", "Bearer x", "nxk_short"] {
            assert_eq!(store.verify(junk, 2_000), Err(KeyError::Unknown), "{junk}");
        }
        // Another process (the CLI) revokes it: this store sees it.
        let other = KeyStore::at(d.path().join("keys.json"));
        assert!(other.revoke(&key.id).unwrap());
        assert_eq!(store.verify(&secret, 2_000), Err(KeyError::Revoked));
        assert!(store
            .create(
                &NewKey {
                    mesh: "m".into(),
                    ..NewKey::default()
                },
                0
            )
            .is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_ttl("24h").unwrap(), 86_400_000);
        assert_eq!(parse_ttl("30m").unwrap(), 1_800_000);
        assert_eq!(parse_ttl("7d").unwrap(), 604_800_000);
        assert!(parse_ttl("soon").is_err() && parse_ttl("0h").is_err() && parse_ttl("5y").is_err());
    }
}
