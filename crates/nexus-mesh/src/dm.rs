//! Direct messages, byte-compatible with libsodium's `crypto_box_easy`:
//! X25519 + XSalsa20-Poly1305, a random 24-byte nonce, and the ciphertext
//! laid out as the 16-byte tag followed by the encrypted bytes. Any
//! libsodium client (PyNaCl's `Box`, for one) opens what Nexus seals, and
//! the other way round.

use crypto_box::aead::Aead;
use crypto_box::{PublicKey, SalsaBox};

use crate::identity::Identity;
use crate::MeshError;

/// A sealed direct message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 24-byte nonce.
    pub nonce: [u8; 24],
    /// Tag (16 bytes) then ciphertext, as `crypto_box_easy` writes it.
    pub ciphertext: Vec<u8>,
}

/// Seals `plaintext` from `sender` to the holder of `recipient_x25519`.
pub fn seal(
    sender: &Identity,
    recipient_x25519: &[u8; 32],
    plaintext: &[u8],
) -> Result<Sealed, MeshError> {
    let b = SalsaBox::new(&PublicKey::from(*recipient_x25519), sender.x_secret());
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| MeshError::Crypto(format!("no randomness: {e}")))?;
    seal_with_nonce(&b, nonce, plaintext)
}

fn seal_with_nonce(b: &SalsaBox, nonce: [u8; 24], plaintext: &[u8]) -> Result<Sealed, MeshError> {
    let n = crypto_box::Nonce::from(nonce);
    let ciphertext = b
        .encrypt(&n, plaintext)
        .map_err(|_| MeshError::Crypto("sealing failed".into()))?;
    Ok(Sealed { nonce, ciphertext })
}

/// Opens a message sealed by the holder of `sender_x25519` to `recipient`.
pub fn open(
    recipient: &Identity,
    sender_x25519: &[u8; 32],
    sealed: &Sealed,
) -> Result<Vec<u8>, MeshError> {
    let b = SalsaBox::new(&PublicKey::from(*sender_x25519), recipient.x_secret());
    b.decrypt(
        &crypto_box::Nonce::from(sealed.nonce),
        sealed.ciphertext.as_slice(),
    )
    .map_err(|_| {
        MeshError::Crypto("the message failed authentication (wrong key, or tampered)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let a = Identity::from_secrets(&[1; 32], &[2; 32], "a").unwrap();
        let b = Identity::from_secrets(&[3; 32], &[4; 32], "b").unwrap();
        let s = seal(&a, &b.x25519_public(), b"hello bob").unwrap();
        assert_eq!(s.ciphertext.len(), 9 + 16);
        assert_eq!(open(&b, &a.x25519_public(), &s).unwrap(), b"hello bob");
        let mut bad = s.clone();
        bad.ciphertext[20] ^= 1;
        assert!(open(&b, &a.x25519_public(), &bad).is_err());
        let c = Identity::from_secrets(&[5; 32], &[6; 32], "c").unwrap();
        assert!(
            open(&c, &a.x25519_public(), &s).is_err(),
            "a third peer cannot open it"
        );
    }
}
