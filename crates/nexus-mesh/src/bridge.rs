//! Bridges: one peer, a member of two meshes, forwarding named topics
//! between them. This module is the sans-IO part: the bridge's file
//! ([`Config`]), what a forwarded copy carries ([`Envelope`]) and the
//! decision for each message ([`Bridge::decide`]). The SDK runs it.
//!
//! Loops stop three ways, none of them visible to a reader:
//! - a forwarded copy carries, inside the sealed plaintext, the message's
//!   origin (mesh, id, sender) and how many bridges it crossed; past
//!   `max_hops` nothing forwards it again, and no copy goes back into the
//!   mesh it came from;
//! - the copy's id is derived from its origin and its destination mesh
//!   ([`copy_id`]), so two bridges that bring the same message into one
//!   mesh by different paths publish the same id, and the broker stores
//!   and delivers it once (a topic holds one message per id);
//! - each bridge remembers what it forwarded (a bounded set).

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::MeshError;

/// What starts the plaintext of a forwarded copy. A typed message never
/// starts with a NUL byte.
pub const MAGIC: &[u8] = b"\0nxb1\n";

/// The default hop limit.
pub const DEFAULT_MAX_HOPS: u8 = 2;

/// The largest hop limit a bridge file may set.
pub const MAX_HOPS_LIMIT: u8 = 8;

/// How many forwarded copies a bridge remembers.
pub const REMEMBERED: usize = 65_536;

/// Where a bridged message was first published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Origin {
    /// The origin mesh's fingerprint ([`mesh_fingerprint`]).
    pub mesh: String,
    /// Its name, as the first bridge knows it (for display).
    pub mesh_name: String,
    /// The original message id.
    pub id: String,
    /// The original sender's name.
    pub from: String,
}

/// The plaintext of a forwarded copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// The message.
    pub text: String,
    /// Where it began.
    pub origin: Origin,
    /// Bridges crossed so far (1 for the first copy).
    pub hops: u8,
}

impl Envelope {
    /// The sealed plaintext: [`MAGIC`], then JSON.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        // A struct of strings and a number always serializes.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// `None` when `plain` is an ordinary message; else the envelope, or
    /// why it is malformed. The plaintext came from a member (it
    /// authenticated under the topic key), but a member may still be
    /// hostile: every field is bounded.
    pub fn decode(plain: &[u8]) -> Option<Result<Envelope, MeshError>> {
        let body = plain.strip_prefix(MAGIC)?;
        let bad = |why: &str| {
            Some(Err(MeshError::Invalid(format!(
                "a malformed bridged message: {why}"
            ))))
        };
        let e: Envelope = match serde_json::from_slice(body) {
            Ok(e) => e,
            Err(e) => return bad(&e.to_string()),
        };
        if !is_hex_id(&e.origin.mesh) || !is_hex_id(&e.origin.id) {
            return bad("its origin is not a mesh fingerprint and a message id");
        }
        if e.origin.mesh_name.len() > 256 || e.origin.from.len() > 256 {
            return bad("a name is too long");
        }
        if e.hops == 0 || e.hops > MAX_HOPS_LIMIT {
            return bad("its hop count is out of range");
        }
        Some(Ok(e))
    }
}

/// 32 lowercase hex digits: a message id or a mesh fingerprint.
fn is_hex_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn digest32(parts: &[&[u8]]) -> String {
    let mut c = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        c.update(&(p.len() as u64).to_be_bytes());
        c.update(p);
    }
    crate::identity::hex(&c.finish().as_ref()[..16])
}

/// A mesh's fingerprint, the same for every member: its owner's key and
/// its name.
pub fn mesh_fingerprint(owner_key: &str, name: &str) -> String {
    digest32(&[
        b"nexus-mesh/bridge/mesh/v1",
        owner_key.as_bytes(),
        name.as_bytes(),
    ])
}

/// The id of `origin`'s copy in the mesh `to` (a fingerprint): the same
/// whichever bridge publishes it, so the broker keeps one.
pub fn copy_id(origin: &Origin, to: &str) -> String {
    digest32(&[
        b"nexus-mesh/bridge/copy/v1",
        origin.mesh.as_bytes(),
        origin.id.as_bytes(),
        to.as_bytes(),
    ])
}

/// One forwarded topic in a bridge file: a name (both ways) or
/// `{name, direction: "lab->ops"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TopicRoute {
    /// Both ways.
    Both(String),
    /// One way, or both spelled out.
    Directed {
        /// The topic.
        name: String,
        /// `both` or `FROM->TO`.
        #[serde(default = "both")]
        direction: String,
    },
}

fn both() -> String {
    "both".into()
}

impl TopicRoute {
    fn name(&self) -> &str {
        match self {
            TopicRoute::Both(n) | TopicRoute::Directed { name: n, .. } => n,
        }
    }

    /// Whether messages of this topic go from mesh `from`.
    fn leaves(&self, from: &str) -> bool {
        match self {
            TopicRoute::Both(_) => true,
            TopicRoute::Directed { direction, .. } => {
                direction == "both"
                    || direction
                        .split_once("->")
                        .is_some_and(|(f, _)| f.trim() == from)
            }
        }
    }
}

/// Which messages cross: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Only from these senders (names).
    #[serde(default)]
    pub from: Vec<String>,
    /// Never from these senders.
    #[serde(default)]
    pub not_from: Vec<String>,
    /// Only messages containing one of these.
    #[serde(default)]
    pub contains: Vec<String>,
    /// Never messages containing any of these.
    #[serde(default)]
    pub not_contains: Vec<String>,
    /// Only messages of at most this many bytes.
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

impl Filter {
    fn passes(&self, from: &str, text: &str) -> bool {
        (self.from.is_empty() || self.from.iter().any(|f| f == from))
            && !self.not_from.iter().any(|f| f == from)
            && (self.contains.is_empty() || self.contains.iter().any(|c| text.contains(c.as_str())))
            && !self.not_contains.iter().any(|c| text.contains(c.as_str()))
            && self.max_bytes.is_none_or(|m| text.len() <= m)
    }
}

/// A bridge file (`bridge.yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The two meshes, by their local names.
    pub meshes: Vec<String>,
    /// The topics forwarded.
    pub topics: Vec<TopicRoute>,
    /// How many bridges a message may cross.
    #[serde(default = "default_hops")]
    pub max_hops: u8,
    /// Which messages cross.
    #[serde(default)]
    pub filter: Filter,
}

fn default_hops() -> u8 {
    DEFAULT_MAX_HOPS
}

/// The largest bridge file read.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;

impl Config {
    /// Parses and checks a bridge file.
    pub fn from_yaml(text: &str) -> Result<Config, MeshError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(MeshError::Invalid(format!(
                "a bridge file is at most {MAX_CONFIG_BYTES} bytes"
            )));
        }
        let c: Config = serde_norway::from_str(text)
            .map_err(|e| MeshError::Invalid(format!("the bridge file does not parse: {e}")))?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), MeshError> {
        let bad = |m: String| Err(MeshError::Invalid(m));
        if self.meshes.len() != 2 || self.meshes[0] == self.meshes[1] {
            return bad("`meshes` names two different meshes this peer is a member of".into());
        }
        if self.topics.is_empty() {
            return bad("`topics` names at least one topic to forward".into());
        }
        if self.max_hops == 0 || self.max_hops > MAX_HOPS_LIMIT {
            return bad(format!("`max_hops` is between 1 and {MAX_HOPS_LIMIT}"));
        }
        for t in &self.topics {
            if t.name().is_empty() {
                return bad("a topic has no name".into());
            }
            if let TopicRoute::Directed { name, direction } = t {
                let ok = direction == "both"
                    || direction.split_once("->").is_some_and(|(f, to)| {
                        let (f, to) = (f.trim(), to.trim());
                        f != to
                            && self.meshes.iter().any(|m| m == f)
                            && self.meshes.iter().any(|m| m == to)
                    });
                if !ok {
                    return bad(format!(
                        "topic `{name}`: `direction` is `both` or `{a}->{b}` or `{b}->{a}`",
                        a = self.meshes[0],
                        b = self.meshes[1]
                    ));
                }
            }
        }
        Ok(())
    }

    /// The topic names forwarded (either way).
    pub fn topic_names(&self) -> Vec<&str> {
        self.topics.iter().map(TopicRoute::name).collect()
    }
}

/// A topic message as the bridge sees it arrive in one of its meshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived<'a> {
    /// The mesh (local name).
    pub mesh: &'a str,
    /// The message id on the wire.
    pub id: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The sender's peer id.
    pub from: &'a str,
    /// The sender's name.
    pub from_name: &'a str,
    /// The text (a copy's inner text).
    pub text: &'a str,
    /// For a copy from another bridge: where it began, and its hops.
    pub bridged: Option<(&'a Origin, u8)>,
}

/// A copy to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Into this mesh (local name).
    pub mesh: String,
    /// The topic.
    pub topic: String,
    /// Its id ([`copy_id`]).
    pub id: String,
    /// What it carries.
    pub envelope: Envelope,
}

/// Why a message is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// This bridge published it.
    Own,
    /// Not a forwarded topic (or not in this direction).
    NotForwarded,
    /// The filter keeps it.
    Filtered,
    /// It crossed `max_hops` bridges already.
    MaxHops,
    /// The other mesh is where it began.
    Origin,
    /// This bridge forwarded it already.
    Forwarded,
}

/// The decision for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Publish this copy, then call [`Bridge::forwarded`].
    Forward(Forward),
    /// Leave it.
    Skip(Skip),
}

/// A running bridge's rules and memory.
#[derive(Debug)]
pub struct Bridge {
    config: Config,
    me: String,
    /// The fingerprints of `config.meshes`, in order.
    prints: [String; 2],
    seen: HashSet<(Origin, String)>,
    order: VecDeque<(Origin, String)>,
}

impl Bridge {
    /// A bridge for `config`, publishing as the peer `me`, whose meshes have
    /// the fingerprints `prints` (in `config.meshes` order).
    pub fn new(config: Config, me: &str, prints: [String; 2]) -> Bridge {
        Bridge {
            config,
            me: me.to_string(),
            prints,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What to do with `m`.
    pub fn decide(&self, m: &Arrived<'_>) -> Decision {
        let Some(side) = self.config.meshes.iter().position(|x| x == m.mesh) else {
            return Decision::Skip(Skip::NotForwarded);
        };
        if m.from == self.me {
            return Decision::Skip(Skip::Own);
        }
        let routed = self
            .config
            .topics
            .iter()
            .any(|t| t.name() == m.topic && t.leaves(m.mesh));
        if !routed {
            return Decision::Skip(Skip::NotForwarded);
        }
        let other = 1 - side;
        let (origin, hops) = match m.bridged {
            Some((o, h)) => (o.clone(), h),
            None => (
                Origin {
                    mesh: self.prints[side].clone(),
                    mesh_name: m.mesh.to_string(),
                    id: m.id.to_string(),
                    from: m.from_name.to_string(),
                },
                0,
            ),
        };
        if hops >= self.config.max_hops {
            return Decision::Skip(Skip::MaxHops);
        }
        if origin.mesh == self.prints[other] {
            return Decision::Skip(Skip::Origin);
        }
        if !self.config.filter.passes(&origin.from, m.text) {
            return Decision::Skip(Skip::Filtered);
        }
        let to = &self.prints[other];
        if self.seen.contains(&(origin.clone(), to.clone())) {
            return Decision::Skip(Skip::Forwarded);
        }
        Decision::Forward(Forward {
            mesh: self.config.meshes[other].clone(),
            topic: m.topic.to_string(),
            id: copy_id(&origin, to),
            envelope: Envelope {
                text: m.text.to_string(),
                origin,
                hops: hops + 1,
            },
        })
    }

    /// Remembers a copy the destination broker acknowledged. Only then: a
    /// copy that failed is decided again when its message comes back.
    pub fn forwarded(&mut self, f: &Forward) {
        let Some(to) = self
            .config
            .meshes
            .iter()
            .position(|m| *m == f.mesh)
            .map(|i| self.prints[i].clone())
        else {
            return;
        };
        let key = (f.envelope.origin.clone(), to);
        if self.seen.insert(key.clone()) {
            self.order.push_back(key);
            if self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.seen.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::needless_range_loop)]
mod tests;
