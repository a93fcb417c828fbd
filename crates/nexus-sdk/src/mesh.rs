//! [`Mesh`]: the agent mesh from any frontend. One verb runs in one of two
//! places, chosen per call by [`MeshRoute`]: through the resident daemon
//! (`nexusd`), on the connection it holds, or in this process, on a
//! connection of its own. Both store a message in the local inbox before
//! acknowledging it, so neither loses one. A phone app (uniffi) has no
//! daemon and runs in-process.
//!
//! ```no_run
//! # async fn f() -> nexus_sdk::Result<()> {
//! let mesh = nexus_sdk::Client::new()?.mesh()?;
//! mesh.send(None, "bob", "hello").await?;
//! for item in mesh.inbox(None).await? {
//!     println!("{:?}", item.message);
//!     if let Some(seq) = item.seq {
//!         mesh.mark_read(None, &[seq]).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::daemon::DaemonError;
use nexus_core::{NexusHome, Vault};
use nexus_mesh::peer::{Answer, Follow, Op, Peer};
use nexus_mesh::MeshError;
use serde_json::json;

use crate::{Error, ErrorCode, Result};

pub use nexus_mesh::frame::PeerInfo as MeshPeer;
pub use nexus_mesh::peer::{HistoryEntry, Incoming as MeshEvent, Item as InboxItem};
pub use nexus_mesh::policy::PendingJoin;

/// Where mesh verbs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MeshRoute {
    /// Through the daemon when one runs for this home, else in-process.
    #[default]
    Auto,
    /// Always in this process.
    InProcess,
    /// Always through the daemon (an error when none runs).
    Daemon,
}

/// A signed invite.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invitation {
    /// `nexus://join/...`: what to share.
    pub link: String,
    /// The full code.
    pub code: String,
    /// The short code registered at the broker (`join CODE --broker URL`).
    pub short_code: String,
    /// The broker.
    pub broker: String,
    /// When it expires, Unix ms.
    pub expires_ms: u64,
}

/// Opens the vault when a verb first needs it in this process.
pub(crate) type VaultLoader = Arc<dyn Fn() -> Result<Arc<dyn Vault>> + Send + Sync>;

struct Inner {
    home: NexusHome,
    /// Opened on first in-process use: a verb through the daemon never
    /// opens it (the daemon holds the identity and keys), so it costs no
    /// passphrase derivation.
    vault: std::sync::Mutex<Option<Arc<dyn Vault>>>,
    open_vault: VaultLoader,
    route: MeshRoute,
    /// Loaded on first in-process use.
    peer: tokio::sync::Mutex<Option<Peer>>,
}

/// The mesh: membership, messages, presence and keys. Cheap to clone.
/// `mesh: None` means the current mesh (the last created or joined).
#[derive(Clone)]
pub struct Mesh {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("home", &self.inner.home.root())
            .field("route", &self.inner.route)
            .finish_non_exhaustive()
    }
}

impl From<MeshError> for Error {
    fn from(e: MeshError) -> Self {
        let code = match e {
            MeshError::Io(_) => ErrorCode::Network,
            MeshError::Storage(_) => ErrorCode::Internal,
            _ => ErrorCode::Mesh,
        };
        Error::new(code, e.to_string()).with_source(e)
    }
}

impl From<DaemonError> for Error {
    fn from(e: DaemonError) -> Self {
        match e {
            DaemonError::Mesh(m) => m.into(),
            DaemonError::OtherVersion { .. } => Error::config(e.to_string()),
            other => Error::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

fn unexpected(a: &Answer) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("the mesh answered something unexpected: {a:?}"),
    )
}

/// How long a verb through the daemon may take (a block re-keys everyone).
const DAEMON_WAIT: Duration = Duration::from_secs(120);

impl Mesh {
    pub(crate) fn new(home: NexusHome, open_vault: VaultLoader, route: MeshRoute) -> Mesh {
        Mesh {
            inner: Arc::new(Inner {
                home,
                vault: std::sync::Mutex::new(None),
                open_vault,
                route,
                peer: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The same mesh, routed otherwise.
    pub fn with_route(&self, route: MeshRoute) -> Mesh {
        let m = Mesh::new(
            self.inner.home.clone(),
            self.inner.open_vault.clone(),
            route,
        );
        *m.inner
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self
            .inner
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        m
    }

    fn vault(&self) -> Result<Arc<dyn Vault>> {
        let mut slot = self
            .inner
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = &*slot {
            return Ok(v.clone());
        }
        let v = (self.inner.open_vault)()?;
        *slot = Some(v.clone());
        Ok(v)
    }

    /// The home this mesh state lives in.
    pub fn home(&self) -> NexusHome {
        self.inner.home.clone()
    }

    /// Whether a daemon runs for this home (and speaks this version).
    pub async fn daemon_running(&self) -> bool {
        crate::daemon::call(&self.inner.home, "status")
            .await
            .is_ok()
    }

    async fn with_peer<T>(
        &self,
        alias: Option<&str>,
        f: impl AsyncFnOnce(&mut Peer) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self.inner.peer.lock().await;
        let peer = match &mut *slot {
            Some(p) => {
                p.reload()?;
                p
            }
            None => slot.insert(Peer::load(self.inner.home.clone(), self.vault()?, alias)?),
        };
        f(peer).await
    }

    /// Runs one verb where [`MeshRoute`] says.
    pub async fn run(&self, mesh: Option<&str>, op: Op) -> Result<Answer> {
        if self.inner.route != MeshRoute::InProcess {
            let params = json!({"mesh": mesh, "op": op});
            match crate::daemon::call_with(&self.inner.home, "mesh", params, DAEMON_WAIT).await {
                Ok(v) => {
                    return serde_json::from_value(v).map_err(|e| {
                        Error::new(ErrorCode::Internal, format!("nexusd answered: {e}"))
                    })
                }
                Err(DaemonError::NotRunning(_)) if self.inner.route == MeshRoute::Auto => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.with_peer(None, async |p| {
            let name = p.mesh_name(mesh)?;
            Ok(p.run(&name, op).await?)
        })
        .await
    }

    /// This peer's name and id (the identity is made on first use).
    pub async fn identity(&self) -> Result<(String, String)> {
        self.with_peer(None, async |p| {
            Ok((
                p.identity().name().to_string(),
                p.identity().peer_id().to_string(),
            ))
        })
        .await
    }

    /// The mesh verbs act on by default.
    pub fn current(&self) -> Result<String> {
        Ok(nexus_mesh::peer::current_mesh(&self.inner.home)?)
    }

    /// Creates mesh `name` on `broker`, owned by this peer; `as_name` names
    /// a new identity (ignored when one exists).
    pub async fn create(&self, name: &str, broker: &str, as_name: Option<&str>) -> Result<()> {
        self.with_peer(as_name, async |p| Ok(p.create(name, broker).await?))
            .await
    }

    /// Joins with an invite link, or a short code and its broker. Returns
    /// the mesh's name.
    pub async fn join(
        &self,
        link: &str,
        broker: Option<&str>,
        as_name: Option<&str>,
    ) -> Result<String> {
        self.with_peer(as_name, async |p| Ok(p.join(link, broker).await?))
            .await
    }

    /// Whether this peer holds the mesh key (a joiner gets it from the owner).
    pub async fn has_key(&self, mesh: Option<&str>) -> Result<bool> {
        self.with_peer(None, async |p| {
            let name = p.mesh_name(mesh)?;
            Ok(p.root(&name)?.is_some())
        })
        .await
    }

    /// A signed invite (owner only).
    pub async fn invite(
        &self,
        mesh: Option<&str>,
        expires: Duration,
        uses: u32,
        role: &str,
    ) -> Result<Invitation> {
        let op = Op::Invite {
            expires_secs: expires.as_secs(),
            uses,
            role: role.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Invite {
                link,
                code,
                short_code,
                broker,
                expires_ms,
            } => Ok(Invitation {
                link,
                code,
                short_code,
                broker,
                expires_ms,
            }),
            a => Err(unexpected(&a)),
        }
    }

    /// The members, with presence, status and summary.
    pub async fn peers(&self, mesh: Option<&str>) -> Result<Vec<MeshPeer>> {
        match self.run(mesh, Op::Peers).await? {
            Answer::Peers { peers } => Ok(peers),
            a => Err(unexpected(&a)),
        }
    }

    /// A direct message to `to` (a name, peer id or its first characters);
    /// returns its id once the broker stored it.
    pub async fn send(&self, mesh: Option<&str>, to: &str, text: &str) -> Result<String> {
        let op = Op::Send {
            to: to.to_string(),
            text: text.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Sent { id } => Ok(id),
            a => Err(unexpected(&a)),
        }
    }

    /// Publishes to a topic; returns the message id once stored.
    pub async fn publish(&self, mesh: Option<&str>, topic: &str, text: &str) -> Result<String> {
        let op = Op::Publish {
            topic: topic.to_string(),
            text: text.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Sent { id } => Ok(id),
            a => Err(unexpected(&a)),
        }
    }

    /// A page of a topic's history, newest first.
    pub async fn history(
        &self,
        mesh: Option<&str>,
        topic: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        let op = Op::History {
            topic: topic.to_string(),
            before,
            limit,
        };
        match self.run(mesh, op).await? {
            Answer::History { entries } => Ok(entries),
            a => Err(unexpected(&a)),
        }
    }

    async fn done(&self, mesh: Option<&str>, op: Op) -> Result<()> {
        match self.run(mesh, op).await? {
            Answer::Done => Ok(()),
            a => Err(unexpected(&a)),
        }
    }

    /// Sets this peer's status (sealed under the mesh key).
    pub async fn set_status(&self, mesh: Option<&str>, text: &str) -> Result<()> {
        let op = Op::Presence {
            status: Some(text.to_string()),
            summary: None,
        };
        self.done(mesh, op).await
    }

    /// Sets this peer's summary (sealed under the mesh key).
    pub async fn set_summary(&self, mesh: Option<&str>, text: &str) -> Result<()> {
        let op = Op::Presence {
            status: None,
            summary: Some(text.to_string()),
        };
        self.done(mesh, op).await
    }

    /// Grants capabilities (`read`, `dm`, `broadcast`, `admin`); admins only.
    pub async fn grant(&self, mesh: Option<&str>, who: &str, caps: &[&str]) -> Result<()> {
        self.caps(mesh, who, caps, false).await
    }

    /// Takes capabilities away; admins only.
    pub async fn revoke(&self, mesh: Option<&str>, who: &str, caps: &[&str]) -> Result<()> {
        self.caps(mesh, who, caps, true).await
    }

    async fn caps(&self, mesh: Option<&str>, who: &str, caps: &[&str], revoke: bool) -> Result<()> {
        if caps.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                format!("say which capabilities to change for {who}: read, dm, broadcast, admin"),
            ));
        }
        let op = Op::Grant {
            who: who.to_string(),
            caps: caps.iter().map(|c| c.to_string()).collect(),
            revoke,
        };
        self.done(mesh, op).await
    }

    /// Blocks a member and rotates the mesh key; returns the new epoch.
    pub async fn block(&self, mesh: Option<&str>, who: &str) -> Result<u32> {
        let op = Op::Block {
            who: who.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Blocked { epoch } => Ok(epoch),
            a => Err(unexpected(&a)),
        }
    }

    /// Sends the mesh key to a newcomer waiting for approval; their name.
    pub async fn approve(&self, mesh: Option<&str>, who: &str) -> Result<String> {
        let op = Op::Approve {
            who: who.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Approved { name } => Ok(name),
            a => Err(unexpected(&a)),
        }
    }

    /// Newcomers waiting for the mesh key, by peer id.
    pub async fn pending(&self, mesh: Option<&str>) -> Result<Vec<(String, PendingJoin)>> {
        self.with_peer(None, async |p| {
            let name = p.mesh_name(mesh)?;
            Ok(p.pending(&name)?)
        })
        .await
    }

    /// Asks the owner and admins for the current mesh key; how many.
    pub async fn request_key(&self, mesh: Option<&str>) -> Result<usize> {
        match self.run(mesh, Op::RequestKey).await? {
            Answer::Asked { count } => Ok(count),
            a => Err(unexpected(&a)),
        }
    }

    /// The safety number with a member, to compare out of band.
    pub async fn verify(&self, mesh: Option<&str>, who: &str) -> Result<(MeshPeer, String)> {
        let op = Op::Verify {
            who: who.to_string(),
        };
        match self.run(mesh, op).await? {
            Answer::Verified {
                peer,
                safety_number,
            } => Ok((peer, safety_number)),
            a => Err(unexpected(&a)),
        }
    }

    /// What the inbox holds unread (fetched from the broker first when no
    /// daemon keeps it). Nothing is marked read: call
    /// [`mark_read`](Self::mark_read) with the `seq`s once shown.
    pub async fn inbox(&self, mesh: Option<&str>) -> Result<Vec<InboxItem>> {
        match self.run(mesh, Op::Inbox).await? {
            Answer::Inbox { items } => Ok(items),
            a => Err(unexpected(&a)),
        }
    }

    /// Marks inbox items read.
    pub async fn mark_read(&self, mesh: Option<&str>, seqs: &[i64]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.done(
            mesh,
            Op::Shown {
                seqs: seqs.to_vec(),
            },
        )
        .await
    }

    /// Unread counts: `("direct", n)` and `("#topic", n)`.
    pub async fn unread(&self, mesh: Option<&str>) -> Result<Vec<(String, u64)>> {
        match self.run(mesh, Op::Unread).await? {
            Answer::Unread { counts } => Ok(counts),
            a => Err(unexpected(&a)),
        }
    }

    /// Topics joined.
    pub async fn topics(&self, mesh: Option<&str>) -> Result<Vec<String>> {
        self.with_peer(None, async |p| {
            let name = p.mesh_name(mesh)?;
            Ok(p.state()
                .meshes
                .get(&name)
                .map(|m| m.topics.clone())
                .unwrap_or_default())
        })
        .await
    }

    /// Joins (or, with `join: false`, leaves) a topic: its messages are
    /// kept in the inbox from then on.
    pub async fn topic(&self, mesh: Option<&str>, topic: &str, join: bool) -> Result<()> {
        let name = match mesh {
            Some(m) => m.to_string(),
            None => self.current()?,
        };
        nexus_mesh::peer::join_topic(&self.inner.home, &name, topic, join)?;
        Ok(())
    }

    /// Writes an encrypted backup of the identity and mesh keys to `file`.
    pub async fn backup(&self, file: &std::path::Path, passphrase: &str) -> Result<()> {
        self.with_peer(None, async |p| Ok(p.backup_to(file, passphrase)?))
            .await
    }

    /// Restores from a backup; an identity in use is replaced only with
    /// `force` (and kept aside). Returns the restored name and peer id.
    pub async fn restore(
        &self,
        backup: &[u8],
        passphrase: &str,
        force: bool,
    ) -> Result<(String, String)> {
        let p = Peer::restore(
            self.inner.home.clone(),
            self.vault()?,
            backup,
            passphrase,
            force,
        )?;
        let who = (
            p.identity().name().to_string(),
            p.identity().peer_id().to_string(),
        );
        *self.inner.peer.lock().await = Some(p);
        Ok(who)
    }

    /// Follows the inbox: an async stream of what arrives. An item handed
    /// out is marked read when the next one is asked for (so one that was
    /// never shown comes back after a crash).
    pub async fn follow(&self, mesh: Option<&str>) -> Result<MeshFollow> {
        let name = match mesh {
            Some(m) => m.to_string(),
            None => self.current()?,
        };
        let daemon = match self.inner.route {
            MeshRoute::InProcess => false,
            MeshRoute::Daemon => true,
            MeshRoute::Auto => self.daemon_running().await,
        };
        let via = if daemon {
            Via::Daemon {
                seen: 0,
                ready: Default::default(),
                trouble: None,
            }
        } else {
            let peer = Peer::load(self.inner.home.clone(), self.vault()?, None)?;
            Via::InProcess(Box::new(Follow::new(peer, &name)))
        };
        Ok(MeshFollow {
            mesh: self.with_route(if daemon {
                MeshRoute::Daemon
            } else {
                MeshRoute::InProcess
            }),
            name,
            via,
            last: None,
        })
    }
}

enum Via {
    Daemon {
        seen: u64,
        ready: std::collections::VecDeque<InboxItem>,
        /// What is wrong now, said once.
        trouble: Option<String>,
    },
    InProcess(Box<Follow>),
}

/// A followed inbox; see [`Mesh::follow`].
pub struct MeshFollow {
    mesh: Mesh,
    name: String,
    via: Via,
    last: Option<i64>,
}

impl std::fmt::Debug for MeshFollow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshFollow")
            .field("mesh", &self.name)
            .finish_non_exhaustive()
    }
}

impl MeshFollow {
    /// Whether this follows through the daemon.
    pub fn through_daemon(&self) -> bool {
        matches!(self.via, Via::Daemon { .. })
    }

    /// Marks the item handed out last read (done by `next` too).
    pub async fn commit(&mut self) -> Result<()> {
        let Some(seq) = self.last.take() else {
            return Ok(());
        };
        match &mut self.via {
            Via::InProcess(f) => Ok(f.shown(&[seq])?),
            Via::Daemon { .. } => self.mesh.mark_read(Some(&self.name), &[seq]).await,
        }
    }

    /// The next item, waiting for one. A lost broker is said as a notice
    /// (once) and waited out; through the daemon, a stopped daemon is an
    /// error.
    pub async fn next(&mut self) -> Result<InboxItem> {
        self.commit().await?;
        let item = match &mut self.via {
            Via::InProcess(f) => f.next().await?,
            Via::Daemon {
                seen,
                ready,
                trouble,
            } => loop {
                if let Some(i) = ready.pop_front() {
                    break i;
                }
                match self.mesh.inbox(Some(&self.name)).await {
                    Ok(items) => {
                        *trouble = None;
                        ready.extend(items);
                    }
                    Err(e) if e.code() == ErrorCode::Network => {
                        let said = trouble.replace(e.to_string());
                        if said.is_none() {
                            ready.push_back(InboxItem {
                                seq: None,
                                message: MeshEvent::Notice {
                                    text: format!("{e}; waiting"),
                                },
                            });
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(e),
                }
                if !ready.is_empty() {
                    continue;
                }
                let v = crate::daemon::call_with(
                    &self.mesh.inner.home,
                    "mesh.wait",
                    json!({"mesh": self.name, "seen": *seen, "timeout_ms": 25_000}),
                    Duration::from_secs(40),
                )
                .await?;
                *seen = v
                    .get("stored")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            },
        };
        self.last = item.seq;
        Ok(item)
    }
}

/// One inbox item as JSON for frontends (MCP tools, the gateway):
/// `{id, kind: dm|topic|notice, from, from_id, topic, text}`, plus
/// `bridged: {origin_mesh, origin_from, origin_id, hops}` for a bridge's
/// copy; `id` is the inbox row (`null` for a notice).
pub fn item_json(item: &InboxItem) -> serde_json::Value {
    let (kind, from, topic, text) = match &item.message {
        MeshEvent::Dm {
            from_name, text, ..
        } => ("dm", from_name.as_str(), None, text.as_str()),
        MeshEvent::Topic {
            from_name,
            topic,
            text,
            ..
        } => (
            "topic",
            from_name.as_str(),
            Some(topic.as_str()),
            text.as_str(),
        ),
        MeshEvent::Notice { text } => ("notice", "", None, text.as_str()),
    };
    let from_id = match &item.message {
        MeshEvent::Dm { from, .. } | MeshEvent::Topic { from, .. } => Some(from.as_str()),
        MeshEvent::Notice { .. } => None,
    };
    let mut v = json!({"id": item.seq, "kind": kind, "from": from, "from_id": from_id, "topic": topic, "text": text});
    if let MeshEvent::Topic {
        bridged: Some(b), ..
    } = &item.message
    {
        v["bridged"] = json!({
            "origin_mesh": b.origin.mesh_name,
            "origin_from": b.origin.from,
            "origin_id": b.origin.id,
            "hops": b.hops,
        });
    }
    v
}
