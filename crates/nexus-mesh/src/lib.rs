//! The Nexus agent mesh: identities, end-to-end encryption, the wire
//! protocol, the client and the broker. The mesh issue fills this crate; the
//! frame version below is the first fixed point of the protocol.

use serde::{Deserialize, Serialize};

/// The wire protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;

/// A peer's id: lowercase hex of the first 16 bytes of a hash of its public key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(String);

impl PeerId {
    /// Parses a peer id: 32 lowercase hex characters.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(PeerId(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a peer id (32 lowercase hex characters)"
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_validated() {
        assert!(PeerId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(PeerId::parse("XYZ").is_err());
    }
}
