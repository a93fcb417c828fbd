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
    let epoch = epoch.to_be_bytes();
    derive_key(SALT, root, &[topic.as_bytes(), b"\x00", &epoch])
}

/// HKDF-SHA256 of `ikm` with `salt` and `info` (its parts concatenated),
/// 32 bytes: every key derived from a mesh root key comes from here.
pub(crate) fn derive_key(
    salt: &[u8],
    ikm: &[u8; 32],
    info: &[&[u8]],
) -> Result<Zeroizing<[u8; 32]>, MeshError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let okm = prk
        .expand(info, Len32)
        .map_err(|_| MeshError::Crypto("key derivation failed".into()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    okm.fill(&mut *out)
        .map_err(|_| MeshError::Crypto("key derivation failed".into()))?;
    Ok(out)
}

/// The id a topic goes by on the wire: keyed with the mesh's naming key
/// (which the broker never holds), so the broker routes and stores a
/// topic without learning its name. `t` and 32 hex digits; the same for
/// every member and across key rotations.
pub fn topic_id(names: &[u8; 32], topic: &str) -> Result<String, MeshError> {
    let k = derive_key(b"nexus/topic-id/v1", names, &[topic.as_bytes()])?;
    Ok(format!("t{}", crate::identity::hex(&k[..16])))
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

/// Opens a topic message, decrypting in place in `ciphertext` (which a
/// received frame owns already): no copy.
pub fn open_owned(
    key: &[u8; 32],
    topic: &str,
    epoch: u32,
    sender: &str,
    nonce: &[u8; 24],
    ciphertext: Vec<u8>,
) -> Result<Vec<u8>, MeshError> {
    crate::xchacha::open_vec(key, nonce, &aad(topic, epoch, sender), ciphertext).ok_or_else(|| {
        MeshError::Crypto(
            "the topic message failed authentication (wrong epoch or key, or tampered)".into(),
        )
    })
}

/// Seals a stream of topic messages from one sender, for publishers with
/// many messages to send. Each nonce is a random 16-byte prefix, drawn
/// when the sealer is made, and a 64-bit counter: the XChaCha20 subkey is
/// derived once per sealer instead of per message, and no randomness is
/// drawn per message. The nonces are still unique (the prefix is 128
/// random bits) and the wire format is the same: any receiver opens the
/// messages with [`open`]; an [`Opener`] also skips the per-message
/// derivation. Not to be shared by the two sides of a `fork()`.
pub struct Sealer {
    sub: crate::xchacha::SubKey,
    next: u64,
    aad: Vec<u8>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    /// A sealer for `sender`'s messages to `topic` at `epoch`.
    pub fn new(key: &[u8; 32], topic: &str, epoch: u32, sender: &str) -> Result<Sealer, MeshError> {
        let mut prefix = [0u8; 16];
        getrandom::getrandom(&mut prefix)
            .map_err(|e| MeshError::Crypto(format!("no randomness: {e}")))?;
        Ok(Sealer {
            sub: crate::xchacha::SubKey::new(key, &prefix)?,
            next: 0,
            aad: aad(topic, epoch, sender),
        })
    }

    /// Seals one message: `(nonce, ciphertext)`.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<([u8; 24], Vec<u8>), MeshError> {
        let tail = self.next.to_be_bytes();
        self.next = self
            .next
            .checked_add(1)
            .ok_or_else(|| MeshError::Crypto("this sealer is spent; make a new one".into()))?;
        let mut nonce = [0u8; 24];
        nonce[..16].copy_from_slice(self.sub.prefix());
        nonce[16..].copy_from_slice(&tail);
        let mut ct = Vec::with_capacity(plaintext.len() + crate::xchacha::TAG);
        self.sub.seal_into(&tail, &self.aad, plaintext, &mut ct)?;
        Ok((nonce, ct))
    }
}

/// Opens a topic's messages, remembering the subkeys of the last few
/// nonce prefixes seen (a [`Sealer`] uses one prefix for all its
/// messages), so a stream from a few publishers costs one HChaCha20 per
/// publisher instead of one per message.
pub struct Opener {
    key: Zeroizing<[u8; 32]>,
    topic: String,
    epoch: u32,
    subs: Vec<crate::xchacha::SubKey>,
    aad: Vec<u8>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener")
    }
}

/// How many prefixes an [`Opener`] remembers.
const OPENER_CACHE: usize = 16;

impl Opener {
    /// An opener for `topic` at `epoch`.
    pub fn new(key: &[u8; 32], topic: &str, epoch: u32) -> Opener {
        Opener {
            key: Zeroizing::new(*key),
            topic: topic.to_string(),
            epoch,
            subs: Vec::new(),
            aad: Vec::new(),
        }
    }

    /// Opens a message from `sender`, decrypting in place in `ciphertext`.
    pub fn open(
        &mut self,
        sender: &str,
        nonce: &[u8; 24],
        ciphertext: Vec<u8>,
    ) -> Result<Vec<u8>, MeshError> {
        let (head, tail) = crate::xchacha::split_nonce(nonce);
        let i = match self.subs.iter().position(|s| *s.prefix() == head) {
            Some(i) => i,
            None => {
                if self.subs.len() == OPENER_CACHE {
                    self.subs.remove(0);
                }
                self.subs
                    .push(crate::xchacha::SubKey::new(&self.key, &head)?);
                self.subs.len() - 1
            }
        };
        self.aad.clear();
        self.aad.extend_from_slice(self.topic.as_bytes());
        self.aad.push(0);
        self.aad.extend_from_slice(&self.epoch.to_be_bytes());
        self.aad.extend_from_slice(sender.as_bytes());
        self.subs[i]
            .open_vec(&tail, &self.aad, ciphertext)
            .ok_or_else(|| {
                MeshError::Crypto(
                    "the topic message failed authentication (wrong epoch or key, or tampered)"
                        .into(),
                )
            })
    }
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
        assert_eq!(
            open_owned(&k0, "builds", 0, "peer-a", &n, ct.clone()).unwrap(),
            b"green"
        );
        assert!(open_owned(&k0, "builds", 0, "peer-b", &n, ct.clone()).is_err());
        assert!(
            open(&k1, "builds", 1, "peer-a", &n, &ct).is_err(),
            "a rotated key cannot read the old epoch"
        );
        assert!(
            open(&k0, "builds", 0, "peer-b", &n, &ct).is_err(),
            "the sender is authenticated"
        );
    }

    #[test]
    fn a_sealers_messages_open_anywhere_and_an_opener_opens_all() {
        let k = topic_key(&[3u8; 32], "load", 2).unwrap();
        let mut a = Sealer::new(&k, "load", 2, "peer-a").unwrap();
        let mut b = Sealer::new(&k, "load", 2, "peer-b").unwrap();
        let mut opener = Opener::new(&k, "load", 2);
        let mut nonces = std::collections::HashSet::new();
        for i in 0..50u8 {
            let (s, who) = if i % 3 == 0 {
                (&mut b, "peer-b")
            } else {
                (&mut a, "peer-a")
            };
            let (n, ct) = s.seal(&[i; 40]).unwrap();
            assert!(nonces.insert(n), "a nonce repeated");
            assert_eq!(open(&k, "load", 2, who, &n, &ct).unwrap(), [i; 40]);
            assert_eq!(opener.open(who, &n, ct.clone()).unwrap(), [i; 40]);
            let other = if who == "peer-a" { "peer-b" } else { "peer-a" };
            assert!(opener.open(other, &n, ct).is_err(), "the sender is bound");
        }
        // Plain random-nonce messages open too.
        let (n, ct) = seal(&k, "load", 2, "peer-c", b"x").unwrap();
        assert_eq!(opener.open("peer-c", &n, ct).unwrap(), b"x");
        let wrong = Opener::new(&k, "load", 3).open("peer-a", &n, vec![0; 20]);
        assert!(wrong.is_err());
    }
}
