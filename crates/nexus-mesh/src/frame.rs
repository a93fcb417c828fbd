//! The wire frames: versioned and typed. A frame is one byte of protocol
//! version, one byte of kind, and a JSON body for that kind. Decoding never
//! panics: unknown versions and kinds, and malformed bodies, are errors the
//! broker answers with an error frame.

use serde::{Deserialize, Serialize};

use crate::MeshError;

/// The protocol version this build speaks.
pub const VERSION: u8 = 1;

/// The most bytes a frame may have.
pub const MAX_FRAME: usize = 256 * 1024;

/// A frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// Client → broker: who I am, signed over mesh ‖ peer ‖ key ‖ time ‖ nonce.
    Hello {
        /// The mesh.
        mesh: String,
        /// The peer id.
        peer: String,
        /// Ed25519 public key, hex.
        key: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// A random nonce, hex (replay cache).
        nonce: String,
        /// The signature, hex.
        sig: String,
    },
    /// Broker → client: accepted.
    Welcome {
        /// Messages waiting while the peer was offline.
        queued: u32,
    },
    /// A direct message, sealed with `crypto_box`.
    Dm {
        /// Message id (clients drop duplicates).
        id: String,
        /// Sender peer id.
        from: String,
        /// Recipient peer id.
        to: String,
        /// Nonce, hex.
        nonce: String,
        /// Ciphertext, hex.
        body: String,
    },
    /// A topic message, sealed with the topic key.
    Publish {
        /// Message id.
        id: String,
        /// Sender peer id.
        from: String,
        /// The topic.
        topic: String,
        /// The key epoch.
        epoch: u32,
        /// Nonce, hex.
        nonce: String,
        /// Ciphertext, hex.
        body: String,
    },
    /// Acknowledges a message id.
    Ack {
        /// The id.
        id: String,
    },
    /// Something was refused; the connection stays up.
    Error {
        /// A stable code (`malformed`, `too_large`, `rate_limited`, ...).
        code: String,
        /// What to do about it.
        message: String,
    },
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Hello { .. } => 1,
            Frame::Welcome { .. } => 2,
            Frame::Dm { .. } => 3,
            Frame::Publish { .. } => 4,
            Frame::Ack { .. } => 5,
            Frame::Error { .. } => 6,
        }
    }

    /// Encodes the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, self.kind()];
        // Serializing these plain types cannot fail.
        out.extend_from_slice(&serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// Decodes a frame.
    pub fn decode(bytes: &[u8]) -> Result<Frame, MeshError> {
        if bytes.len() > MAX_FRAME {
            return Err(MeshError::Frame(format!(
                "frame of {} bytes exceeds the {MAX_FRAME}-byte limit",
                bytes.len()
            )));
        }
        let [version, kind, body @ ..] = bytes else {
            return Err(MeshError::Frame("frame shorter than its header".into()));
        };
        if *version != VERSION {
            return Err(MeshError::Frame(format!(
                "protocol version {version} is not supported (this build speaks {VERSION})"
            )));
        }
        let f: Frame = serde_json::from_slice(body)
            .map_err(|e| MeshError::Frame(format!("malformed frame body: {e}")))?;
        if f.kind() != *kind {
            return Err(MeshError::Frame(
                "frame kind does not match its body".into(),
            ));
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame() -> impl Strategy<Value = Frame> {
        let s = "[a-z0-9]{0,40}";
        prop_oneof![
            (s, s, s, any::<u64>(), s, s).prop_map(|(mesh, peer, key, ts, nonce, sig)| {
                Frame::Hello {
                    mesh,
                    peer,
                    key,
                    ts,
                    nonce,
                    sig,
                }
            }),
            any::<u32>().prop_map(|queued| Frame::Welcome { queued }),
            (s, s, s, s, s).prop_map(|(id, from, to, nonce, body)| Frame::Dm {
                id,
                from,
                to,
                nonce,
                body
            }),
            (s, s, s, any::<u32>(), s, s).prop_map(|(id, from, topic, epoch, nonce, body)| {
                Frame::Publish {
                    id,
                    from,
                    topic,
                    epoch,
                    nonce,
                    body,
                }
            }),
            s.prop_map(|id| Frame::Ack { id }),
            (s, ".{0,80}").prop_map(|(code, message)| Frame::Error { code, message }),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(f in frame()) {
            prop_assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Frame::decode(&bytes);
        }

        #[test]
        fn a_changed_kind_byte_is_refused(f in frame(), k in 0u8..=255) {
            let mut b = f.encode();
            prop_assume!(b[1] != k);
            b[1] = k;
            prop_assert!(Frame::decode(&b).is_err());
        }
    }

    #[test]
    fn oversized_and_wrong_version_are_errors() {
        assert!(Frame::decode(&vec![1u8; MAX_FRAME + 1]).is_err());
        let mut b = Frame::Ack { id: "x".into() }.encode();
        b[0] = 9;
        assert!(Frame::decode(&b)
            .unwrap_err()
            .to_string()
            .contains("version 9"));
    }
}
