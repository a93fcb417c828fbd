//! Peer identities: an Ed25519 signing key (ring) and an X25519 key for
//! direct messages, both from 32-byte secrets kept in the vault.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::MeshError;

/// A peer's id: the first 16 bytes of SHA-256 over its Ed25519 public key,
/// as 32 lowercase hex characters. Stable for the key's lifetime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(String);

impl PeerId {
    /// The id of `ed25519_public`.
    pub fn of(ed25519_public: &[u8; 32]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, ed25519_public);
        PeerId(hex(&d.as_ref()[..16]))
    }

    /// Parses a peer id: 32 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, MeshError> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(PeerId(s.to_string()))
        } else {
            Err(MeshError::Invalid(format!(
                "`{s}` is not a peer id (32 lowercase hex characters)"
            )))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(b.len() * 2);
    for x in b {
        out.push(DIGITS[usize::from(x >> 4)]);
        out.push(DIGITS[usize::from(x & 0x0f)]);
    }
    // Only ASCII digits went in.
    String::from_utf8(out).unwrap_or_default()
}

/// Each byte's value as a hex digit, or 0xff.
const UNHEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Parses lowercase or uppercase hex.
pub fn unhex(s: &str) -> Result<Vec<u8>, MeshError> {
    if !s.len().is_multiple_of(2) {
        return Err(MeshError::Invalid("hex has an odd length".into()));
    }
    // Branch-free, so it vectorizes: ciphertext crosses the wire as hex, and
    // this ran on every delivery (13% of a loaded broker's CPU).
    let mut out = Vec::with_capacity(s.len() / 2);
    let mut bad = 0u8;
    for p in s.as_bytes().chunks_exact(2) {
        let h = UNHEX[usize::from(p[0])];
        let l = UNHEX[usize::from(p[1])];
        bad |= h | l;
        out.push(h << 4 | (l & 0x0f));
    }
    if bad & 0xf0 != 0 {
        return Err(MeshError::Invalid("not hex".into()));
    }
    Ok(out)
}

/// 32 bytes from the OS CSPRNG.
pub fn random32() -> Result<Zeroizing<[u8; 32]>, MeshError> {
    let mut b = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut *b)
        .map_err(|e| MeshError::Crypto(format!("no randomness from the OS: {e}")))?;
    Ok(b)
}

/// A peer's public keys, as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIdentity {
    /// The peer id (derived from `ed25519`).
    pub id: PeerId,
    /// Ed25519 public key, hex.
    pub ed25519: String,
    /// X25519 public key for direct messages, hex.
    pub x25519: String,
    /// A display name.
    pub name: String,
}

/// A peer's private identity.
pub struct Identity {
    signing: Ed25519KeyPair,
    ed_seed: Zeroizing<[u8; 32]>,
    x_secret: crypto_box::SecretKey,
    name: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.peer_id())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A new random identity.
    pub fn generate(name: impl Into<String>) -> Result<Self, MeshError> {
        let ed = random32()?;
        let x = random32()?;
        Self::from_secrets(&ed, &x, name)
    }

    /// From its two 32-byte secrets (an Ed25519 seed and an X25519 secret).
    pub fn from_secrets(
        ed25519_seed: &[u8; 32],
        x25519_secret: &[u8; 32],
        name: impl Into<String>,
    ) -> Result<Self, MeshError> {
        let signing = Ed25519KeyPair::from_seed_unchecked(ed25519_seed)
            .map_err(|_| MeshError::Crypto("invalid Ed25519 seed".into()))?;
        Ok(Identity {
            signing,
            ed_seed: Zeroizing::new(*ed25519_seed),
            x_secret: crypto_box::SecretKey::from(*x25519_secret),
            name: name.into(),
        })
    }

    /// The Ed25519 seed (to store in the vault or a backup).
    pub fn ed25519_seed(&self) -> &[u8; 32] {
        &self.ed_seed
    }

    /// The X25519 secret (to store in the vault or a backup).
    pub fn x25519_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.x_secret.to_bytes())
    }

    /// The Ed25519 public key.
    pub fn ed25519_public(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.signing.public_key().as_ref());
        k
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> [u8; 32] {
        *self.x_secret.public_key().as_bytes()
    }

    /// The peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId::of(&self.ed25519_public())
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What others may know.
    pub fn public(&self) -> PublicIdentity {
        PublicIdentity {
            id: self.peer_id(),
            ed25519: hex(&self.ed25519_public()),
            x25519: hex(&self.x25519_public()),
            name: self.name.clone(),
        }
    }

    /// Signs `msg` (64-byte Ed25519 signature).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut s = [0u8; 64];
        s.copy_from_slice(self.signing.sign(msg).as_ref());
        s
    }

    pub(crate) fn x_secret(&self) -> &crypto_box::SecretKey {
        &self.x_secret
    }
}

/// Verifies an Ed25519 signature.
pub fn verify(ed25519_public: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), MeshError> {
    UnparsedPublicKey::new(&ED25519, ed25519_public)
        .verify(msg, sig)
        .map_err(|_| MeshError::BadSignature)
}

/// An identity's secrets as text: the one encoding of an identity, kept
/// in the vault (`mesh/identity`) and inside a backup. Zeroed on drop.
#[derive(Serialize, Deserialize)]
pub struct IdentitySecrets {
    /// The display name.
    pub name: String,
    /// Ed25519 seed, hex.
    pub ed25519_seed: String,
    /// X25519 secret, hex.
    pub x25519_secret: String,
}

impl Drop for IdentitySecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.ed25519_seed.zeroize();
        self.x25519_secret.zeroize();
    }
}

impl IdentitySecrets {
    /// The secrets of `id`.
    pub fn of(id: &Identity) -> IdentitySecrets {
        IdentitySecrets {
            name: id.name().to_string(),
            ed25519_seed: hex(id.ed25519_seed()),
            x25519_secret: hex(&*id.x25519_secret()),
        }
    }

    /// The identity they make; `what` names where they came from, for the
    /// error.
    pub fn identity(&self, what: &str) -> Result<Identity, MeshError> {
        let ed: [u8; 32] = unhex(&self.ed25519_seed)?
            .try_into()
            .map_err(|_| MeshError::Invalid(format!("{what}: the seed has the wrong length")))?;
        let x: [u8; 32] = Zeroizing::new(unhex(&self.x25519_secret)?)
            .as_slice()
            .try_into()
            .map_err(|_| MeshError::Invalid(format!("{what}: the key has the wrong length")))?;
        Identity::from_secrets(&ed, &x, self.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h32(s: &str) -> [u8; 32] {
        unhex(s).unwrap().try_into().unwrap()
    }

    /// RFC 8032 §7.1, TEST 1 and TEST 2.
    #[test]
    fn rfc8032_ed25519_known_answers() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (seed, public, msg, sig) in cases {
            let id = Identity::from_secrets(&h32(seed), &[1; 32], "t").unwrap();
            assert_eq!(hex(&id.ed25519_public()), public);
            let m = unhex(msg).unwrap();
            assert_eq!(hex(&id.sign(&m)), sig);
            verify(&id.ed25519_public(), &m, &unhex(sig).unwrap()).unwrap();
            assert!(verify(&id.ed25519_public(), b"other", &unhex(sig).unwrap()).is_err());
        }
    }

    /// RFC 7748 §6.1: the public keys from the private keys.
    #[test]
    fn rfc7748_x25519_known_answers() {
        let alice = Identity::from_secrets(
            &[7; 32],
            &h32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
            "alice",
        )
        .unwrap();
        assert_eq!(
            hex(&alice.x25519_public()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        let bob = Identity::from_secrets(
            &[8; 32],
            &h32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
            "bob",
        )
        .unwrap();
        assert_eq!(
            hex(&bob.x25519_public()),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
        );
        // The shared secret, through the same curve implementation.
        let a = x25519_dalek::StaticSecret::from(*alice.x25519_secret());
        let shared = a.diffie_hellman(&x25519_dalek::PublicKey::from(bob.x25519_public()));
        assert_eq!(
            hex(shared.as_bytes()),
            "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        );
    }

    #[test]
    fn peer_ids_are_stable_and_validated() {
        let id = Identity::from_secrets(&[3; 32], &[4; 32], "x").unwrap();
        let again = Identity::from_secrets(id.ed25519_seed(), &id.x25519_secret(), "x").unwrap();
        assert_eq!(id.peer_id(), again.peer_id());
        assert!(PeerId::parse(id.peer_id().as_str()).is_ok());
        assert!(PeerId::parse("XYZ").is_err());
        assert!(!format!("{id:?}").contains(&hex(id.ed25519_seed())));
    }
}
