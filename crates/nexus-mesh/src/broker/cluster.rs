//! One broker among several sharing a store (a JetStream cluster): what
//! another node stored reaches this node's own connections, a member
//! changed elsewhere is reloaded (a block closes the member's connections
//! here too), and who is online elsewhere is known from heartbeats.
//! Sans-IO: the node's I/O (consumers, heartbeats) lives in nexus-broker.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{lock, Broker, Out};
use crate::frame::PublishView;

/// A node's last heartbeat: when it was heard, and its `(mesh, peer)`s.
type Heard = (u64, HashSet<(String, String)>);

/// Who is online on other nodes, from their heartbeats: a node's list
/// holds until `expiry_ms` after it was heard (two heartbeats and a bit),
/// then it is dropped as a node that died.
#[derive(Debug, Default)]
pub struct Presence {
    nodes: Mutex<HashMap<String, Heard>>,
    expiry_ms: u64,
}

impl Presence {
    /// Heartbeat lists expire `expiry_ms` after they were heard.
    pub fn new(expiry_ms: u64) -> Presence {
        Presence {
            nodes: Mutex::new(HashMap::new()),
            expiry_ms,
        }
    }

    /// `node` says, at `now_ms`, who is connected to it.
    pub fn heard(&self, node: &str, online: Vec<(String, String)>, now_ms: u64) {
        let mut n = lock(&self.nodes);
        n.insert(node.to_string(), (now_ms, online.into_iter().collect()));
        let expiry = self.expiry_ms;
        n.retain(|_, (at, _)| now_ms.saturating_sub(*at) <= expiry);
    }

    /// Whether `peer` of `mesh` is connected to another node at `now_ms`.
    pub fn online(&self, mesh: &str, peer: &str, now_ms: u64) -> bool {
        let key = (mesh.to_string(), peer.to_string());
        lock(&self.nodes)
            .values()
            .any(|(at, set)| now_ms.saturating_sub(*at) <= self.expiry_ms && set.contains(&key))
    }
}

impl Broker {
    /// Counts peers online on other nodes as online (from `presence`).
    pub fn with_presence(mut self, presence: Arc<Presence>) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Whether `peer` of `mesh` is online on another node.
    pub(super) fn online_elsewhere(&self, mesh: &str, peer: &str) -> bool {
        self.presence
            .as_ref()
            .is_some_and(|p| p.online(mesh, peer, self.clock.now_millis()))
    }

    /// Who is connected to this node: `(mesh, peer)`, for its heartbeat.
    pub fn online_here(&self) -> Vec<(String, String)> {
        lock(&self.online).keys().cloned().collect()
    }

    /// A topic message of `mesh` another node stored (its bytes as the
    /// publisher sent them): to this node's readers, not its sender.
    pub fn remote_publish(&self, mesh: &str, frame: Bytes) -> Vec<Out> {
        let from = match PublishView::parse(&frame) {
            Some(Ok(p)) => p.from.to_string(),
            _ => return Vec::new(),
        };
        let Ok(readers) = self.readers(mesh) else {
            return Vec::new();
        };
        readers
            .iter()
            .filter(|(peer, _)| *peer != from)
            .map(|(_, c)| Out::Send(*c, frame.clone()))
            .collect()
    }

    /// A direct message for `to` in `mesh` another node queued: to `to`'s
    /// connections here (it acknowledges it to whichever node it is on).
    pub fn remote_dm(&self, mesh: &str, to: &str, frame: Bytes) -> Vec<Out> {
        match lock(&self.online).get(&(mesh.to_string(), to.to_string())) {
            Some(conns) => conns.iter().map(|c| Out::Send(*c, frame.clone())).collect(),
            None => Vec::new(),
        }
    }

    /// A member of `mesh` changed in the shared store (another node
    /// granted, revoked or blocked): forget what is cached, and close a
    /// blocked member's connections here.
    pub fn member_changed(&self, mesh: &str, peer: &str) -> Vec<Out> {
        lock(&self.members).remove(mesh);
        self.readers_changed(mesh);
        let blocked = matches!(self.member(mesh, peer), Ok(Some(m)) if m.blocked);
        if !blocked {
            return Vec::new();
        }
        lock(&self.online)
            .remove(&(mesh.to_string(), peer.to_string()))
            .into_iter()
            .flatten()
            .map(Out::Close)
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn presence_holds_for_its_expiry_and_a_silent_node_drops_out() {
        let p = Presence::new(2_500);
        p.heard("n1", vec![("lab".into(), "alice".into())], 1_000);
        assert!(p.online("lab", "alice", 1_000));
        assert!(p.online("lab", "alice", 3_500));
        assert!(!p.online("lab", "bob", 3_500));
        assert!(!p.online("ops", "alice", 3_500));
        assert!(!p.online("lab", "alice", 3_501), "two heartbeats missed");
        // A later heartbeat without her says she left.
        p.heard("n1", vec![], 2_000);
        assert!(!p.online("lab", "alice", 2_000));
        p.heard("n2", vec![("lab".into(), "alice".into())], 9_000);
        assert!(p.online("lab", "alice", 9_000));
        assert_eq!(
            lock(&p.nodes).len(),
            1,
            "n1, silent since 2000, was dropped"
        );
    }
}
