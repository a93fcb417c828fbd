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
    /// Owner → broker: create a mesh, owned by this key.
    CreateMesh {
        /// The mesh name.
        mesh: String,
        /// Owner Ed25519 key, hex.
        key: String,
        /// Owner X25519 key, hex.
        x25519: String,
        /// Owner display name.
        name: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// Signature over the fields, hex.
        sig: String,
    },
    /// Joiner → broker: join with an owner-signed invite.
    Join {
        /// The invite code.
        invite: String,
        /// Joiner Ed25519 key, hex.
        key: String,
        /// Joiner X25519 key, hex.
        x25519: String,
        /// Joiner display name.
        name: String,
        /// Milliseconds since the epoch.
        ts: u64,
        /// Signature over the fields, hex.
        sig: String,
    },
    /// Broker → admins: a peer joined (an admin seals the root key to it).
    MemberJoined {
        /// Peer id.
        peer: String,
        /// Display name.
        name: String,
        /// X25519 key, hex.
        x25519: String,
    },
    /// Asks for the member list.
    ListPeers,
    /// The member list.
    PeerList {
        /// Members.
        peers: Vec<PeerInfo>,
    },
    /// Sets this peer's status and/or summary.
    SetPresence {
        /// New status, if changing.
        status: Option<String>,
        /// New summary, if changing.
        summary: Option<String>,
    },
    /// Admin: grant or revoke capabilities.
    Grant {
        /// The peer.
        peer: String,
        /// Capabilities.
        caps: Vec<String>,
        /// Revoke instead of grant.
        revoke: bool,
    },
    /// Admin: block or unblock a peer.
    Block {
        /// The peer.
        peer: String,
        /// Block (true) or unblock.
        blocked: bool,
    },
    /// Asks for a page of a topic's history.
    History {
        /// The topic.
        topic: String,
        /// Entries before this sequence number (newest first); none for the latest.
        before: Option<u64>,
        /// Page size (at most 500).
        limit: u32,
    },
    /// A page of history: `Publish` frames, newest first.
    HistoryPage {
        /// The topic.
        topic: String,
        /// `(sequence, frame)`.
        entries: Vec<(u64, Frame)>,
    },
    /// Admin: make an invite fetchable by its short code.
    PutInvite {
        /// The full invite code.
        code: String,
    },
    /// Anyone: fetch an invite by its short code.
    GetInvite {
        /// The short code (`ABCD-EF01-2345-6789`).
        short: String,
    },
    /// The invite a short code stands for.
    InviteCode {
        /// The full invite code.
        code: String,
    },
    /// A request succeeded.
    Done {
        /// What was done.
        what: String,
    },
    /// Something was refused; the connection stays up.
    Error {
        /// A stable code (`malformed`, `too_large`, `rate_limited`, ...).
        code: String,
        /// What to do about it.
        message: String,
    },
}

/// A member, as peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Peer id.
    pub peer: String,
    /// Display name.
    pub name: String,
    /// Ed25519 key, hex.
    pub ed25519: String,
    /// X25519 key, hex.
    pub x25519: String,
    /// Connected now.
    pub online: bool,
    /// Status.
    pub status: String,
    /// Summary.
    pub summary: String,
    /// Capabilities.
    pub caps: Vec<String>,
    /// Blocked.
    pub blocked: bool,
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
            Frame::CreateMesh { .. } => 7,
            Frame::Join { .. } => 8,
            Frame::MemberJoined { .. } => 9,
            Frame::ListPeers => 10,
            Frame::PeerList { .. } => 11,
            Frame::SetPresence { .. } => 12,
            Frame::Grant { .. } => 13,
            Frame::Block { .. } => 14,
            Frame::History { .. } => 15,
            Frame::HistoryPage { .. } => 16,
            Frame::Done { .. } => 17,
            Frame::PutInvite { .. } => 18,
            Frame::GetInvite { .. } => 19,
            Frame::InviteCode { .. } => 20,
        }
    }

    /// An error frame.
    pub fn error(code: &str, message: impl Into<String>) -> Frame {
        Frame::Error {
            code: code.to_string(),
            message: message.into(),
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
