//! Backups of a peer's identity and mesh keys, under a passphrase.
//!
//! # Format (version 1)
//!
//! ```text
//! offset  size  field
//!      0     8  magic "NXMBAK01"
//!      8     4  Argon2id passes (opslimit), u32 LE
//!     12     4  Argon2id memory in bytes (memlimit), u32 LE
//!     16    16  salt
//!     32    24  nonce
//!     56     …  XChaCha20-Poly1305 (IETF) ciphertext of the JSON contents,
//!               with bytes 0..56 as associated data
//! ```
//!
//! The key is Argon2id v1.3 over the passphrase, 32 bytes, one lane: exactly
//! libsodium's `crypto_pwhash(…, crypto_pwhash_ALG_ARGON2ID13)` with those
//! opslimit and memlimit. So PyNaCl opens a backup with
//! `nacl.pwhash.argon2id.kdf(32, passphrase, salt, opslimit, memlimit)` and
//! `nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, header, nonce, key)`.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::identity::{random32, Identity, IdentitySecrets};
use crate::MeshError;

const MAGIC: &[u8; 8] = b"NXMBAK01";
const HEADER: usize = 56;

/// Argon2id cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupKdf {
    /// Passes.
    pub opslimit: u32,
    /// Memory in bytes (a multiple of 1 KiB).
    pub memlimit: u32,
}

impl BackupKdf {
    /// What new backups use: 3 passes over 64 MiB.
    pub const DEFAULT: BackupKdf = BackupKdf {
        opslimit: 3,
        memlimit: 64 * 1024 * 1024,
    };

    /// The most memory a backup may ask for: 256 MiB (libsodium's
    /// "moderate").
    pub const MAX_MEMLIMIT: u32 = 256 << 20;
    /// The most passes a backup may ask for.
    pub const MAX_OPSLIMIT: u32 = 10;
    /// The most memory × passes (MiB): about a second or two of work.
    pub const MAX_WORK_MIB: u64 = 1024;

    /// Refuses costs a genuine backup would not have, before deriving:
    /// the header is read before the passphrase authenticates anything.
    pub fn check(&self) -> Result<(), MeshError> {
        let work = u64::from(self.memlimit >> 20) * u64::from(self.opslimit);
        if self.memlimit < 8192
            || self.memlimit > Self::MAX_MEMLIMIT
            || !self.memlimit.is_multiple_of(1024)
            || self.opslimit == 0
            || self.opslimit > Self::MAX_OPSLIMIT
            || work > Self::MAX_WORK_MIB
        {
            return Err(MeshError::Invalid(format!(
                "the backup asks for key-derivation costs out of bounds ({} bytes, {} passes; at most {} bytes, {} passes, {} MiB x passes): it is damaged or not from Nexus",
                self.memlimit,
                self.opslimit,
                Self::MAX_MEMLIMIT,
                Self::MAX_OPSLIMIT,
                Self::MAX_WORK_MIB
            )));
        }
        Ok(())
    }
}

/// What a backup holds.
#[derive(Serialize, Deserialize)]
pub struct BackupContents {
    /// Format of the contents.
    pub version: u32,
    /// The identity, encoded as in the vault.
    #[serde(flatten)]
    pub identity: IdentitySecrets,
    /// Mesh memberships and their keys (root keys, epochs), as stored.
    #[serde(default)]
    pub meshes: serde_json::Value,
}

fn key(
    passphrase: &str,
    salt: &[u8; 16],
    kdf: BackupKdf,
) -> Result<Zeroizing<[u8; 32]>, MeshError> {
    let params = argon2::Params::new(kdf.memlimit / 1024, kdf.opslimit, 1, Some(32))
        .map_err(|e| MeshError::Invalid(format!("bad backup KDF parameters: {e}")))?;
    let mut k = Zeroizing::new([0u8; 32]);
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut *k)
        .map_err(|e| MeshError::Crypto(format!("key derivation failed: {e}")))?;
    Ok(k)
}

/// Writes a backup of `identity` and `meshes`.
pub fn create(
    identity: &Identity,
    meshes: serde_json::Value,
    passphrase: &str,
    kdf: BackupKdf,
) -> Result<Vec<u8>, MeshError> {
    if passphrase.len() < 8 {
        return Err(MeshError::Invalid(
            "a backup passphrase needs at least 8 characters".into(),
        ));
    }
    let contents = BackupContents {
        version: 1,
        identity: IdentitySecrets::of(identity),
        meshes,
    };
    kdf.check()?;
    let plain = Zeroizing::new(
        serde_json::to_vec(&contents).map_err(|e| MeshError::Invalid(e.to_string()))?,
    );
    let salt_full = random32()?;
    let nonce_a = random32()?;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&salt_full[..16]);
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&nonce_a[..24]);
    let mut out = Vec::with_capacity(HEADER + plain.len() + 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&kdf.opslimit.to_le_bytes());
    out.extend_from_slice(&kdf.memlimit.to_le_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let k = key(passphrase, &salt, kdf)?;
    let header: [u8; HEADER] = out[..HEADER]
        .try_into()
        .map_err(|_| MeshError::Crypto("encryption failed".into()))?;
    crate::xchacha::seal_into(&k, &nonce, &header, &plain, &mut out)?;
    Ok(out)
}

/// Opens a backup: the identity and the stored mesh data.
pub fn restore(bytes: &[u8], passphrase: &str) -> Result<(Identity, serde_json::Value), MeshError> {
    if bytes.len() < HEADER + 16 || &bytes[..8] != MAGIC {
        return Err(MeshError::Invalid(
            "not a Nexus mesh backup (or a newer format)".into(),
        ));
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let kdf = BackupKdf {
        opslimit: u32_at(8),
        memlimit: u32_at(12),
    };
    kdf.check()?;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&bytes[16..32]);
    let k = key(passphrase, &salt, kdf)?;
    let mut nonce = [0u8; 24];
    nonce.copy_from_slice(&bytes[32..56]);
    let plain = Zeroizing::new(
        crate::xchacha::open(&k, &nonce, &bytes[..HEADER], &bytes[HEADER..]).ok_or_else(|| {
            MeshError::Crypto("wrong passphrase, or the backup was damaged".into())
        })?,
    );
    let c: BackupContents = serde_json::from_slice(&plain)
        .map_err(|e| MeshError::Invalid(format!("backup contents: {e}")))?;
    let id = c.identity.identity("the backup")?;
    Ok((id, c.meshes.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: BackupKdf = BackupKdf {
        opslimit: 1,
        memlimit: 8192 * 1024,
    };

    #[test]
    fn round_trip_wrong_passphrase_and_tamper() {
        let id = Identity::generate("alice").unwrap();
        let meshes = serde_json::json!([{"mesh": "lab", "root_key": "00ff", "epoch": 2}]);
        let b = create(&id, meshes.clone(), "long passphrase", FAST).unwrap();
        let (back, m) = restore(&b, "long passphrase").unwrap();
        assert_eq!(back.peer_id(), id.peer_id());
        assert_eq!(back.x25519_public(), id.x25519_public());
        assert_eq!(m, meshes);
        assert!(restore(&b, "wrong passphrase").is_err());
        let mut bad = b.clone();
        bad[9] ^= 1; // a header byte: authenticated
        assert!(restore(&bad, "long passphrase").is_err());
        assert!(create(&id, serde_json::Value::Null, "short", FAST).is_err());
    }

    #[test]
    fn crafted_costs_are_refused_before_any_work() {
        // A 120-byte file asking for 1 GiB and many passes: refused at once.
        let mut b = vec![0u8; 120];
        b[..8].copy_from_slice(MAGIC);
        for (ops, mem) in [
            (64u32, 1u32 << 30),
            (1, 1 << 30),
            (255, 64 << 20),
            (8, 256 << 20),
            (0, 64 << 20),
            (3, 1000),
        ] {
            b[8..12].copy_from_slice(&ops.to_le_bytes());
            b[12..16].copy_from_slice(&mem.to_le_bytes());
            let t = std::time::Instant::now();
            let e = restore(&b, "long passphrase").err().unwrap().to_string();
            assert!(e.contains("out of bounds"), "{ops} {mem}: {e}");
            assert!(t.elapsed() < std::time::Duration::from_millis(50));
        }
        // What Nexus writes is within bounds.
        BackupKdf::DEFAULT.check().unwrap();
        FAST.check().unwrap();
    }
}
