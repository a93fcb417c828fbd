//! `Mesh`: the agent mesh from Node. Every method returns a Promise;
//! values are plain objects in the shapes `nexus mesh ... --json` prints
//! (typed in header.d.ts).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use nexus_sdk as sdk;
use serde_json::Value;

use crate::{promise, Shared};

fn json<T: serde::Serialize>(v: T) -> sdk::Result<Value> {
    serde_json::to_value(v).map_err(|e| sdk::Error::new(sdk::ErrorCode::Internal, e.to_string()))
}

/// Parses a route name.
pub(crate) fn route(name: &str) -> Result<sdk::MeshRoute> {
    match name {
        "auto" => Ok(sdk::MeshRoute::Auto),
        "in_process" => Ok(sdk::MeshRoute::InProcess),
        "daemon" => Ok(sdk::MeshRoute::Daemon),
        other => Err(Error::new(
            Status::InvalidArg,
            format!("route is \"auto\", \"in_process\" or \"daemon\", not {other:?}"),
        )),
    }
}

/// Options of [`Mesh::invite`].
#[napi(object)]
pub struct InviteOptions {
    /// Valid for this many seconds (default a day).
    pub expires_secs: Option<u32>,
    /// Joins it admits (default 1).
    pub uses: Option<u32>,
    /// The role it grants (default `member`).
    pub role: Option<String>,
}

/// The agent mesh. `mesh` arguments default to the current mesh (the last
/// created or joined).
#[napi]
pub struct Mesh {
    pub(crate) inner: sdk::Mesh,
    pub(crate) shared: Arc<Shared>,
}

macro_rules! call {
    ($self:ident, $env:ident, |$m:ident| $body:expr) => {{
        let $m = $self.inner.clone();
        promise($env, &$self.shared, async move { $body }, |_, v| Ok(v))
    }};
}

#[napi]
impl Mesh {
    /// `[name, peerId]` of this peer (made on first use).
    #[napi(ts_return_type = "Promise<[string, string]>")]
    pub fn identity<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<String>>> {
        call!(self, env, |m| m.identity().await.map(|(a, b)| vec![a, b]))
    }

    /// Whether a daemon runs for this home.
    #[napi]
    pub fn daemon_running<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, bool>> {
        call!(self, env, |m| Ok(m.daemon_running().await))
    }

    /// Creates mesh `name` on `broker` (`ws://host:port`), owned by you.
    #[napi]
    pub fn create<'env>(
        &self,
        env: &'env Env,
        name: String,
        broker: String,
        as_name: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m
            .create(&name, &broker, as_name.as_deref())
            .await)
    }

    /// Joins with an invite link (or a short code and `broker`); resolves
    /// to the mesh's name.
    #[napi]
    pub fn join<'env>(
        &self,
        env: &'env Env,
        link: String,
        broker: Option<String>,
        as_name: Option<String>,
    ) -> Result<PromiseRaw<'env, String>> {
        call!(self, env, |m| m
            .join(&link, broker.as_deref(), as_name.as_deref())
            .await)
    }

    /// Whether you hold the mesh key yet.
    #[napi]
    pub fn has_key<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, bool>> {
        call!(self, env, |m| m.has_key(mesh.as_deref()).await)
    }

    /// A signed invite (owner only).
    #[napi(ts_return_type = "Promise<Invitation>")]
    pub fn invite<'env>(
        &self,
        env: &'env Env,
        options: Option<InviteOptions>,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        let o = options.unwrap_or(InviteOptions {
            expires_secs: None,
            uses: None,
            role: None,
        });
        let expires = Duration::from_secs(u64::from(o.expires_secs.unwrap_or(86_400)));
        let uses = o.uses.unwrap_or(1);
        let role = o.role.unwrap_or_else(|| "member".into());
        call!(self, env, |m| json(
            m.invite(mesh.as_deref(), expires, uses, &role).await?
        ))
    }

    /// The members.
    #[napi(ts_return_type = "Promise<MeshPeer[]>")]
    pub fn peers<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        call!(self, env, |m| json(m.peers(mesh.as_deref()).await?))
    }

    /// A direct message; resolves to its id once the broker stored it.
    #[napi]
    pub fn send<'env>(
        &self,
        env: &'env Env,
        to: String,
        text: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, String>> {
        call!(self, env, |m| m.send(mesh.as_deref(), &to, &text).await)
    }

    /// A topic message; resolves to its id once stored.
    #[napi]
    pub fn publish<'env>(
        &self,
        env: &'env Env,
        topic: String,
        text: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, String>> {
        call!(self, env, |m| m
            .publish(mesh.as_deref(), &topic, &text)
            .await)
    }

    /// A page of a topic's history, newest first.
    #[napi(ts_return_type = "Promise<HistoryEntry[]>")]
    pub fn history<'env>(
        &self,
        env: &'env Env,
        topic: String,
        before: Option<i64>,
        limit: Option<u32>,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        let before = before.and_then(|b| u64::try_from(b).ok());
        call!(self, env, |m| json(
            m.history(mesh.as_deref(), &topic, before, limit.unwrap_or(50))
                .await?
        ))
    }

    /// Unread items; mark them read with `markRead` once shown.
    #[napi(ts_return_type = "Promise<InboxItem[]>")]
    pub fn inbox<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        call!(self, env, |m| json(m.inbox(mesh.as_deref()).await?))
    }

    /// Marks inbox items read, by `seq`.
    #[napi]
    pub fn mark_read<'env>(
        &self,
        env: &'env Env,
        seqs: Vec<i64>,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m.mark_read(mesh.as_deref(), &seqs).await)
    }

    /// Unread counts: `{ direct: n, "#topic": n }`.
    #[napi(ts_return_type = "Promise<Record<string, number>>")]
    pub fn unread<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        call!(self, env, |m| json(
            m.unread(mesh.as_deref())
                .await?
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>()
        ))
    }

    /// Sets your status (sealed under the mesh key).
    #[napi]
    pub fn set_status<'env>(
        &self,
        env: &'env Env,
        text: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m.set_status(mesh.as_deref(), &text).await)
    }

    /// Sets your summary (sealed under the mesh key).
    #[napi]
    pub fn set_summary<'env>(
        &self,
        env: &'env Env,
        text: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m.set_summary(mesh.as_deref(), &text).await)
    }

    /// Grants capabilities (`read`, `dm`, `broadcast`, `admin`); admins only.
    #[napi]
    pub fn grant<'env>(
        &self,
        env: &'env Env,
        who: String,
        caps: Vec<String>,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| {
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            m.grant(mesh.as_deref(), &who, &caps).await
        })
    }

    /// Takes capabilities away; admins only.
    #[napi]
    pub fn revoke<'env>(
        &self,
        env: &'env Env,
        who: String,
        caps: Vec<String>,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| {
            let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
            m.revoke(mesh.as_deref(), &who, &caps).await
        })
    }

    /// Blocks a member and rotates the mesh key; resolves to the new epoch.
    #[napi]
    pub fn block<'env>(
        &self,
        env: &'env Env,
        who: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, u32>> {
        call!(self, env, |m| m.block(mesh.as_deref(), &who).await)
    }

    /// Sends the mesh key to a newcomer waiting for approval; their name.
    #[napi]
    pub fn approve<'env>(
        &self,
        env: &'env Env,
        who: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, String>> {
        call!(self, env, |m| m.approve(mesh.as_deref(), &who).await)
    }

    /// Newcomers waiting for the key.
    #[napi(ts_return_type = "Promise<{ peer: string; name: string; invite: string }[]>")]
    pub fn pending<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        call!(self, env, |m| {
            json(
            m.pending(mesh.as_deref())
                .await?
                .into_iter()
                .map(|(peer, j)| serde_json::json!({"peer": peer, "name": j.name, "invite": j.invite}))
                .collect::<Vec<_>>()
        )
        })
    }

    /// Asks the owner and admins for the mesh key; how many were asked.
    #[napi]
    pub fn request_key<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, u32>> {
        call!(self, env, |m| m
            .request_key(mesh.as_deref())
            .await
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    }

    /// The safety number with a member, to compare out of band.
    #[napi(ts_return_type = "Promise<{ peer: MeshPeer; safetyNumber: string }>")]
    pub fn verify<'env>(
        &self,
        env: &'env Env,
        who: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Value>> {
        call!(self, env, |m| {
            let (peer, n) = m.verify(mesh.as_deref(), &who).await?;
            Ok(serde_json::json!({"peer": peer, "safetyNumber": n}))
        })
    }

    /// Topics joined.
    #[napi]
    pub fn topics<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        call!(self, env, |m| m.topics(mesh.as_deref()).await)
    }

    /// Joins a topic: its messages are kept in the inbox from then on.
    #[napi]
    pub fn join_topic<'env>(
        &self,
        env: &'env Env,
        topic: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m.topic(mesh.as_deref(), &topic, true).await)
    }

    /// Leaves a topic.
    #[napi]
    pub fn leave_topic<'env>(
        &self,
        env: &'env Env,
        topic: String,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m.topic(mesh.as_deref(), &topic, false).await)
    }

    /// Writes an encrypted backup of your identity and mesh keys.
    #[napi]
    pub fn backup<'env>(
        &self,
        env: &'env Env,
        path: String,
        passphrase: String,
    ) -> Result<PromiseRaw<'env, ()>> {
        call!(self, env, |m| m
            .backup(std::path::Path::new(&path), &passphrase)
            .await)
    }

    /// Restores from a backup; `force` replaces an identity in use (kept
    /// aside). Resolves to `[name, peerId]`.
    #[napi(ts_return_type = "Promise<[string, string]>")]
    pub fn restore<'env>(
        &self,
        env: &'env Env,
        backup: Buffer,
        passphrase: String,
        force: Option<bool>,
    ) -> Result<PromiseRaw<'env, Vec<String>>> {
        let bytes = backup.to_vec();
        call!(self, env, |m| m
            .restore(&bytes, &passphrase, force.unwrap_or(false))
            .await
            .map(|(a, b)| vec![a, b]))
    }

    /// Follows the inbox: an async iterable of items as they arrive. An
    /// item is marked read when the next one is asked for (or on `commit`).
    #[napi(ts_return_type = "Promise<MeshFollow & AsyncIterable<InboxItem>>")]
    pub fn follow<'env>(
        &self,
        env: &'env Env,
        mesh: Option<String>,
    ) -> Result<PromiseRaw<'env, MeshFollow>> {
        let m = self.inner.clone();
        let shared = self.shared.clone();
        promise(
            env,
            &self.shared,
            async move { m.follow(mesh.as_deref()).await },
            move |_, f| {
                Ok(MeshFollow {
                    inner: Arc::new(tokio::sync::Mutex::new(f)),
                    shared,
                })
            },
        )
    }
}

/// A followed inbox (`for await (const item of await mesh.follow())`).
#[napi]
pub struct MeshFollow {
    inner: Arc<tokio::sync::Mutex<sdk::mesh::MeshFollow>>,
    shared: Arc<Shared>,
}

#[napi]
impl MeshFollow {
    /// The next item, as the async iterator protocol wants it.
    #[napi(ts_return_type = "Promise<IteratorResult<InboxItem, undefined>>")]
    pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Value>> {
        let f = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move {
                let item = f.lock().await.next().await?;
                Ok(serde_json::json!({"done": false, "value": json(item)?}))
            },
            |_, v| Ok(v),
        )
    }

    /// Marks the item handed out last read.
    #[napi]
    pub fn commit<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let f = self.inner.clone();
        promise(
            env,
            &self.shared,
            async move { f.lock().await.commit().await },
            |_, v| Ok(v),
        )
    }
}
