//! The mesh for Swift and Kotlin: in-process on a phone (there is no
//! daemon there), through `nexusd` on a desktop when one runs.

use std::sync::Arc;
use std::time::Duration;

use nexus_sdk as sdk;
use nexus_sdk::mesh as m;

use crate::Result;

/// Where mesh verbs run.
#[derive(Debug, Clone, Copy, uniffi::Enum)]
pub enum MeshRoute {
    /// Through the daemon when one runs, else in this process.
    Auto,
    /// In this process (a phone app).
    InProcess,
    /// Through the daemon; an error when none runs.
    Daemon,
}

/// A mesh member.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MeshPeer {
    /// Peer id.
    pub peer: String,
    /// Display name (unique in the mesh).
    pub name: String,
    /// Connected now.
    pub online: bool,
    /// Status, opened with the mesh key.
    pub status: String,
    /// Summary, opened with the mesh key.
    pub summary: String,
    /// Capabilities.
    pub caps: Vec<String>,
    /// Blocked.
    pub blocked: bool,
}

fn peer(p: m::MeshPeer) -> MeshPeer {
    MeshPeer {
        peer: p.peer,
        name: p.name,
        online: p.online,
        status: p.status,
        summary: p.summary,
        caps: p.caps,
        blocked: p.blocked,
    }
}

/// What arrived.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum MeshMessage {
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
    },
    /// A notice (a key arrived, someone joined, ...).
    Notice {
        /// What happened.
        text: String,
    },
}

fn message(e: m::MeshEvent) -> MeshMessage {
    match e {
        m::MeshEvent::Dm {
            id,
            from,
            from_name,
            text,
        } => MeshMessage::Dm {
            id,
            from,
            from_name,
            text,
        },
        m::MeshEvent::Topic {
            id,
            topic,
            from,
            from_name,
            text,
            ..
        } => MeshMessage::Topic {
            id,
            topic,
            from,
            from_name,
            text,
        },
        m::MeshEvent::Notice { text } => MeshMessage::Notice { text },
    }
}

/// One inbox item; mark it read by `seq` (a notice has none).
#[derive(Debug, Clone, uniffi::Record)]
pub struct InboxItem {
    /// The inbox row, for `mark_read`.
    pub seq: Option<i64>,
    /// What arrived.
    pub message: MeshMessage,
}

fn item(i: m::InboxItem) -> InboxItem {
    InboxItem {
        seq: i.seq,
        message: message(i.message),
    }
}

/// One entry of a topic's history.
#[derive(Debug, Clone, uniffi::Record)]
pub struct HistoryEntry {
    /// The topic's sequence number.
    pub seq: u64,
    /// The message.
    pub message: MeshMessage,
}

/// A signed invite.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Invitation {
    /// `nexus://join/...`: what to share.
    pub link: String,
    /// The short code registered at the broker.
    pub short_code: String,
    /// The broker.
    pub broker: String,
    /// When it expires, Unix ms.
    pub expires_ms: u64,
}

/// An unread count: `direct`, or `#topic`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct UnreadCount {
    /// Where.
    pub place: String,
    /// How many.
    pub count: u64,
}

/// This peer, or a newcomer waiting for the key.
#[derive(Debug, Clone, uniffi::Record)]
pub struct PeerName {
    /// Peer id.
    pub peer: String,
    /// Name.
    pub name: String,
}

/// A safety number with a member.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Verification {
    /// The member.
    pub peer: MeshPeer,
    /// Digits in groups, to compare out of band.
    pub safety_number: String,
}

/// The agent mesh. `mesh: None` means the current mesh.
#[derive(uniffi::Object)]
pub struct Mesh {
    pub(crate) inner: sdk::Mesh,
}

pub(crate) fn mesh_route(r: MeshRoute) -> sdk::MeshRoute {
    match r {
        MeshRoute::Auto => sdk::MeshRoute::Auto,
        MeshRoute::InProcess => sdk::MeshRoute::InProcess,
        MeshRoute::Daemon => sdk::MeshRoute::Daemon,
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Mesh {
    /// This peer's name and id (made on first use).
    pub async fn identity(&self) -> Result<PeerName> {
        let (name, peer) = self.inner.identity().await?;
        Ok(PeerName { peer, name })
    }

    /// Creates mesh `name` on `broker` (`ws://` or `wss://`), owned by you.
    pub async fn create(
        &self,
        name: String,
        broker: String,
        as_name: Option<String>,
    ) -> Result<()> {
        Ok(self
            .inner
            .create(&name, &broker, as_name.as_deref())
            .await?)
    }

    /// Joins with an invite link (or a short code and `broker`); the mesh's name.
    pub async fn join(
        &self,
        link: String,
        broker: Option<String>,
        as_name: Option<String>,
    ) -> Result<String> {
        Ok(self
            .inner
            .join(&link, broker.as_deref(), as_name.as_deref())
            .await?)
    }

    /// Whether you hold the mesh key yet.
    pub async fn has_key(&self, mesh: Option<String>) -> Result<bool> {
        Ok(self.inner.has_key(mesh.as_deref()).await?)
    }

    /// A signed invite (owner only).
    pub async fn invite(
        &self,
        mesh: Option<String>,
        expires_secs: u64,
        uses: u32,
        role: String,
    ) -> Result<Invitation> {
        let i = self
            .inner
            .invite(
                mesh.as_deref(),
                Duration::from_secs(expires_secs),
                uses,
                &role,
            )
            .await?;
        Ok(Invitation {
            link: i.link,
            short_code: i.short_code,
            broker: i.broker,
            expires_ms: i.expires_ms,
        })
    }

    /// The members.
    pub async fn peers(&self, mesh: Option<String>) -> Result<Vec<MeshPeer>> {
        Ok(self
            .inner
            .peers(mesh.as_deref())
            .await?
            .into_iter()
            .map(peer)
            .collect())
    }

    /// A direct message; its id once the broker stored it.
    pub async fn send(&self, mesh: Option<String>, to: String, text: String) -> Result<String> {
        Ok(self.inner.send(mesh.as_deref(), &to, &text).await?)
    }

    /// A topic message; its id once stored.
    pub async fn publish(
        &self,
        mesh: Option<String>,
        topic: String,
        text: String,
    ) -> Result<String> {
        Ok(self.inner.publish(mesh.as_deref(), &topic, &text).await?)
    }

    /// A page of a topic's history, newest first.
    pub async fn history(
        &self,
        mesh: Option<String>,
        topic: String,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>> {
        Ok(self
            .inner
            .history(mesh.as_deref(), &topic, before, limit)
            .await?
            .into_iter()
            .map(|e| HistoryEntry {
                seq: e.seq,
                message: message(e.message),
            })
            .collect())
    }

    /// Unread items; mark them read once shown.
    pub async fn inbox(&self, mesh: Option<String>) -> Result<Vec<InboxItem>> {
        Ok(self
            .inner
            .inbox(mesh.as_deref())
            .await?
            .into_iter()
            .map(item)
            .collect())
    }

    /// Marks inbox items read.
    pub async fn mark_read(&self, mesh: Option<String>, seqs: Vec<i64>) -> Result<()> {
        Ok(self.inner.mark_read(mesh.as_deref(), &seqs).await?)
    }

    /// Unread counts.
    pub async fn unread(&self, mesh: Option<String>) -> Result<Vec<UnreadCount>> {
        Ok(self
            .inner
            .unread(mesh.as_deref())
            .await?
            .into_iter()
            .map(|(place, count)| UnreadCount { place, count })
            .collect())
    }

    /// Sets your status (sealed under the mesh key).
    pub async fn set_status(&self, mesh: Option<String>, text: String) -> Result<()> {
        Ok(self.inner.set_status(mesh.as_deref(), &text).await?)
    }

    /// Sets your summary (sealed under the mesh key).
    pub async fn set_summary(&self, mesh: Option<String>, text: String) -> Result<()> {
        Ok(self.inner.set_summary(mesh.as_deref(), &text).await?)
    }

    /// Grants capabilities; admins only.
    pub async fn grant(&self, mesh: Option<String>, who: String, caps: Vec<String>) -> Result<()> {
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        Ok(self.inner.grant(mesh.as_deref(), &who, &caps).await?)
    }

    /// Takes capabilities away; admins only.
    pub async fn revoke(&self, mesh: Option<String>, who: String, caps: Vec<String>) -> Result<()> {
        let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
        Ok(self.inner.revoke(mesh.as_deref(), &who, &caps).await?)
    }

    /// Blocks a member and rotates the mesh key; the new epoch.
    pub async fn block(&self, mesh: Option<String>, who: String) -> Result<u32> {
        Ok(self.inner.block(mesh.as_deref(), &who).await?)
    }

    /// Sends the mesh key to a newcomer waiting for approval; their name.
    pub async fn approve(&self, mesh: Option<String>, who: String) -> Result<String> {
        Ok(self.inner.approve(mesh.as_deref(), &who).await?)
    }

    /// Newcomers waiting for the mesh key.
    pub async fn pending(&self, mesh: Option<String>) -> Result<Vec<PeerName>> {
        Ok(self
            .inner
            .pending(mesh.as_deref())
            .await?
            .into_iter()
            .map(|(peer, j)| PeerName { peer, name: j.name })
            .collect())
    }

    /// Asks the owner and admins for the mesh key; how many were asked.
    pub async fn request_key(&self, mesh: Option<String>) -> Result<u32> {
        let n = self.inner.request_key(mesh.as_deref()).await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The safety number with a member.
    pub async fn verify(&self, mesh: Option<String>, who: String) -> Result<Verification> {
        let (p, n) = self.inner.verify(mesh.as_deref(), &who).await?;
        Ok(Verification {
            peer: peer(p),
            safety_number: n,
        })
    }

    /// Topics joined.
    pub async fn topics(&self, mesh: Option<String>) -> Result<Vec<String>> {
        Ok(self.inner.topics(mesh.as_deref()).await?)
    }

    /// Joins (`join = true`) or leaves a topic.
    pub async fn topic(&self, mesh: Option<String>, topic: String, join: bool) -> Result<()> {
        Ok(self.inner.topic(mesh.as_deref(), &topic, join).await?)
    }

    /// Writes an encrypted backup of the identity and mesh keys.
    pub async fn backup(&self, path: String, passphrase: String) -> Result<()> {
        Ok(self
            .inner
            .backup(std::path::Path::new(&path), &passphrase)
            .await?)
    }

    /// Restores from a backup; `force` replaces an identity in use.
    pub async fn restore(
        &self,
        backup: Vec<u8>,
        passphrase: String,
        force: bool,
    ) -> Result<PeerName> {
        let (name, peer) = self.inner.restore(&backup, &passphrase, force).await?;
        Ok(PeerName { peer, name })
    }

    /// Follows the inbox.
    pub async fn follow(&self, mesh: Option<String>) -> Result<Arc<MeshFollow>> {
        let f = self.inner.follow(mesh.as_deref()).await?;
        Ok(Arc::new(MeshFollow {
            inner: tokio::sync::Mutex::new(f),
        }))
    }
}

/// A followed inbox: call `next` for each item.
#[derive(uniffi::Object)]
pub struct MeshFollow {
    inner: tokio::sync::Mutex<m::MeshFollow>,
}

#[uniffi::export(async_runtime = "tokio")]
impl MeshFollow {
    /// The next item (the one before it is marked read).
    pub async fn next(&self) -> Result<InboxItem> {
        Ok(item(self.inner.lock().await.next().await?))
    }

    /// Marks the item handed out last read.
    pub async fn commit(&self) -> Result<()> {
        Ok(self.inner.lock().await.commit().await?)
    }
}
