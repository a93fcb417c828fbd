//! Topic encryption: each topic's key is derived with HKDF-SHA256 from the
//! mesh root key, the topic id and an epoch; messages are sealed with
//! XChaCha20-Poly1305 under a random 24-byte nonce, with the topic, epoch
//! and sender bound in as associated data. Removing a member bumps the
//! epoch: the new key is unrelated to the old for anyone without the root.

use ring::hkdf;
use zeroize::Zeroizing;

use crate::MeshError;

const SALT: &[u8] = b"nexus-mesh/topic-key/v1";

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// The key of `topic` at `epoch`, from the mesh root key.
pub fn topic_key(
    root: &[u8; 32],
    topic: &str,
    epoch: u32,
) -> Result<Zeroizing<[u8; 32]>, MeshError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(root);
    let epoch = epoch.to_be_bytes();
    let info: [&[u8]; 3] = [topic.as_bytes(), b"\x00", &epoch];
    let okm = prk
        .expand(&info, Len32)
        .map_err(|_| MeshError::Crypto("key derivation failed".into()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(&mut *out)
        .map_err(|_| MeshError::Crypto("key derivation failed".into()))?;
    Ok(out)
}

fn aad(topic: &str, epoch: u32, sender: &str) -> Vec<u8> {
    let mut a = Vec::with_capacity(topic.len() + sender.len() + 8);
    a.extend_from_slice(topic.as_bytes());
    a.push(0);
    a.extend_from_slice(&epoch.to_be_bytes());
    a.extend_from_slice(sender.as_bytes());
    a
}

/// Seals a topic message: `(nonce, ciphertext)`.
pub fn seal(
    key: &[u8; 32],
    topic: &str,
    epoch: u32,
    sender: &str,
    plaintext: &[u8],
) -> Result<([u8; 24], Vec<u8>), MeshError> {
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| MeshError::Crypto(format!("no randomness: {e}")))?;
    let ct = crate::xchacha::seal(key, &nonce, &aad(topic, epoch, sender), plaintext)?;
    Ok((nonce, ct))
}

/// Opens a topic message.
pub fn open(
    key: &[u8; 32],
    topic: &str,
    epoch: u32,
    sender: &str,
    nonce: &[u8; 24],
    ciphertext: &[u8],
) -> Result<Vec<u8>, MeshError> {
    crate::xchacha::open(key, nonce, &aad(topic, epoch, sender), ciphertext).ok_or_else(|| {
        MeshError::Crypto(
            "the topic message failed authentication (wrong epoch or key, or tampered)".into(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_topic_and_epoch_and_bind_the_sender() {
        let root = [9u8; 32];
        let k0 = topic_key(&root, "builds", 0).unwrap();
        let k1 = topic_key(&root, "builds", 1).unwrap();
        let other = topic_key(&root, "alerts", 0).unwrap();
        assert_ne!(*k0, *k1);
        assert_ne!(*k0, *other);
        assert_eq!(
            *k0,
            *topic_key(&root, "builds", 0).unwrap(),
            "deterministic"
        );
        let (n, ct) = seal(&k0, "builds", 0, "peer-a", b"green").unwrap();
        assert_eq!(open(&k0, "builds", 0, "peer-a", &n, &ct).unwrap(), b"green");
        assert!(
            open(&k1, "builds", 1, "peer-a", &n, &ct).is_err(),
            "a rotated key cannot read the old epoch"
        );
        assert!(
            open(&k0, "builds", 0, "peer-b", &n, &ct).is_err(),
            "the sender is authenticated"
        );
    }
}
