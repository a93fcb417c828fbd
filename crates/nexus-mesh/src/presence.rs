//! Status and summary, sealed under the mesh key: the broker stores and
//! hands out the sealed text and cannot read it; members open it with the
//! key of the epoch it names.
//!
//! A sealed value is `sealed1:<epoch>:<hex of nonce ‖ ciphertext ‖ tag>`,
//! XChaCha20-Poly1305 under HKDF-SHA256(salt `"nexus-mesh/presence-key/v1"`,
//! IKM = the epoch's root key, info = epoch as u32 BE), with the field name
//! and the peer id as associated data (so one peer's status cannot be shown
//! as another's, or a summary as a status). A value without the prefix is
//! an older, plaintext one and is shown as it is.

use zeroize::Zeroizing;

use crate::identity::{hex, unhex};
use crate::MeshError;

const SALT: &[u8] = b"nexus-mesh/presence-key/v1";
const PREFIX: &str = "sealed1:";

/// The longest status, in characters, before sealing.
pub const MAX_STATUS: usize = 200;
/// The longest summary, in characters, before sealing.
pub const MAX_SUMMARY: usize = 500;

fn key(root: &[u8; 32], epoch: u32) -> Result<Zeroizing<[u8; 32]>, MeshError> {
    crate::topic::derive_key(SALT, root, &[&epoch.to_be_bytes()])
}

fn aad(field: &str, peer: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(field.len() + peer.len() + 1);
    a.extend_from_slice(field.as_bytes());
    a.push(0);
    a.extend_from_slice(peer.as_bytes());
    a
}

/// Seals `text` as `peer`'s `field` (`status` or `summary`) under the root
/// key of `epoch`.
pub fn seal(
    root: &[u8; 32],
    epoch: u32,
    peer: &str,
    field: &str,
    text: &str,
) -> Result<String, MeshError> {
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| MeshError::Crypto(format!("no randomness: {e}")))?;
    let k = key(root, epoch)?;
    let ct = crate::xchacha::seal(&k, &nonce, &aad(field, peer), text.as_bytes())?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{epoch}:{}", hex(&blob)))
}

/// What to show for `peer`'s `field` as the broker gave it: the opened
/// text, an older plaintext value as it is, or `(sealed)` when this peer
/// does not hold the key of its epoch (or it does not authenticate).
pub fn reveal(
    value: &str,
    peer: &str,
    field: &str,
    root_at: impl Fn(u32) -> Option<[u8; 32]>,
) -> String {
    let Some(rest) = value.strip_prefix(PREFIX) else {
        return value.to_string();
    };
    let opened = (|| {
        let (epoch, blob) = rest.split_once(':')?;
        let epoch: u32 = epoch.parse().ok()?;
        let blob = unhex(blob).ok()?;
        let (nonce, ct) = blob.split_first_chunk::<24>()?;
        let root = root_at(epoch)?;
        let k = key(&root, epoch).ok()?;
        let plain = crate::xchacha::open(&k, nonce, &aad(field, peer), ct)?;
        String::from_utf8(plain).ok()
    })();
    opened.unwrap_or_else(|| "(sealed)".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sealed_presence_opens_only_with_its_key_peer_and_field() {
        let root = [5u8; 32];
        let s = seal(&root, 3, "alice", "status", "busy").unwrap();
        assert!(s.starts_with("sealed1:3:") && !s.contains("busy"));
        let key = |e: u32| (e == 3).then_some(root);
        assert_eq!(reveal(&s, "alice", "status", key), "busy");
        assert_eq!(
            reveal(&s, "bob", "status", key),
            "(sealed)",
            "another peer's"
        );
        assert_eq!(
            reveal(&s, "alice", "summary", key),
            "(sealed)",
            "another field"
        );
        assert_eq!(reveal(&s, "alice", "status", |_| None), "(sealed)");
        assert_eq!(reveal("plain old", "alice", "status", key), "plain old");
        assert_eq!(reveal("sealed1:x:zz", "alice", "status", key), "(sealed)");
    }
}
