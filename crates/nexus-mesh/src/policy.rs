//! Who a peer takes mesh keys from, and who it gives them to: pure
//! decisions over a membership's record, unit-tested without a broker.
//!
//! - A root key is taken only from the mesh's owner (whose key the signed
//!   invite named) or an admin, and only as the first key or the next
//!   epoch: a member cannot plant a key, and no one can plant one for a
//!   future epoch that would outlive a block.
//! - The owner hands the key to a newcomer by policy: at once for a
//!   single-use invite it issued, after `nexus mesh approve` for a
//!   multi-use or unknown one, and never to someone who came in through an
//!   invite issued before the last block (key rotation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::frame::PeerInfo;

/// An invite this peer (the owner) issued, as it remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedInvite {
    /// How many peers may join with it.
    pub max_uses: u32,
    /// When it was issued, ms since the epoch.
    pub issued_ms: u64,
}

/// A newcomer waiting for the owner's approval before it gets the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingJoin {
    /// Display name.
    pub name: String,
    /// X25519 key, hex (the key is sealed to it).
    pub x25519: String,
    /// The invite it joined with ([`crate::auth::invite_ref`]).
    pub invite: String,
}

/// What this peer knows for the key policy of one mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicyState {
    /// The owner's Ed25519 key, hex, from the invite (or our own).
    #[serde(default)]
    pub owner_key: String,
    /// Invites issued (owner only), by [`crate::auth::invite_ref`].
    #[serde(default)]
    pub invites: BTreeMap<String, IssuedInvite>,
    /// When the key last rotated (a block), ms since the epoch.
    #[serde(default)]
    pub rotated_ms: Option<u64>,
    /// Newcomers waiting for approval, by peer id.
    #[serde(default)]
    pub pending: BTreeMap<String, PendingJoin>,
    /// Peers this peer has handed the key to (at their join, by approval,
    /// or in a rotation): they get it again when they ask.
    #[serde(default)]
    pub granted: std::collections::BTreeSet<String>,
}

/// Decides about a member asking for the current key again: sent to one
/// this peer handed it to before, left to `approve` for one still waiting,
/// refused to anyone else (another admin may have handed it out).
pub fn key_request(state: &KeyPolicyState, peer: &str) -> Handout {
    if state.granted.contains(peer) {
        Handout::Send
    } else if state.pending.contains_key(peer) {
        Handout::Confirm
    } else {
        Handout::Refuse("this peer never handed them the key".into())
    }
}

/// What to do with a root key that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyArrival {
    /// Store it: the first key, or the next epoch.
    Accept,
    /// The epoch held already (a repeat delivery): keep what is held.
    Repeat,
    /// Refuse it, for this reason.
    Refuse(String),
}

/// Decides about a root key for `epoch` from `sender`, given the newest
/// epoch held (`held`).
pub fn root_key_arrival(
    state: &KeyPolicyState,
    held: Option<u32>,
    sender: &PeerInfo,
    epoch: u32,
) -> KeyArrival {
    let owner = !state.owner_key.is_empty() && sender.ed25519 == state.owner_key;
    let admin = !sender.blocked && sender.caps.iter().any(|c| c == "admin");
    if !owner && !admin {
        return KeyArrival::Refuse(format!(
            "{} ({}) sent a mesh key but is not the owner or an admin",
            sender.name,
            short(&sender.peer)
        ));
    }
    match held {
        None => KeyArrival::Accept,
        Some(h) if epoch == h.saturating_add(1) => KeyArrival::Accept,
        Some(h) if epoch <= h => KeyArrival::Repeat,
        Some(h) => KeyArrival::Refuse(format!(
            "{} sent a key for epoch {epoch}, but the next epoch is {}",
            sender.name,
            h.saturating_add(1)
        )),
    }
}

/// What the owner does when someone joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handout {
    /// Seal the key to them now.
    Send,
    /// Wait for `nexus mesh approve`.
    Confirm,
    /// Never send it, for this reason.
    Refuse(String),
}

/// Decides the key hand-out for a newcomer who joined with `invite`.
pub fn key_handout(state: &KeyPolicyState, invite: &str) -> Handout {
    match state.invites.get(invite) {
        Some(i) if state.rotated_ms.is_some_and(|r| i.issued_ms < r) => {
            Handout::Refuse("they came in through an invite issued before the last block".into())
        }
        Some(i) if i.max_uses == 1 => Handout::Send,
        Some(_) => Handout::Confirm,
        None if state.rotated_ms.is_some() => Handout::Refuse(
            "they came in through an invite this peer does not know, and the key has rotated since"
                .into(),
        ),
        None => Handout::Confirm,
    }
}

/// A peer id's first 8 characters, shown next to names.
pub fn short(peer: &str) -> &str {
    peer.get(..8).unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, ed: &str, caps: &[&str]) -> PeerInfo {
        PeerInfo {
            peer: format!("{name}-0123456789"),
            name: name.into(),
            ed25519: ed.into(),
            x25519: String::new(),
            online: true,
            status: String::new(),
            summary: String::new(),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            blocked: false,
        }
    }

    #[test]
    fn keys_come_only_from_the_owner_or_an_admin() {
        let st = KeyPolicyState {
            owner_key: "ownerkey".into(),
            ..Default::default()
        };
        let member = peer("eve", "evekey", &["read", "dm", "broadcast"]);
        assert!(matches!(
            root_key_arrival(&st, None, &member, 0),
            KeyArrival::Refuse(r) if r.contains("not the owner")
        ));
        assert!(matches!(
            root_key_arrival(&st, Some(0), &member, 1),
            KeyArrival::Refuse(_)
        ));
        let owner = peer("ana", "ownerkey", &[]);
        assert_eq!(root_key_arrival(&st, None, &owner, 0), KeyArrival::Accept);
        let admin = peer("bo", "bokey", &["admin"]);
        assert_eq!(
            root_key_arrival(&st, Some(3), &admin, 4),
            KeyArrival::Accept
        );
        let mut blocked = admin.clone();
        blocked.blocked = true;
        assert!(matches!(
            root_key_arrival(&st, Some(3), &blocked, 4),
            KeyArrival::Refuse(_)
        ));
    }

    #[test]
    fn only_the_next_epoch_is_taken() {
        let st = KeyPolicyState {
            owner_key: "o".into(),
            ..Default::default()
        };
        let owner = peer("ana", "o", &["admin"]);
        assert_eq!(
            root_key_arrival(&st, Some(2), &owner, 3),
            KeyArrival::Accept
        );
        assert_eq!(
            root_key_arrival(&st, Some(2), &owner, 2),
            KeyArrival::Repeat
        );
        assert_eq!(
            root_key_arrival(&st, Some(2), &owner, 0),
            KeyArrival::Repeat
        );
        assert!(matches!(
            root_key_arrival(&st, Some(2), &owner, 9),
            KeyArrival::Refuse(r) if r.contains("next epoch is 3")
        ));
        assert!(matches!(
            root_key_arrival(&st, Some(u32::MAX), &owner, 0),
            KeyArrival::Repeat
        ));
    }

    #[test]
    fn a_key_goes_again_only_to_whom_it_went() {
        let mut st = KeyPolicyState::default();
        st.granted.insert("a".into());
        st.pending.insert(
            "b".into(),
            PendingJoin {
                name: "b".into(),
                x25519: String::new(),
                invite: String::new(),
            },
        );
        assert_eq!(key_request(&st, "a"), Handout::Send);
        assert_eq!(key_request(&st, "b"), Handout::Confirm);
        assert!(matches!(key_request(&st, "c"), Handout::Refuse(_)));
    }

    #[test]
    fn the_hand_out_follows_the_invite_and_the_last_block() {
        let mut st = KeyPolicyState::default();
        st.invites.insert(
            "single".into(),
            IssuedInvite {
                max_uses: 1,
                issued_ms: 100,
            },
        );
        st.invites.insert(
            "multi".into(),
            IssuedInvite {
                max_uses: 5,
                issued_ms: 100,
            },
        );
        assert_eq!(key_handout(&st, "single"), Handout::Send);
        assert_eq!(key_handout(&st, "multi"), Handout::Confirm);
        assert_eq!(key_handout(&st, "unknown"), Handout::Confirm);
        st.rotated_ms = Some(200);
        assert!(matches!(key_handout(&st, "single"), Handout::Refuse(_)));
        assert!(matches!(key_handout(&st, "multi"), Handout::Refuse(_)));
        assert!(matches!(key_handout(&st, "unknown"), Handout::Refuse(_)));
        st.invites.insert(
            "fresh".into(),
            IssuedInvite {
                max_uses: 1,
                issued_ms: 300,
            },
        );
        assert_eq!(key_handout(&st, "fresh"), Handout::Send);
    }
}
