//! The broker's storage on a NATS JetStream cluster (`nexus-broker serve
//! --nats URL,...`): the same [`BrokerStore`] as SQLite, so several broker
//! nodes share one state, replicated by JetStream's Raft.
//!
//! Layout (every name and id hex-encoded, so any mesh or peer name is a
//! valid subject token and KV key):
//! - topic history: a stream per mesh, `NEXUS_T_<mesh>`, subjects
//!   `nexus.t.<mesh>.<topic>`; a message's sequence number in its topic is
//!   its stream sequence (it grows within a topic, and skips the other
//!   topics' numbers); `Nats-Msg-Id` `<topic>/<id>` makes a retry or a
//!   second path within the duplicate window one message;
//! - offline DMs: the stream `NEXUS_Q`, subjects `nexus.q.<mesh>.<peer>`,
//!   the id in a `Nexus-Id` header; an acknowledged one is deleted;
//! - meshes, members, invites and invite codes: KV buckets
//!   (`nexus_meshes`, `nexus_members`, `nexus_invites`, `nexus_codes`),
//!   created as streams in the KV layout (async-nats 0.51's
//!   `create_key_value` cannot read server 2.9's account info), a mesh
//!   created with compare-and-set and an invite's uses counted with it.
//!
//! Server 2.9 features only (Debian ships 2.9.10): no per-message TTL, no
//! multi-filter consumers (`tests/jetstream_compat.rs` checks each feature
//! used). The trait is synchronous; the calls run on a runtime of the
//! store's own, so any thread (a connection task, the commit thread) may
//! wait on them.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use nexus_mesh::identity::hex;
use nexus_mesh::store::{Append, Appended, BrokerStore, Member, MeshRecord, Queued};
use nexus_mesh::MeshError;

/// How long JetStream remembers a topic message's id.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// How long one JetStream request (a publish's acknowledgement) may take:
/// short, because a publish that times out is answered with an error and
/// sent again by its peer, and while a stream's leader is re-elected (a
/// NATS node died) waiting longer only delays that.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The use count that marks an invite revoked (as in the SQLite store).
const REVOKED: u32 = u32::MAX;

const BUCKETS: [&str; 4] = [
    "nexus_meshes",
    "nexus_members",
    "nexus_invites",
    "nexus_codes",
];

/// Storage on JetStream.
pub struct JetStreamStore {
    rt: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    js: jetstream::Context,
    meshes: kv::Store,
    members: kv::Store,
    invites: kv::Store,
    codes: kv::Store,
    queue: stream::Stream,
    /// Topic streams known to exist.
    streams: Mutex<HashSet<String>>,
    replicas: usize,
    /// This node's id, in the `Nexus-Node` header of what it stores.
    node: String,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JetStreamStore")
    }
}

impl Drop for JetStreamStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> MeshError {
    move |e| MeshError::Storage(format!("JetStream: {what}: {e}"))
}

/// Runs `f` on `handle` and waits for it from any thread.
fn block<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    f: impl Future<Output = Result<T, MeshError>> + Send + 'static,
) -> Result<T, MeshError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .map_err(|_| MeshError::Storage("JetStream: the store's runtime stopped".into()))?
}

/// Makes (or opens) a stream. A cluster that has just started elects its
/// JetStream leaders for a few seconds, and a stream with three replicas
/// waits for three servers: this waits too, saying so, for up to a minute.
async fn ensure(
    js: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, MeshError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut pause = Duration::from_millis(200);
    loop {
        match js.get_or_create_stream(config.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!(
                    "nexus-broker: JetStream is not ready for {} ({e}); waiting",
                    config.name
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(err("JetStream never became ready")(e)),
        }
    }
}

fn topic_subject(mesh: &str, topic: &str) -> String {
    format!("nexus.t.{}.{}", hex(mesh.as_bytes()), hex(topic.as_bytes()))
}

fn topic_stream(mesh: &str) -> String {
    format!("NEXUS_T_{}", hex(mesh.as_bytes()))
}

fn queue_subject(mesh: &str, to: &str) -> String {
    format!("nexus.q.{}.{}", hex(mesh.as_bytes()), hex(to.as_bytes()))
}

fn member_key(mesh: &str, peer: &str) -> String {
    format!("{}.{}", hex(mesh.as_bytes()), hex(peer.as_bytes()))
}

fn not_found(e: &jetstream::stream::DirectGetError) -> bool {
    matches!(e.kind(), jetstream::stream::DirectGetErrorKind::NotFound)
}

impl JetStreamStore {
    /// Connects to the servers (`nats://h1:4222,nats://h2:4222`, tried in
    /// turn and on reconnects) and makes what is missing, each stream with
    /// `replicas` copies (3 on a three-node cluster, 1 on one server).
    pub fn connect(servers: &str, replicas: usize) -> Result<JetStreamStore, MeshError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nexus-jetstream")
            .enable_all()
            .build()
            .map_err(err("cannot start its runtime"))?;
        let handle = rt.handle().clone();
        let addrs: Vec<async_nats::ServerAddr> = servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                MeshError::Invalid(format!("a NATS server address does not parse: {e}"))
            })?;
        if addrs.is_empty() {
            return Err(MeshError::Invalid(
                "name at least one NATS server: --nats nats://HOST:4222[,...]".into(),
            ));
        }
        let replicas = replicas.max(1);
        let (js, buckets, queue) = block(&handle, async move {
            let client = async_nats::ConnectOptions::new()
                .name("nexus-broker")
                .retry_on_initial_connect()
                .connect(addrs)
                .await
                .map_err(err("cannot connect"))?;
            let mut js = jetstream::new(client);
            js.set_timeout(REQUEST_TIMEOUT);
            let mut buckets = Vec::new();
            for b in BUCKETS {
                ensure(
                    &js,
                    stream::Config {
                        name: format!("KV_{b}"),
                        subjects: vec![format!("$KV.{b}.>")],
                        max_messages_per_subject: 1,
                        allow_rollup: true,
                        deny_delete: true,
                        allow_direct: true,
                        discard: stream::DiscardPolicy::New,
                        num_replicas: replicas,
                        ..Default::default()
                    },
                )
                .await?;
                buckets.push(
                    js.get_key_value(b)
                        .await
                        .map_err(err("cannot open a bucket"))?,
                );
            }
            let queue = ensure(
                &js,
                stream::Config {
                    name: "NEXUS_Q".into(),
                    subjects: vec!["nexus.q.>".into()],
                    duplicate_window: DUPLICATE_WINDOW,
                    allow_direct: true,
                    num_replicas: replicas,
                    ..Default::default()
                },
            )
            .await?;
            Ok((js, buckets, queue))
        })?;
        let mut b = buckets.into_iter();
        let mut next = || {
            b.next()
                .ok_or_else(|| MeshError::Storage("a bucket is missing".into()))
        };
        Ok(JetStreamStore {
            meshes: next()?,
            members: next()?,
            invites: next()?,
            codes: next()?,
            rt: Some(rt),
            handle,
            js,
            queue,
            streams: Mutex::new(HashSet::new()),
            replicas,
            node: nexus_mesh::client::message_id()?,
        })
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The JetStream context (for the node's consumers and heartbeats).
    pub fn context(&self) -> jetstream::Context {
        self.js.clone()
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, MeshError>> + Send + 'static,
    ) -> Result<T, MeshError> {
        block(&self.handle, f)
    }

    /// The topic stream of `mesh`, made on first use.
    fn topic_stream(&self, mesh: &str) -> Result<stream::Stream<()>, MeshError> {
        let name = topic_stream(mesh);
        let js = self.js.clone();
        let replicas = self.replicas;
        let known = self
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&name);
        let subjects = vec![format!("nexus.t.{}.*", hex(mesh.as_bytes()))];
        let n = name.clone();
        let s = self.run(async move {
            if !known {
                js.get_or_create_stream(stream::Config {
                    name: n.clone(),
                    subjects,
                    duplicate_window: DUPLICATE_WINDOW,
                    allow_direct: true,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(err("cannot make a topic stream"))?;
            }
            js.get_stream_no_info(&n)
                .await
                .map_err(err("cannot open a topic stream"))
        })?;
        self.streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name);
        Ok(s)
    }

    /// The messages on `subject` of `s` with stream sequences in
    /// `from..end`, oldest first: direct gets by sequence, 64 in flight
    /// (served by any replica; no consumer, so nothing waits on the
    /// cluster's meta leader), the other topics' messages left out.
    async fn range(
        s: &stream::Stream<()>,
        subject: &str,
        from: u64,
        end: u64,
    ) -> Result<Vec<(u64, bytes::Bytes)>, MeshError> {
        use futures_util::StreamExt;
        let first = match s
            .direct_get_next_for_subject(subject, Some(from.max(1)))
            .await
        {
            Ok(m) if m.sequence < end => m.sequence,
            Ok(_) => return Ok(Vec::new()),
            Err(e) if not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(err("cannot read a topic")(&e)),
        };
        let mut gets = futures_util::stream::iter(first..end)
            .map(|seq| async move { (seq, s.direct_get(seq).await) })
            .buffered(64);
        let mut out = Vec::new();
        while let Some((seq, got)) = gets.next().await {
            match got {
                Ok(m) if m.subject.as_str() == subject => out.push((seq, m.payload)),
                Ok(_) => {}
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(err("cannot read a topic")(&e)),
            }
        }
        Ok(out)
    }

    /// Every message on `subject` of `s` from stream sequence `from` on,
    /// oldest first, while `keep` says to go on.
    async fn scan<I>(
        s: &stream::Stream<I>,
        subject: &str,
        mut from: u64,
        mut keep: impl FnMut(&jetstream::message::StreamMessage) -> bool,
    ) -> Result<(), MeshError> {
        loop {
            match s
                .direct_get_next_for_subject(subject, Some(from.max(1)))
                .await
            {
                Ok(m) => {
                    from = m.sequence + 1;
                    if !keep(&m) {
                        return Ok(());
                    }
                }
                Err(e) if not_found(&e) => return Ok(()),
                Err(e) => return Err(err("cannot read a stream")(&e)),
            }
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<bytes::Bytes, MeshError> {
    serde_json::to_vec(v)
        .map(Into::into)
        .map_err(|e| MeshError::Storage(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, MeshError> {
    serde_json::from_slice(b)
        .map_err(|e| MeshError::Storage(format!("JetStream: a damaged record: {e}")))
}

impl BrokerStore for JetStreamStore {
    fn create_mesh(&self, m: &MeshRecord) -> Result<bool, MeshError> {
        let kv = self.meshes.clone();
        let (key, value) = (hex(m.mesh.as_bytes()), json(m)?);
        self.run(async move {
            match kv.create(key, value).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(err("cannot create a mesh")(&e)),
            }
        })
    }

    fn mesh(&self, mesh: &str) -> Result<Option<MeshRecord>, MeshError> {
        let kv = self.meshes.clone();
        let key = hex(mesh.as_bytes());
        let v = self.run(async move { kv.get(key).await.map_err(err("cannot read a mesh")) })?;
        v.map(|b| parse(&b)).transpose()
    }

    fn put_member(&self, m: &Member) -> Result<(), MeshError> {
        let kv = self.members.clone();
        let (key, value) = (member_key(&m.mesh, &m.peer), json(m)?);
        self.run(async move {
            kv.put(key, value)
                .await
                .map_err(err("cannot store a member"))?;
            Ok(())
        })
    }

    fn member(&self, mesh: &str, peer: &str) -> Result<Option<Member>, MeshError> {
        let kv = self.members.clone();
        let key = member_key(mesh, peer);
        let v = self.run(async move { kv.get(key).await.map_err(err("cannot read a member")) })?;
        v.map(|b| parse(&b)).transpose()
    }

    fn update_member(
        &self,
        mesh: &str,
        peer: &str,
        change: &dyn Fn(&mut Member),
    ) -> Result<Option<Member>, MeshError> {
        // Compare-and-set: read with its revision, change, write only over
        // that revision; another node's write in between means read again.
        let key = member_key(mesh, peer);
        for _ in 0..32 {
            let kv = self.members.clone();
            let k = key.clone();
            let entry =
                self.run(async move { kv.entry(k).await.map_err(err("cannot read a member")) })?;
            let Some(e) = entry.filter(|e| e.operation == kv::Operation::Put) else {
                return Ok(None);
            };
            let mut m: Member = parse(&e.value)?;
            change(&mut m);
            let (kv, k, value, revision) =
                (self.members.clone(), key.clone(), json(&m)?, e.revision);
            let wrote = self.run(async move { Ok(kv.update(k, value, revision).await.is_ok()) })?;
            if wrote {
                return Ok(Some(m));
            }
        }
        Err(MeshError::Storage(
            "JetStream: a member is contended; try again".into(),
        ))
    }

    fn members(&self, mesh: &str) -> Result<Vec<Member>, MeshError> {
        let js = self.js.clone();
        let subject = format!("$KV.nexus_members.{}.*", hex(mesh.as_bytes()));
        let raw = self.run(async move {
            let s = js
                .get_stream_no_info("KV_nexus_members")
                .await
                .map_err(err("cannot open the members"))?;
            let mut out = Vec::new();
            JetStreamStore::scan(&s, &subject, 1, |m| {
                out.push(m.payload.clone());
                true
            })
            .await?;
            Ok(out)
        })?;
        raw.iter().map(|b| parse(b)).collect()
    }

    fn use_invite(&self, mesh: &str, invite: &str, max_uses: u32) -> Result<bool, MeshError> {
        let kv = self.invites.clone();
        let key = format!("{}.{}", hex(mesh.as_bytes()), hex(invite.as_bytes()));
        self.run(async move {
            // Compare-and-set: two nodes counting one invite at once both
            // read, one write wins and the other reads again.
            for _ in 0..32 {
                let entry = kv
                    .entry(key.clone())
                    .await
                    .map_err(err("cannot read an invite"))?;
                let (uses, revision) = match &entry {
                    Some(e) if e.operation == kv::Operation::Put => (
                        std::str::from_utf8(&e.value)
                            .ok()
                            .and_then(|s| s.parse::<u32>().ok())
                            .unwrap_or(REVOKED),
                        Some(e.revision),
                    ),
                    _ => (0, None),
                };
                if uses == REVOKED || uses >= max_uses {
                    return Ok(false);
                }
                let next: bytes::Bytes = (uses + 1).to_string().into();
                let wrote = match revision {
                    Some(r) => kv.update(key.clone(), next, r).await.is_ok(),
                    None => kv.create(key.clone(), next).await.is_ok(),
                };
                if wrote {
                    return Ok(true);
                }
            }
            Err(MeshError::Storage(
                "JetStream: an invite is contended; try again".into(),
            ))
        })
    }

    fn revoke_invite(&self, mesh: &str, invite: &str) -> Result<(), MeshError> {
        let kv = self.invites.clone();
        let key = format!("{}.{}", hex(mesh.as_bytes()), hex(invite.as_bytes()));
        self.run(async move {
            kv.put(key, REVOKED.to_string().into())
                .await
                .map_err(err("cannot revoke an invite"))?;
            Ok(())
        })
    }

    fn enqueue(&self, mesh: &str, to: &str, q: &Queued) -> Result<(), MeshError> {
        let js = self.js.clone();
        let subject = queue_subject(mesh, to);
        let msg = jetstream::message::PublishMessage::build()
            .payload(q.frame.clone().into())
            .header("Nexus-Id", q.id.as_str())
            .header("Nexus-Node", self.node.as_str())
            .message_id(format!("{subject}/{}", q.id));
        self.run(async move {
            js.send_publish(subject, msg)
                .await
                .map_err(err("cannot queue a message"))?
                .await
                .map_err(err("cannot queue a message"))?;
            Ok(())
        })
    }

    fn pending(&self, mesh: &str, to: &str) -> Result<Vec<Queued>, MeshError> {
        let s = self.queue.clone();
        let subject = queue_subject(mesh, to);
        self.run(async move {
            let mut out = Vec::new();
            JetStreamStore::scan(&s, &subject, 1, |m| {
                let id = m.headers.get("Nexus-Id").map(|v| v.as_str().to_string());
                if let Some(id) = id {
                    out.push(Queued {
                        id,
                        frame: m.payload.to_vec(),
                    });
                }
                true
            })
            .await?;
            Ok(out)
        })
    }

    fn ack(&self, mesh: &str, to: &str, id: &str) -> Result<(), MeshError> {
        let s = self.queue.clone();
        let subject = queue_subject(mesh, to);
        let id = id.to_string();
        self.run(async move {
            let mut found = Vec::new();
            JetStreamStore::scan(&s, &subject, 1, |m| {
                if m.headers.get("Nexus-Id").is_some_and(|v| v.as_str() == id) {
                    found.push(m.sequence);
                }
                true
            })
            .await?;
            for seq in found {
                s.delete_message(seq)
                    .await
                    .map_err(err("cannot drop a message"))?;
            }
            Ok(())
        })
    }

    fn append_topics(&self, items: &[Append<'_>]) -> Result<Vec<Appended>, MeshError> {
        // Every mesh's stream first, then every publish in flight at once,
        // then their acknowledgements, in order.
        let mut meshes: Vec<&str> = items.iter().map(|a| a.mesh).collect();
        meshes.sort_unstable();
        meshes.dedup();
        for m in meshes {
            self.topic_stream(m)?;
        }
        let js = self.js.clone();
        let msgs: Vec<(String, jetstream::message::PublishMessage)> = items
            .iter()
            .map(|a| {
                let subject = topic_subject(a.mesh, a.topic);
                let msg = jetstream::message::PublishMessage::build()
                    .payload(bytes::Bytes::copy_from_slice(a.frame))
                    .header("Nexus-Node", self.node.as_str())
                    .message_id(format!("{}/{}", hex(a.topic.as_bytes()), a.id));
                (subject, msg)
            })
            .collect();
        self.run(async move {
            // A stream just made on one server is known to the others a
            // moment later ("no stream found" there): what failed so is
            // published again, under the same ids, for up to 2 s.
            let mut out: Vec<Option<Appended>> = vec![None; msgs.len()];
            let mut tries = 0;
            loop {
                let mut acks = Vec::new();
                let mut last_err = None;
                for (i, (subject, msg)) in msgs.iter().enumerate() {
                    if out[i].is_none() {
                        match js.send_publish(subject.clone(), msg.clone()).await {
                            Ok(a) => acks.push((i, a)),
                            Err(e) => last_err = Some(e.to_string()),
                        }
                    }
                }
                let mut missing_stream = false;
                for (i, a) in acks {
                    match a.await {
                        Ok(ack) => {
                            out[i] = Some(Appended {
                                seq: ack.sequence,
                                fresh: !ack.duplicate,
                            });
                        }
                        Err(e) => {
                            missing_stream |=
                                e.kind() == jetstream::context::PublishErrorKind::StreamNotFound;
                            last_err = Some(e.to_string());
                        }
                    }
                }
                if out.iter().all(Option::is_some) {
                    return Ok(out.into_iter().flatten().collect());
                }
                tries += 1;
                if !missing_stream || tries > 40 {
                    return Err(err("cannot store a topic message")(
                        last_err.unwrap_or_default(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    fn put_invite_code(&self, short: &str, code: &str) -> Result<(), MeshError> {
        let kv = self.codes.clone();
        let (key, value) = (hex(short.as_bytes()), bytes::Bytes::from(code.to_string()));
        self.run(async move {
            kv.put(key, value)
                .await
                .map_err(err("cannot store an invite code"))?;
            Ok(())
        })
    }

    fn invite_code(&self, short: &str) -> Result<Option<String>, MeshError> {
        let kv = self.codes.clone();
        let key = hex(short.as_bytes());
        let v =
            self.run(async move { kv.get(key).await.map_err(err("cannot read an invite code")) })?;
        Ok(v.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn history(
        &self,
        mesh: &str,
        topic: &str,
        before: Option<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, MeshError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let s = self.topic_stream(mesh)?;
        let subject = topic_subject(mesh, topic);
        self.run(async move {
            // No backward read by subject in 2.9: read forward from a start
            // a window before the end, widening the window until the page
            // is full or the stream's start is reached.
            let end = match before {
                Some(b) => b,
                None => {
                    let mut tries = 0;
                    loop {
                        match s.direct_get_last_for_subject(subject.as_str()).await {
                            Ok(m) => break m.sequence + 1,
                            Err(e) if not_found(&e) => return Ok(Vec::new()),
                            Err(e) if tries >= 5 => return Err(err("cannot read a topic")(&e)),
                            Err(_) => {
                                tries += 1;
                                tokio::time::sleep(Duration::from_millis(300)).await;
                            }
                        }
                    }
                }
            };
            let mut window = (limit as u64).saturating_mul(2).max(64);
            loop {
                let start = end.saturating_sub(window).max(1);
                // A read can time out while a stream's leader moves (a NATS
                // node died): it is only a read, so it is tried again.
                let mut tries = 0;
                let got = loop {
                    match JetStreamStore::range(&s, &subject, start, end).await {
                        Ok(g) => break g,
                        Err(e) if tries >= 5 => return Err(e),
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(Duration::from_millis(300)).await;
                        }
                    }
                };
                if got.len() >= limit || start == 1 {
                    let mut left = max_bytes;
                    let mut page = Vec::new();
                    for (seq, f) in got.into_iter().rev().take(limit) {
                        let cost = f.len() + nexus_mesh::store::PAGE_ENTRY_OVERHEAD;
                        if !page.is_empty() && cost > left {
                            break;
                        }
                        left = left.saturating_sub(cost);
                        page.push((seq, f.to_vec()));
                    }
                    return Ok(page);
                }
                window = window.saturating_mul(4);
            }
        })
    }
}
