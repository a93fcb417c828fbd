//! A peer's side of the mesh: its identity and mesh keys (in the vault),
//! its memberships (in `NEXUS_HOME/mesh.json`, no secrets), and the
//! operations the CLI offers. Direct messages carry typed envelopes: text,
//! or a mesh root key sealed to the recipient (sent by an admin when a peer
//! joins, and to everyone left when a member is blocked: the epoch rotates).

mod follow;
mod keys;
mod ops;
mod receive;
mod state;

pub use keys::{load_identity, store_identity};
use state::read_state;
pub use state::{current_mesh, join_topic, memberships, mesh_fingerprint, Membership, MeshState};

pub use follow::Follow;

pub use ops::{Answer, HistoryEntry, Item, Job, Keeper, Op};

pub use receive::{Show, Tell};

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use nexus_core::{NexusHome, Vault};

use crate::auth::Invite;
use crate::client::Connection;
use crate::frame::{Frame, PeerInfo};
use crate::identity::{hex, random32, unhex, Identity};
use crate::policy::{key_handout, Handout, IssuedInvite, KeyPolicyState, PendingJoin};
use crate::{safety, topic, MeshError};

/// The most unseen topic messages one catch-up stores per topic.
const CATCH_UP: usize = 10_000;

/// How long a request waits for the broker's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// What a direct message carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    /// A text message.
    Text {
        /// The text.
        text: String,
    },
    /// The mesh root key for an epoch.
    RootKey {
        /// The mesh.
        mesh: String,
        /// The epoch.
        epoch: u32,
        /// The key, hex.
        key: String,
        /// The mesh's naming key, hex (topic ids on the wire derive from
        /// it); empty from peers of meshes made before topic names were
        /// sealed.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        names: String,
    },
    /// A member asks an admin for the current mesh key (it lost it, or
    /// its key arrived while it could not take it).
    KeyRequest {
        /// The mesh.
        mesh: String,
    },
}

/// Something that arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Incoming {
    /// A direct message.
    Dm {
        /// Message id.
        id: String,
        /// Sender peer id.
        from: String,
        /// Sender name.
        from_name: String,
        /// The text.
        text: String,
    },
    /// A topic message.
    Topic {
        /// Message id.
        id: String,
        /// The topic.
        topic: String,
        /// Sender peer id.
        from: String,
        /// Sender name.
        from_name: String,
        /// The text.
        text: String,
        /// For a bridge's copy from another mesh: where it began.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bridged: Option<Bridged>,
    },
    /// A notice (a key arrived, a peer joined and was sent the key, ...).
    Notice {
        /// What happened.
        text: String,
    },
}

/// Where a bridged topic message began.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridged {
    /// The origin mesh, message and sender.
    pub origin: crate::bridge::Origin,
    /// Bridges crossed.
    pub hops: u8,
}

/// This peer.
pub struct Peer {
    home: NexusHome,
    vault: Arc<dyn Vault>,
    identity: Identity,
    state: MeshState,
    /// Every message received, kept before it is acknowledged.
    inbox: crate::inbox::Inbox,
    /// The member list as last fetched: a send to a known member skips a
    /// round trip (a blocked or unknown one is the broker's to refuse).
    members: std::sync::Mutex<Vec<PeerInfo>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn vault_err(e: nexus_core::VaultError) -> MeshError {
    MeshError::Invalid(e.to_string())
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Peer {
    /// Loads this peer, creating its identity (named `name`) on first use.
    pub fn load(
        home: NexusHome,
        vault: Arc<dyn Vault>,
        name: Option<&str>,
    ) -> Result<Peer, MeshError> {
        let identity = match load_identity(&*vault)? {
            Some(id) => id,
            None => {
                let id = Identity::generate(name.unwrap_or("me"))?;
                store_identity(&*vault, &id)?;
                id
            }
        };
        let state = read_state(&home)?;
        let inbox = crate::inbox::Inbox::open(&home.join("inbox.db"))?;
        Ok(Peer {
            home,
            vault,
            identity,
            state,
            inbox,
            members: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// This peer's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Connects and says hello to `mesh`.
    pub async fn connect(&self, mesh: &str) -> Result<(Connection, u32), MeshError> {
        let m = self.membership(mesh)?;
        let c = Connection::open(&m.broker).await?;
        let queued = c.hello(&self.identity, mesh).await?;
        Ok((c, queued))
    }

    /// Creates `mesh` on `broker`, owned by this peer.
    pub async fn create(&mut self, mesh: &str, broker: &str) -> Result<(), MeshError> {
        let c = Connection::open(broker).await?;
        c.create_mesh(&self.identity, mesh).await?;
        let owner_key = hex(&self.identity.ed25519_public());
        self.update(|st| {
            st.meshes.insert(
                mesh.to_string(),
                Membership {
                    broker: broker.to_string(),
                    owner: true,
                    keys: KeyPolicyState {
                        owner_key,
                        ..Default::default()
                    },
                    ..Default::default()
                },
            );
            st.current = Some(mesh.to_string());
        })?;
        let root = random32()?;
        self.set_root(mesh, 0, &root)?;
        // Topic names are sealed from the broker with a key of their own,
        // handed to members with the mesh key.
        self.set_names_key(mesh, &*random32()?)
    }

    /// An invite to `mesh` (owner only), registered at the broker so its
    /// short code works too.
    pub(crate) async fn invite_on(
        &mut self,
        c: &Connection,
        mesh: &str,
        expires: Duration,
        uses: u32,
        role: &str,
    ) -> Result<Invite, MeshError> {
        if uses == 0 {
            return Err(MeshError::Invalid(
                "an invite admits at least one join (--uses 1 or more)".into(),
            ));
        }
        if !crate::auth::Capability::ROLES.contains(&role) {
            return Err(MeshError::Invalid(format!(
                "there is no role `{role}`; an invite grants {}",
                crate::auth::Capability::ROLES.join(", ")
            )));
        }
        let m = self.membership(mesh)?;
        if !m.owner {
            return Err(MeshError::Invalid(
                "only the mesh's owner signs invites".into(),
            ));
        }
        let inv = Invite::new(
            &self.identity,
            mesh,
            &m.broker,
            role,
            now_ms() + expires.as_millis() as u64,
            uses,
        )?;
        Self::request_on(c, Frame::PutInvite { code: inv.code() }).await?;
        self.update(|st| {
            if let Some(m) = st.meshes.get_mut(mesh) {
                m.keys.invites.insert(
                    crate::auth::invite_ref(&inv.id),
                    IssuedInvite {
                        max_uses: uses,
                        issued_ms: now_ms(),
                    },
                );
            }
        })?;
        Ok(inv)
    }

    /// Joins with an invite link or full code, or with a short code and
    /// the broker it was registered at.
    pub async fn join(&mut self, link: &str, broker: Option<&str>) -> Result<String, MeshError> {
        let inv = if crate::auth::is_short_code(link) {
            let broker = broker.ok_or_else(|| {
                MeshError::Invalid(
                    "a short invite code needs the broker: add --broker ws://HOST:PORT".into(),
                )
            })?;
            let c = Connection::open(broker).await?;
            c.send(&Frame::GetInvite {
                short: link.to_string(),
            })?;
            match c
                .wait_for(Duration::from_secs(10), |f| {
                    matches!(f, Frame::InviteCode { .. })
                })
                .await?
            {
                Frame::InviteCode { code } => Invite::parse(&code)?,
                _ => return Err(MeshError::Io("no invite from the broker".into())),
            }
        } else {
            Invite::parse(link)?
        };
        // A broker given by the user wins over the invite's: another node
        // of the same broker cluster.
        let target = broker.unwrap_or(&inv.broker).to_string();
        let c = Connection::open(&target).await?;
        c.join(&self.identity, &inv).await?;
        // Joining again (a rejoin, or a second device's invite) keeps the
        // membership's topics, marks and keys.
        self.update(|st| {
            let m = st.meshes.entry(inv.mesh.clone()).or_default();
            m.broker.clone_from(&target);
            if m.keys.owner_key.is_empty() {
                m.keys.owner_key.clone_from(&inv.owner);
            }
            st.current = Some(inv.mesh.clone());
        })?;
        // The owner may be online to send the mesh key now: keep what
        // comes (acknowledged once stored) and take the key.
        while let Some(f) = c.recv_timeout(Duration::from_millis(500)).await {
            self.absorb(&inv.mesh, &c, f).await?;
        }
        let peers = self.peers_on(&c).await.unwrap_or_default();
        self.take_keys(&inv.mesh, &peers)?;
        Ok(inv.mesh)
    }

    async fn peers_on(&self, c: &Connection) -> Result<Vec<PeerInfo>, MeshError> {
        match c.request(&Frame::ListPeers, ANSWER_WAIT).await? {
            Frame::PeerList { peers } => {
                self.members
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone_from(&peers);
                Ok(peers)
            }
            _ => Err(MeshError::Io("no peer list from the broker".into())),
        }
    }

    /// `who` among the members as last fetched, else fetched afresh.
    async fn member_on(&self, c: &Connection, who: &str) -> Result<PeerInfo, MeshError> {
        let known = self
            .members
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Ok(p) = Self::resolve(&known, who) {
            if !p.blocked {
                return Ok(p.clone());
            }
        }
        let peers = self.peers_on(c).await?;
        Self::resolve(&peers, who).cloned()
    }

    /// The members of `mesh`, their status and summary opened with the
    /// mesh key (`(sealed)` where this peer lacks the key's epoch).
    pub(crate) async fn peers_opened(
        &self,
        c: &Connection,
        mesh: &str,
    ) -> Result<Vec<PeerInfo>, MeshError> {
        let mut peers = self.peers_on(c).await?;
        let root_at = |e: u32| self.root_at(mesh, e).ok().flatten();
        for p in &mut peers {
            p.status = crate::presence::reveal(&p.status, &p.peer, "status", root_at);
            p.summary = crate::presence::reveal(&p.summary, &p.peer, "summary", root_at);
        }
        Ok(peers)
    }

    /// Finds a peer by id, id prefix or name.
    pub fn resolve<'a>(peers: &'a [PeerInfo], who: &str) -> Result<&'a PeerInfo, MeshError> {
        let m: Vec<&PeerInfo> = peers
            .iter()
            .filter(|p| {
                p.peer == who || p.name == who || (who.len() >= 6 && p.peer.starts_with(who))
            })
            .collect();
        match m.as_slice() {
            [one] => Ok(one),
            [] => Err(MeshError::Invalid(format!(
                "no peer `{who}` in the mesh; see `nexus mesh peers`"
            ))),
            _ => Err(MeshError::Invalid(format!(
                "`{who}` matches several peers; use the peer id"
            ))),
        }
    }

    async fn await_ack(c: &Connection, id: &str) -> Result<(), MeshError> {
        c.wait_for(
            Duration::from_secs(10),
            |f| matches!(f, Frame::Ack { id: a } if a == id),
        )
        .await
        .map(|_| ())
    }

    fn send_envelope(
        &self,
        c: &Connection,
        to: &PeerInfo,
        e: &Envelope,
    ) -> Result<String, MeshError> {
        let bytes = serde_json::to_vec(e).map_err(|e| MeshError::Invalid(e.to_string()))?;
        c.send_dm(&self.identity, &to.peer, &to.x25519, &bytes)
    }

    /// Seals the mesh key of `epoch` to `to` and waits until the broker
    /// has stored it for them.
    async fn send_key(
        &self,
        c: &Connection,
        to: &PeerInfo,
        mesh: &str,
        epoch: u32,
        root: &[u8; 32],
    ) -> Result<(), MeshError> {
        let id = self.send_envelope(
            c,
            to,
            &Envelope::RootKey {
                mesh: mesh.to_string(),
                epoch,
                key: hex(root),
                names: self.names_key(mesh)?.map(|k| hex(&k)).unwrap_or_default(),
            },
        )?;
        Self::await_ack(c, &id).await
    }

    /// Sends a text message; returns its id once the broker has it.
    pub(crate) async fn send_on(
        &self,
        c: &Connection,
        to: &str,
        text: &str,
    ) -> Result<String, MeshError> {
        let p = self.member_on(c, to).await?;
        let id = self.send_envelope(
            c,
            &p,
            &Envelope::Text {
                text: text.to_string(),
            },
        )?;
        Self::await_ack(c, &id).await?;
        Ok(id)
    }

    /// Publishes `text` to `topic_name` under the current key epoch.
    pub(crate) async fn publish_on(
        &self,
        c: &Connection,
        mesh: &str,
        topic_name: &str,
        text: &str,
    ) -> Result<String, MeshError> {
        let id = crate::client::message_id()?;
        self.publish_bytes_on(c, mesh, topic_name, id, text.as_bytes())
            .await
    }

    /// Publishes a bridge's copy under its derived id.
    pub(crate) async fn relay_on(
        &self,
        c: &Connection,
        mesh: &str,
        topic_name: &str,
        id: &str,
        envelope: &crate::bridge::Envelope,
    ) -> Result<String, MeshError> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MeshError::Invalid(
                "a relayed message's id is 32 hex digits".into(),
            ));
        }
        self.publish_bytes_on(c, mesh, topic_name, id.to_string(), &envelope.encode())
            .await
    }

    async fn publish_bytes_on(
        &self,
        c: &Connection,
        mesh: &str,
        topic_name: &str,
        id: String,
        plain: &[u8],
    ) -> Result<String, MeshError> {
        let (epoch, root) = self.root(mesh)?.ok_or_else(|| MeshError::Invalid("this peer has no mesh key yet: it arrives from the owner after joining (run `nexus mesh inbox`)".into()))?;
        let key = topic::topic_key(&root, topic_name, epoch)?;
        let from = self.identity.peer_id().to_string();
        let (n, ct) = topic::seal(&key, topic_name, epoch, &from, plain)?;
        c.send(&Frame::Publish {
            id: id.clone(),
            from,
            topic: self.wire_topic(mesh, topic_name)?,
            epoch,
            nonce: n,
            body: ct,
        })?;
        Self::await_ack(c, &id).await?;
        Ok(id)
    }

    /// Asks the mesh's owner and admins for the current key (a sealed
    /// request to each); whoever handed it to this peer before sends it
    /// again, and it is taken at the next `inbox`. Returns how many were
    /// asked.
    pub(crate) async fn request_key_on(
        &self,
        c: &Connection,
        mesh: &str,
    ) -> Result<usize, MeshError> {
        let peers = self.peers_on(c).await?;
        let me = self.identity.peer_id().to_string();
        let owner = self.membership(mesh)?.keys.owner_key.clone();
        let admins: Vec<&PeerInfo> = peers
            .iter()
            .filter(|p| p.peer != me && !p.blocked)
            .filter(|p| p.ed25519 == owner || p.caps.iter().any(|c| c == "admin"))
            .collect();
        if admins.is_empty() {
            return Err(MeshError::Invalid(
                "no owner or admin is in the mesh to ask for the key".into(),
            ));
        }
        for p in &admins {
            let id = self.send_envelope(
                c,
                p,
                &Envelope::KeyRequest {
                    mesh: mesh.to_string(),
                },
            )?;
            Self::await_ack(c, &id).await?;
        }
        Ok(admins.len())
    }

    /// Sets this peer's status and/or summary, sealed under the mesh key
    /// ([`crate::presence`]): the broker stores what it cannot read.
    pub(crate) async fn set_presence_on(
        &self,
        c: &Connection,
        mesh: &str,
        status: Option<&str>,
        summary: Option<&str>,
    ) -> Result<(), MeshError> {
        use crate::presence::{seal, MAX_STATUS, MAX_SUMMARY};
        let (epoch, root) = self.root(mesh)?.ok_or_else(|| {
            MeshError::Invalid(
                "this peer has no mesh key yet, and status and summary are sealed with it; it arrives from the owner (run `nexus mesh inbox`)".into(),
            )
        })?;
        let me = self.identity.peer_id().to_string();
        let sealed = |field: &str, text: Option<&str>, max: usize| {
            text.map(|t| {
                if t.chars().count() > max {
                    return Err(MeshError::Invalid(format!(
                        "a {field} is at most {max} characters"
                    )));
                }
                seal(&root, epoch, &me, field, t)
            })
            .transpose()
        };
        Self::request_on(
            c,
            Frame::SetPresence {
                status: sealed("status", status, MAX_STATUS)?,
                summary: sealed("summary", summary, MAX_SUMMARY)?,
            },
        )
        .await
    }

    /// Grants (or, with `revoke`, takes away) capabilities of `who` (a
    /// peer id, its first characters, or a name): `read`, `dm`,
    /// `broadcast`, `admin`. Admins only; the broker enforces it.
    pub(crate) async fn grant_on(
        &self,
        c: &Connection,
        who: &str,
        caps: &[String],
        revoke: bool,
    ) -> Result<(), MeshError> {
        for cap in caps {
            crate::auth::Capability::parse(cap)?;
        }
        let peers = self.peers_on(c).await?;
        let target = Self::resolve(&peers, who)?.peer.clone();
        Self::request_on(
            c,
            Frame::Grant {
                peer: target,
                caps: caps.to_vec(),
                revoke,
            },
        )
        .await
    }

    /// Sends a request and waits for its `Done`.
    pub(crate) async fn request_on(c: &Connection, f: Frame) -> Result<(), MeshError> {
        match c.request(&f, ANSWER_WAIT).await? {
            Frame::Done { .. } => Ok(()),
            _ => Err(MeshError::Io(
                "the broker answered a request with something else than `done`".into(),
            )),
        }
    }

    /// Blocks a peer and rotates the mesh key: a new root for the next
    /// epoch, sealed to every remaining member. Returns the new epoch.
    pub(crate) async fn block_on(
        &mut self,
        c: &Connection,
        mesh: &str,
        who: &str,
    ) -> Result<u32, MeshError> {
        let peers = self.peers_on(c).await?;
        let target = Self::resolve(&peers, who)?.clone();
        Self::request_on(
            c,
            Frame::Block {
                peer: target.peer.clone(),
                blocked: true,
            },
        )
        .await?;
        let epoch = self.root(mesh)?.map_or(0, |(e, _)| e + 1);
        let root = random32()?;
        let me = self.identity.peer_id().to_string();
        let recipients: Vec<String> = peers
            .iter()
            .filter(|p| p.peer != target.peer && p.peer != me && !p.blocked)
            .map(|p| p.peer.clone())
            .collect();
        self.update(|st| {
            if let Some(m) = st.meshes.get_mut(mesh) {
                m.keys.rotated_ms = Some(now_ms());
                m.keys.pending.remove(&target.peer);
                m.keys.granted.remove(&target.peer);
                m.keys.granted.extend(recipients);
            }
        })?;
        self.set_root(mesh, epoch, &root)?;
        let me = self.identity.peer_id().to_string();
        for p in peers
            .iter()
            .filter(|p| p.peer != target.peer && p.peer != me && !p.blocked)
        {
            self.send_key(c, p, mesh, epoch, &root).await?;
        }
        Ok(epoch)
    }

    /// Newcomers waiting for the key, by peer id.
    pub fn pending(&self, mesh: &str) -> Result<Vec<(String, PendingJoin)>, MeshError> {
        Ok(self
            .membership(mesh)?
            .keys
            .pending
            .iter()
            .map(|(p, j)| (p.clone(), j.clone()))
            .collect())
    }

    /// Sends the mesh key to a newcomer waiting for approval (`who` is a
    /// peer id, a prefix of one, or a name), unless the key policy refuses
    /// them. Returns their name.
    pub(crate) async fn approve_on(
        &mut self,
        c: &Connection,
        mesh: &str,
        who: &str,
    ) -> Result<String, MeshError> {
        let m = self.membership(mesh)?;
        let matches: Vec<(String, PendingJoin)> = m
            .keys
            .pending
            .iter()
            .filter(|(p, j)| *p == who || j.name == who || (who.len() >= 6 && p.starts_with(who)))
            .map(|(p, j)| (p.clone(), j.clone()))
            .collect();
        let (peer, join) = match matches.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(MeshError::Invalid(format!(
                    "no one named `{who}` is waiting for the key; see `nexus mesh approve` with no name"
                )))
            }
            _ => {
                return Err(MeshError::Invalid(format!(
                    "`{who}` matches several newcomers; use the peer id"
                )))
            }
        };
        if let Handout::Refuse(why) = key_handout(&m.keys, &join.invite) {
            return Err(MeshError::Invalid(format!(
                "{} gets no mesh key: {why}",
                join.name
            )));
        }
        let (epoch, root) = self
            .root(mesh)?
            .ok_or_else(|| MeshError::Invalid("this peer holds no mesh key to send".into()))?;
        let newcomer = PeerInfo::newcomer(&peer, &join.name, &join.x25519);
        self.send_key(c, &newcomer, mesh, epoch, &root).await?;
        self.update(|st| {
            if let Some(m) = st.meshes.get_mut(mesh) {
                m.keys.pending.remove(&peer);
                m.keys.granted.insert(peer.clone());
            }
        })?;
        Ok(join.name)
    }

    /// The safety number with `who`, in groups.
    pub(crate) async fn verify_on(
        &self,
        c: &Connection,
        mesh: &str,
        who: &str,
    ) -> Result<(PeerInfo, String), MeshError> {
        let peers = self.peers_opened(c, mesh).await?;
        let p = Self::resolve(&peers, who)?.clone();
        let theirs = unhex(&p.ed25519)?;
        let me = self.identity.peer_id().to_string();
        let digits = safety::safety_number(
            &self.identity.ed25519_public(),
            me.as_bytes(),
            &theirs,
            p.peer.as_bytes(),
        );
        Ok((p, safety::format_groups(&digits)))
    }
}
