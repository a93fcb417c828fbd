//! Extension signatures in the minisign format, so Debian's `minisign`
//! verifies what Nexus signs and Nexus accepts what `minisign` signs.
//!
//! A signature is Ed25519 over the BLAKE2b-512 hash of the entry file
//! (minisign's prehashed `ED`), plus a second signature over that one and
//! the *trusted comment*. The trusted comment binds the signature to one
//! release: `nexus-ext id=ID version=V entry-sha256=HEX manifest-sha256=HEX`.
//! So a signature cannot be moved to another extension, another version,
//! another build of the entry, or a manifest asking for more permissions.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use blake2::Digest as _;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::manifest::{Manifest, FILE as MANIFEST};

/// The signature file of an extension: `<entry>.minisig` next to the entry.
pub fn signature_path(dir: &Path, m: &Manifest) -> std::path::PathBuf {
    dir.join(format!("{}.minisig", m.entry))
}

/// Why an extension's signature is refused; each case is its own variant.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// No signature file.
    #[error("the extension is not signed ({0} is missing); sign it with `nexus ext sign`, or install with --allow-unsigned while developing")]
    Unsigned(String),
    /// Signed by a key that is not trusted.
    #[error("signed by key {0}, which is not trusted; trust it with `nexus ext trust add PUBLIC_KEY` if you know its owner")]
    UnknownKey(String),
    /// The signature does not verify: the file or the signature changed.
    #[error("the signature does not verify: {0} was changed after it was signed")]
    Tampered(String),
    /// The trusted comment does not match this extension.
    #[error("the signature is for another release: {0}")]
    CommentMismatch(String),
    /// Not minisign's format.
    #[error("not a minisign {0}")]
    Malformed(String),
    /// Reading a file failed.
    #[error("{0}")]
    Io(String),
}

/// A minisign public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key id, as minisign stores it.
    pub key_id: [u8; 8],
    /// The Ed25519 key.
    pub key: [u8; 32],
}

/// Shows a key id as minisign does.
pub fn key_id_hex(id: &[u8; 8]) -> String {
    format!("{:016X}", u64::from_le_bytes(*id))
}

impl PublicKey {
    /// Reads the base64 line of a minisign public key (or the whole file).
    pub fn parse(text: &str) -> Result<PublicKey, SignError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| SignError::Malformed("public key: empty".into()))?;
        let raw = B64
            .decode(line)
            .map_err(|_| SignError::Malformed("public key: not base64".into()))?;
        if raw.len() != 42 || &raw[..2] != b"Ed" {
            return Err(SignError::Malformed(
                "public key: wrong length or algorithm".into(),
            ));
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&raw[2..10]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[10..]);
        Ok(PublicKey { key_id, key })
    }

    /// The base64 line.
    pub fn to_base64(&self) -> String {
        let mut raw = b"Ed".to_vec();
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.key);
        B64.encode(raw)
    }

    /// The whole file, as `minisign -G` writes it.
    pub fn to_file(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            key_id_hex(&self.key_id),
            self.to_base64()
        )
    }

    /// The key id as hex.
    pub fn id(&self) -> String {
        key_id_hex(&self.key_id)
    }
}

/// A signing key: an Ed25519 seed (wiped on drop) and its key id.
pub struct SecretKey {
    key_id: [u8; 8],
    seed: zeroize::Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("key_id", &key_id_hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, SignError> {
        use ring::rand::SecureRandom as _;
        let rng = ring::rand::SystemRandom::new();
        let mut seed = [0u8; 32];
        let mut key_id = [0u8; 8];
        rng.fill(&mut seed)
            .map_err(|_| SignError::Io("no randomness".into()))?;
        rng.fill(&mut key_id)
            .map_err(|_| SignError::Io("no randomness".into()))?;
        Ok(SecretKey {
            key_id,
            seed: zeroize::Zeroizing::new(seed),
        })
    }

    /// From what [`SecretKey::to_text`] wrote (hex key id, hex seed).
    pub fn from_text(text: &str) -> Result<SecretKey, SignError> {
        let bad = || SignError::Malformed("signing key".into());
        let (id, seed) = text.trim().split_once(':').ok_or_else(bad)?;
        let id = hex(id).ok_or_else(bad)?;
        let seed = hex(seed).ok_or_else(bad)?;
        let key_id: [u8; 8] = id.try_into().map_err(|_| bad())?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| bad())?;
        Ok(SecretKey {
            key_id,
            seed: zeroize::Zeroizing::new(seed),
        })
    }

    /// Text to keep in the vault.
    pub fn to_text(&self) -> String {
        let h = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!("{}:{}", h(&self.key_id), h(&*self.seed))
    }

    fn pair(&self) -> Ed25519KeyPair {
        // A 32-byte seed always makes a key pair.
        Ed25519KeyPair::from_seed_unchecked(&*self.seed)
            .unwrap_or_else(|_| unreachable!("32-byte seed"))
    }

    /// Its public key.
    pub fn public(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair().public_key().as_ref());
        PublicKey {
            key_id: self.key_id,
            key,
        }
    }

    /// Signs `data` with `trusted_comment`, in minisign's `.minisig` format.
    pub fn sign(&self, data: &[u8], trusted_comment: &str) -> String {
        let pair = self.pair();
        let hash = blake2::Blake2b512::digest(data);
        let sig = pair.sign(&hash);
        let mut global = sig.as_ref().to_vec();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_sig = pair.sign(&global);
        let mut raw = b"ED".to_vec();
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(sig.as_ref());
        format!(
            "untrusted comment: signature from nexus ext sign\n{}\ntrusted comment: {}\n{}\n",
            B64.encode(raw),
            trusted_comment,
            B64.encode(global_sig.as_ref())
        )
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A parsed `.minisig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `Ed` (pure) or `ED` (BLAKE2b-512 prehashed).
    pub prehashed: bool,
    /// The signing key's id.
    pub key_id: [u8; 8],
    /// The signature of the file.
    pub sig: [u8; 64],
    /// The trusted comment.
    pub trusted_comment: String,
    /// The signature over `sig` and the trusted comment.
    pub global_sig: [u8; 64],
}

impl Signature {
    /// Parses `.minisig` text (bounded: at most 4 KiB).
    pub fn parse(text: &str) -> Result<Signature, SignError> {
        let bad = |why: &str| SignError::Malformed(format!("signature: {why}"));
        if text.len() > 4096 {
            return Err(bad("larger than 4 KiB"));
        }
        let mut lines = text.lines();
        let first = lines.next().ok_or_else(|| bad("empty"))?;
        if !first.starts_with("untrusted comment:") {
            return Err(bad("no untrusted comment line"));
        }
        let raw = B64
            .decode(lines.next().ok_or_else(|| bad("no signature line"))?.trim())
            .map_err(|_| bad("not base64"))?;
        if raw.len() != 74 {
            return Err(bad("wrong length"));
        }
        let prehashed = match &raw[..2] {
            b"ED" => true,
            b"Ed" => false,
            _ => return Err(bad("unknown algorithm")),
        };
        let trusted_comment = lines
            .next()
            .and_then(|l| l.strip_prefix("trusted comment: "))
            .ok_or_else(|| bad("no trusted comment"))?
            .to_string();
        let global = B64
            .decode(
                lines
                    .next()
                    .ok_or_else(|| bad("no global signature"))?
                    .trim(),
            )
            .map_err(|_| bad("global signature not base64"))?;
        let global_sig: [u8; 64] = global
            .try_into()
            .map_err(|_| bad("global signature length"))?;
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&raw[2..10]);
        let mut sig = [0u8; 64];
        sig.copy_from_slice(&raw[10..]);
        Ok(Signature {
            prehashed,
            key_id,
            sig,
            trusted_comment,
            global_sig,
        })
    }

    /// Checks both signatures with `key` over `data`.
    pub fn verify(&self, key: &PublicKey, data: &[u8], what: &str) -> Result<(), SignError> {
        let pk = UnparsedPublicKey::new(&ED25519, key.key);
        let msg: Vec<u8> = if self.prehashed {
            blake2::Blake2b512::digest(data).to_vec()
        } else {
            data.to_vec()
        };
        pk.verify(&msg, &self.sig)
            .map_err(|_| SignError::Tampered(what.to_string()))?;
        let mut global = self.sig.to_vec();
        global.extend_from_slice(self.trusted_comment.as_bytes());
        pk.verify(&global, &self.global_sig)
            .map_err(|_| SignError::Tampered(format!("the trusted comment of {what}")))
    }
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read(path: &Path, limit: u64) -> Result<Vec<u8>, SignError> {
    let meta =
        std::fs::metadata(path).map_err(|e| SignError::Io(format!("{}: {e}", path.display())))?;
    if meta.len() > limit {
        return Err(SignError::Io(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| SignError::Io(format!("{}: {e}", path.display())))
}

/// The most bytes an entry file may have.
pub const MAX_ENTRY: u64 = 256 << 20;

/// The trusted comment an extension's signature must carry.
pub fn trusted_comment(dir: &Path, m: &Manifest) -> Result<String, SignError> {
    let entry = read(&dir.join(&m.entry), MAX_ENTRY)?;
    let manifest = read(&dir.join(MANIFEST), crate::manifest::MAX_BYTES)?;
    Ok(format!(
        "nexus-ext id={} version={} entry-sha256={} manifest-sha256={}",
        m.id,
        m.version,
        sha256_hex(&entry),
        sha256_hex(&manifest)
    ))
}

/// Signs the extension in `dir` with `key`: writes `<entry>.minisig`.
pub fn sign_extension(
    dir: &Path,
    m: &Manifest,
    key: &SecretKey,
) -> Result<std::path::PathBuf, SignError> {
    let entry = read(&dir.join(&m.entry), MAX_ENTRY)?;
    let comment = trusted_comment(dir, m)?;
    let out = signature_path(dir, m);
    std::fs::write(&out, key.sign(&entry, &comment))
        .map_err(|e| SignError::Io(format!("{}: {e}", out.display())))?;
    Ok(out)
}

/// Verifies the extension in `dir` against `trusted` keys: the signature
/// must exist, be by a trusted key, verify, and carry this release's
/// trusted comment. Returns the signing key's id.
pub fn verify_extension(
    dir: &Path,
    m: &Manifest,
    trusted: &[PublicKey],
) -> Result<String, SignError> {
    let sig_path = signature_path(dir, m);
    if !sig_path.exists() {
        return Err(SignError::Unsigned(sig_path.display().to_string()));
    }
    let text = String::from_utf8(read(&sig_path, 4096)?)
        .map_err(|_| SignError::Malformed("signature: not UTF-8".into()))?;
    let sig = Signature::parse(&text)?;
    let key = trusted
        .iter()
        .find(|k| k.key_id == sig.key_id)
        .ok_or_else(|| SignError::UnknownKey(key_id_hex(&sig.key_id)))?;
    let entry = read(&dir.join(&m.entry), MAX_ENTRY)?;
    sig.verify(key, &entry, &m.entry)?;
    let want = trusted_comment(dir, m)?;
    if sig.trusted_comment != want {
        let got: String = sig.trusted_comment.chars().take(300).collect();
        return Err(SignError::CommentMismatch(format!(
            "it says `{got}`, this extension needs `{want}`"
        )));
    }
    Ok(key.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_every_refusal() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join(MANIFEST),
            "id = \"hi\"\nversion = \"1.0.0\"\nentry = \"main.py\"\ncommand = [\"python3\", \"main.py\"]\n",
        )
        .unwrap();
        std::fs::write(d.path().join("main.py"), "print('hi')\n").unwrap();
        let m = Manifest::load(d.path()).unwrap();
        assert!(matches!(
            verify_extension(d.path(), &m, &[]),
            Err(SignError::Unsigned(_))
        ));
        let key = SecretKey::generate().unwrap();
        let again = SecretKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.public(), key.public());
        sign_extension(d.path(), &m, &key).unwrap();
        let pk = PublicKey::parse(&key.public().to_file()).unwrap();
        assert_eq!(
            verify_extension(d.path(), &m, std::slice::from_ref(&pk)).unwrap(),
            pk.id()
        );
        let other = SecretKey::generate().unwrap().public();
        assert!(matches!(
            verify_extension(d.path(), &m, &[other]),
            Err(SignError::UnknownKey(_))
        ));
        // One byte appended to the entry.
        std::fs::write(d.path().join("main.py"), "print('hi')\n#").unwrap();
        assert!(matches!(
            verify_extension(d.path(), &m, std::slice::from_ref(&pk)),
            Err(SignError::Tampered(_))
        ));
        std::fs::write(d.path().join("main.py"), "print('hi')\n").unwrap();
        // More permissions in the manifest: the comment no longer matches.
        std::fs::write(
            d.path().join(MANIFEST),
            "id = \"hi\"\nversion = \"1.0.0\"\nentry = \"main.py\"\ncommand = [\"python3\", \"main.py\"]\npermissions = [\"exec\"]\n",
        )
        .unwrap();
        let m2 = Manifest::load(d.path()).unwrap();
        assert!(matches!(
            verify_extension(d.path(), &m2, std::slice::from_ref(&pk)),
            Err(SignError::CommentMismatch(_))
        ));
        assert!(matches!(
            Signature::parse("garbage"),
            Err(SignError::Malformed(_))
        ));
    }
}
