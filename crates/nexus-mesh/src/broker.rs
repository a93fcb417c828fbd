//! The broker's protocol state machine, sans I/O: bytes in from a
//! connection, frames out to connections. The WebSocket server
//! ([`crate::server`]) only moves bytes.
//!
//! What it enforces: the signed hello (±60 s, replay cache, key = member's
//! key, right mesh), membership and blocks, per-peer capability grants,
//! frame size and a per-connection rate limit (an error frame, never a
//! dropped broker). What it stores: public keys and ciphertext. Delivery
//! is at-least-once: a direct message is persisted before the sender's
//! `Ack`, and stays queued until the recipient acks it.

use crate::frame::Refusal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use nexus_core::Clock;
use serde::{Deserialize, Serialize};

use crate::auth::{check_hello, Capability, Invite, ReplayCache, MAX_SKEW_MS};
use crate::frame::{Frame, PeerInfo, PublishView, MAX_FRAME};
use crate::identity::{unhex, verify, PeerId};
pub mod cluster;

use crate::store::{Append, BrokerStore, Member, MeshRecord, Queued};

/// A connection's handle.
pub type ConnId = u64;

/// Hashes connection ids: the broker assigns them (sequentially), so
/// nobody can pick colliding ones, and a multiply spreads them enough.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnHasher(u64);

impl std::hash::Hasher for ConnHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A map keyed by connection.
pub type ConnMap<V> = HashMap<ConnId, V, std::hash::BuildHasherDefault<ConnHasher>>;

/// The broker's limits: what one connection, one address and everyone
/// together may cost it. `nexus up` and `nexus-broker serve` take each from
/// a flag or the `[broker]` table of config.toml; the defaults are below
/// (and in SECURITY.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame a peer may send, bytes (at most [`MAX_PUBLISH`]).
    pub max_frame: usize,
    /// Sustained frames per second per connection.
    pub rate_per_sec: u32,
    /// Burst allowance.
    pub burst: u32,
    /// Open connections, all addresses together.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Connections that have not yet authenticated, all together: each
    /// may hold a partly received message, so this bounds the memory a
    /// stranger can make the broker spend.
    pub max_unauthenticated: usize,
    /// Time for the WebSocket handshake, then for the hello (or create or
    /// join), milliseconds; a connection that takes longer is closed.
    pub handshake_timeout_ms: u64,
    /// Bytes queued for one connection that it has not read yet. A reader
    /// that falls this far behind is disconnected (its direct messages stay
    /// queued at the broker and topic messages stay in history, so it
    /// catches up when it reconnects); the queue never grows past this.
    pub max_queued_bytes: usize,
    /// Bytes of messages in one history page; a client pages on for more.
    pub history_page_bytes: usize,
}

/// The largest topic or direct message frame: one always fits in a history
/// page (a frame of [`MAX_FRAME`] bytes) with room for the page's header.
pub const MAX_PUBLISH: usize = MAX_FRAME - 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: MAX_PUBLISH,
            rate_per_sec: 2000,
            burst: 4000,
            max_connections: 10_000,
            max_connections_per_ip: 2_000,
            max_unauthenticated: 256,
            handshake_timeout_ms: 10_000,
            max_queued_bytes: 16 << 20,
            history_page_bytes: 192 * 1024,
        }
    }
}

impl Limits {
    /// Checks the limits make sense together; says which one does not.
    pub fn validate(&self) -> Result<(), crate::MeshError> {
        let bad = |what: &str| Err(crate::MeshError::Invalid(format!("broker limits: {what}")));
        if self.max_frame < 1024 || self.max_frame > MAX_PUBLISH {
            return bad(&format!("max_frame must be 1024 to {MAX_PUBLISH} bytes"));
        }
        if self.rate_per_sec == 0 || self.burst == 0 {
            return bad("rate_per_sec and burst must be at least 1");
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.max_unauthenticated == 0
        {
            return bad("connection limits must be at least 1");
        }
        if self.handshake_timeout_ms < 100 {
            return bad("handshake_timeout_ms must be at least 100");
        }
        if self.max_queued_bytes < 2 * MAX_FRAME {
            return bad(&format!(
                "max_queued_bytes must be at least {}",
                2 * MAX_FRAME
            ));
        }
        if self.history_page_bytes < 1024 || self.history_page_bytes > MAX_PUBLISH {
            return bad(&format!("history_page_bytes must be 1024 to {MAX_PUBLISH}"));
        }
        Ok(())
    }
}

/// Where the broker wants bytes sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// Send this encoded frame to a connection (shared, not copied, when
    /// one message fans out to many).
    Send(ConnId, Bytes),
    /// Close a connection (a blocked peer).
    Close(ConnId),
    /// Store this topic message, then carry out its outputs: only from a
    /// broker built [`Broker::with_group_commit`], whose host collects these
    /// and hands them to [`Broker::commit`] in batches.
    Persist(Box<PendingAppend>),
}

/// A topic message waiting to be stored, and what follows once it is
/// (the fan-out to subscribers and the publisher's acknowledgement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAppend {
    /// The publisher's connection (told if storing fails).
    pub conn: ConnId,
    /// The mesh.
    pub mesh: String,
    /// The topic.
    pub topic: String,
    /// The message id (a topic stores one message per id).
    pub id: String,
    /// The encoded frame.
    pub frame: Bytes,
    /// The fan-out, once it is stored (dropped if it was a duplicate).
    pub then: Vec<Out>,
    /// The publisher's acknowledgement, sent once it is stored or found to
    /// be stored already.
    pub ack: Out,
}

/// A mesh's members by peer id, shared by readers while a writer replaces it.
type Members = Arc<HashMap<String, Arc<Member>>>;

/// Who a connection is: `(mesh, peer)`.
type Who = Arc<(String, String)>;

/// Online readers of a mesh's topics: `(peer, connection)`.
type Readers = Arc<Vec<(String, ConnId)>>;

struct Conn {
    who: Option<Who>,
    tokens: f64,
    last_ms: u64,
    /// Refused and being closed: nothing more it sends is read.
    closing: bool,
    /// Told it is rate limited, and not refilled since: further refusals
    /// are silent (a batch of bad frames gets one answer, not thousands).
    told_rate: bool,
}

/// The bytes a `CreateMesh` signs: its fields, and a nonce the broker
/// remembers, so a captured request cannot be sent again.
pub fn create_payload(
    mesh: &str,
    key: &str,
    x25519: &str,
    name: &str,
    ts: u64,
    nonce: &str,
) -> Vec<u8> {
    framed(
        b"nexus-mesh/create/v2",
        &[
            mesh.as_bytes(),
            key.as_bytes(),
            x25519.as_bytes(),
            name.as_bytes(),
            &ts.to_be_bytes(),
            nonce.as_bytes(),
        ],
    )
}

/// The bytes a `Join` signs: its fields and a nonce (as for a create).
pub fn join_payload(
    invite_id: &str,
    key: &str,
    x25519: &str,
    name: &str,
    ts: u64,
    nonce: &str,
) -> Vec<u8> {
    framed(
        b"nexus-mesh/join/v2",
        &[
            invite_id.as_bytes(),
            key.as_bytes(),
            x25519.as_bytes(),
            name.as_bytes(),
            &ts.to_be_bytes(),
            nonce.as_bytes(),
        ],
    )
}

fn framed(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut p = tag.to_vec();
    for part in parts {
        p.extend_from_slice(&(part.len() as u32).to_be_bytes());
        p.extend_from_slice(part);
    }
    p
}

/// The broker core.
pub struct Broker {
    store: Arc<dyn BrokerStore>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    replay: Mutex<ReplayCache>,
    conns: Mutex<ConnMap<Conn>>,
    /// Each member's open connections: a daemon, a phone and a CLI verb
    /// of one identity are served side by side, up to
    /// [`MAX_CONNECTIONS_PER_PEER`].
    online: Mutex<HashMap<(String, String), Vec<ConnId>>>,
    next: Mutex<ConnId>,
    /// Members by mesh, loaded once per mesh and written through: the hot
    /// path (every frame checks its sender, every publish fans out) never
    /// reads the database.
    members: Mutex<HashMap<String, Members>>,
    /// Who receives a mesh's topic messages now, rebuilt on the first
    /// publish after anyone connects, disconnects or changes grants.
    readers: Mutex<HashMap<String, Readers>>,
    /// Topic appends are returned as [`Out::Persist`] for group commit.
    group_commit: bool,
    stats: Counters,
    /// Who is online on other nodes of a cluster.
    presence: Option<Arc<cluster::Presence>>,
}

#[derive(Default)]
struct Counters {
    frames: std::sync::atomic::AtomicU64,
    commits: std::sync::atomic::AtomicU64,
    committed: std::sync::atomic::AtomicU64,
}

/// What a broker has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BrokerStats {
    /// Frames received.
    pub frames: u64,
    /// Group commits (transactions of topic messages).
    pub commits: u64,
    /// Topic messages stored by group commits.
    pub committed: u64,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

const SAY_HELLO: &str = "say hello (or create or join a mesh) first";

/// The most bytes of a status or summary as a client sends it (sealed, so
/// larger than the text).
pub const MAX_PRESENCE: usize = 2048;

/// Connections one identity may hold at once; one more is refused with
/// `too_many_connections`, and none is ever closed to make room.
pub const MAX_CONNECTIONS_PER_PEER: usize = 8;

/// The largest frame a connection may send before it authenticates.
const MAX_PRE_AUTH_FRAME: usize = 16 * 1024;

/// What the rate limiter says about a frame.
enum Admit {
    /// Go ahead; who the connection is (`None` before it authenticates).
    Ok(Option<Who>),
    /// Over the limit; `tell` for the first refusal of a spell.
    Limited { tell: bool },
    /// The connection is gone or being closed.
    Closed,
}

/// What a stranger is told when the broker will not let it in, whatever
/// the reason: nothing about which meshes exist or who is a member.
const REFUSED: &str = "the broker refused: no such mesh here, not a member, blocked, or the invite is spent or revoked; ask the mesh's owner";

fn err(conn: ConnId, code: Refusal, msg: impl Into<String>) -> Vec<Out> {
    vec![Out::Send(conn, Frame::error(code, msg).encode().into())]
}

impl Broker {
    /// A broker over `store`.
    pub fn new(store: Arc<dyn BrokerStore>, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        Broker {
            store,
            clock,
            limits,
            replay: Mutex::new(ReplayCache::default()),
            conns: Mutex::new(ConnMap::default()),
            online: Mutex::new(HashMap::new()),
            presence: None,
            next: Mutex::new(0),
            members: Mutex::new(HashMap::new()),
            readers: Mutex::new(HashMap::new()),
            group_commit: false,
            stats: Counters::default(),
        }
    }

    /// Returns topic appends as [`Out::Persist`] instead of storing each
    /// in its own transaction: the host batches them into
    /// [`Broker::commit`], one transaction for many messages. Nothing is
    /// fanned out or acknowledged before it is stored.
    pub fn with_group_commit(mut self) -> Self {
        self.group_commit = true;
        self
    }

    /// Stores a batch of topic messages in one transaction, then returns
    /// what follows them; if storing fails, each publisher gets an error
    /// frame instead (and, unacknowledged, sends again).
    pub fn commit(&self, mut batch: Vec<PendingAppend>) -> Vec<Out> {
        let mut out = Vec::new();
        self.commit_into(&mut batch, &mut out);
        out
    }

    /// [`commit`](Self::commit), draining `batch` and appending the outputs
    /// to `out`: a host reuses both buffers instead of allocating per batch.
    pub fn commit_into(&self, batch: &mut Vec<PendingAppend>, out: &mut Vec<Out>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.commits.fetch_add(1, Relaxed);
        self.stats.committed.fetch_add(batch.len() as u64, Relaxed);
        let items: Vec<Append<'_>> = batch
            .iter()
            .map(|p| Append {
                mesh: &p.mesh,
                topic: &p.topic,
                id: &p.id,
                frame: &p.frame,
            })
            .collect();
        let stored = self.store.append_topics(&items);
        drop(items);
        match stored {
            Ok(appended) => {
                out.reserve(batch.iter().map(|p| p.then.len() + 1).sum());
                for (p, a) in batch.drain(..).zip(appended) {
                    if a.fresh {
                        out.extend(p.then);
                    }
                    out.push(p.ack);
                }
            }
            Err(e) => {
                for p in batch.drain(..) {
                    out.extend(err(
                        p.conn,
                        Refusal::Internal,
                        format!("the broker could not store the message: {e}"),
                    ));
                }
            }
        }
    }

    fn mesh_members(&self, mesh: &str) -> Result<Members, crate::MeshError> {
        if let Some(m) = lock(&self.members).get(mesh) {
            return Ok(m.clone());
        }
        let loaded: HashMap<String, Arc<Member>> = self
            .store
            .members(mesh)?
            .into_iter()
            .map(|m| (m.peer.clone(), Arc::new(m)))
            .collect();
        let loaded = Arc::new(loaded);
        lock(&self.members).insert(mesh.to_string(), loaded.clone());
        Ok(loaded)
    }

    fn member(&self, mesh: &str, peer: &str) -> Result<Option<Arc<Member>>, crate::MeshError> {
        Ok(self.mesh_members(mesh)?.get(peer).cloned())
    }

    /// The connections a topic message in `mesh` goes to (every online
    /// member with the read grant who is not blocked), cached.
    fn readers(&self, mesh: &str) -> Result<Readers, crate::MeshError> {
        if let Some(r) = lock(&self.readers).get(mesh) {
            return Ok(r.clone());
        }
        let members = self.mesh_members(mesh)?;
        let online = lock(&self.online);
        let mut list: Vec<(String, ConnId)> = members
            .values()
            .filter(|m| !m.blocked && m.caps.contains(&Capability::Read))
            .flat_map(|m| {
                online
                    .get(&(mesh.to_string(), m.peer.clone()))
                    .into_iter()
                    .flatten()
                    .map(|c| (m.peer.clone(), *c))
            })
            .collect();
        list.sort_unstable();
        let list = Arc::new(list);
        lock(&self.readers).insert(mesh.to_string(), list.clone());
        Ok(list)
    }

    fn readers_changed(&self, mesh: &str) {
        lock(&self.readers).remove(mesh);
    }

    /// Changes a member in the store ([`BrokerStore::update_member`]) and
    /// in the cache; `None` if it is not one.
    fn change_member(
        &self,
        mesh: &str,
        peer: &str,
        change: &dyn Fn(&mut Member),
    ) -> Result<Option<Member>, crate::MeshError> {
        let Some(m) = self.store.update_member(mesh, peer, change)? else {
            return Ok(None);
        };
        let current = self.mesh_members(mesh)?;
        let mut next = (*current).clone();
        next.insert(m.peer.clone(), Arc::new(m.clone()));
        lock(&self.members).insert(mesh.to_string(), Arc::new(next));
        self.readers_changed(mesh);
        Ok(Some(m))
    }

    fn put_member(&self, m: &Member) -> Result<(), crate::MeshError> {
        self.store.put_member(m)?;
        let current = self.mesh_members(&m.mesh)?;
        let mut next = (*current).clone();
        next.insert(m.peer.clone(), Arc::new(m.clone()));
        lock(&self.members).insert(m.mesh.clone(), Arc::new(next));
        self.readers_changed(&m.mesh);
        Ok(())
    }

    /// A new connection.
    pub fn connect(&self) -> ConnId {
        let id = {
            let mut n = lock(&self.next);
            *n += 1;
            *n
        };
        lock(&self.conns).insert(
            id,
            Conn {
                who: None,
                tokens: f64::from(self.limits.burst),
                last_ms: self.clock.now_millis(),
                closing: false,
                told_rate: false,
            },
        );
        id
    }

    /// A connection ended.
    pub fn disconnect(&self, conn: ConnId) {
        if let Some(c) = lock(&self.conns).remove(&conn) {
            if let Some(who) = c.who {
                let mut online = lock(&self.online);
                if let Some(conns) = online.get_mut(&*who) {
                    conns.retain(|c| *c != conn);
                    if conns.is_empty() {
                        online.remove(&*who);
                    }
                }
                drop(online);
                self.readers_changed(&who.0);
            }
        }
    }

    /// Counters since the broker started.
    pub fn stats(&self) -> BrokerStats {
        use std::sync::atomic::Ordering::Relaxed;
        BrokerStats {
            frames: self.stats.frames.load(Relaxed),
            commits: self.stats.commits.load(Relaxed),
            committed: self.stats.committed.load(Relaxed),
        }
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        lock(&self.conns).len()
    }

    /// The limits this broker enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether `conn` has authenticated (said a good hello, created or
    /// joined a mesh).
    pub fn is_authenticated(&self, conn: ConnId) -> bool {
        lock(&self.conns)
            .get(&conn)
            .is_some_and(|c| c.who.is_some())
    }

    /// Spends a token of `conn`'s rate limit.
    fn admit(&self, conn: ConnId) -> Admit {
        let now = self.clock.now_millis();
        let mut conns = lock(&self.conns);
        let Some(c) = conns.get_mut(&conn) else {
            return Admit::Closed;
        };
        if c.closing {
            return Admit::Closed;
        }
        let elapsed = now.saturating_sub(c.last_ms) as f64 / 1000.0;
        c.last_ms = now;
        c.tokens = (c.tokens + elapsed * f64::from(self.limits.rate_per_sec))
            .min(f64::from(self.limits.burst));
        if c.tokens < 1.0 {
            let tell = !c.told_rate;
            c.told_rate = true;
            return Admit::Limited { tell };
        }
        c.tokens -= 1.0;
        c.told_rate = false;
        Admit::Ok(c.who.clone())
    }

    /// Handles one frame from `conn`.
    pub fn handle(&self, conn: ConnId, bytes: &[u8]) -> Vec<Out> {
        self.receive(conn, Bytes::copy_from_slice(bytes))
    }

    /// Handles one frame from `conn`, given as shared bytes: a topic
    /// message is stored and fanned out as these very bytes.
    ///
    /// Before a connection authenticates, only the kinds byte of a frame is
    /// looked at unless it is a hello, create, join or invite look-up
    /// ([`crate::frame::is_pre_auth`]); any refusal then closes it.
    ///
    /// A request with an id (protocol version 3) gets its answer, refusals
    /// included, with the same id.
    pub fn receive(&self, conn: ConnId, bytes: Bytes) -> Vec<Out> {
        match Frame::request_id(&bytes) {
            None => self.receive_unaddressed(conn, bytes),
            Some(id) => {
                let mut out = self.receive_unaddressed(conn, bytes);
                Self::address(conn, id, &mut out);
                out
            }
        }
    }

    fn receive_unaddressed(&self, conn: ConnId, bytes: Bytes) -> Vec<Out> {
        self.stats
            .frames
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let who = match self.admit(conn) {
            Admit::Closed => return Vec::new(),
            Admit::Limited { tell: true } => {
                return err(conn, Refusal::RateLimited, "too many frames; slow down")
            }
            Admit::Limited { tell: false } => return Vec::new(),
            Admit::Ok(who) => who,
        };
        let Some(who) = who else {
            return self.stranger(conn, &bytes);
        };
        self.member_frame(conn, &who, bytes)
    }

    /// Gives the answer to request `id` (the first answer-kind frame for
    /// `conn` in `out`) that id.
    fn address(conn: ConnId, id: u64, out: &mut [Out]) {
        let answer = out.iter_mut().find_map(|o| match o {
            Out::Send(c, b)
                if *c == conn
                    && b.first() == Some(&crate::frame::VERSION)
                    && Frame::kind_of(b)
                        .is_some_and(|k| crate::frame::ANSWER_KINDS.contains(&k)) =>
            {
                Some(b)
            }
            _ => None,
        });
        if let Some(b) = answer {
            *b = Bytes::from(Frame::address(b, id));
        }
    }

    /// A frame from an authenticated member.
    fn member_frame(&self, conn: ConnId, who: &Arc<(String, String)>, bytes: Bytes) -> Vec<Out> {
        if bytes.len() > self.limits.max_frame {
            return err(
                conn,
                Refusal::TooLarge,
                format!("frames are limited to {} bytes", self.limits.max_frame),
            );
        }
        // The hot path: a topic message is routed from its encoding.
        if let Some(view) = PublishView::parse(&bytes) {
            let (mesh, me) = (&who.0, &who.1);
            let result = match view {
                Err(e) => return err(conn, Refusal::Malformed, e.to_string()),
                Ok(v) => self.sender(conn, mesh, me).and_then(|sender| match sender {
                    Ok(member) => self.publish(conn, mesh, me, &member, &v, bytes.clone()),
                    Err(refused) => Ok(refused),
                }),
            };
            return result.unwrap_or_else(|e| {
                err(conn, Refusal::Internal, format!("the broker failed: {e}"))
            });
        }
        let frame = match Frame::decode(&bytes) {
            Ok(f) => f,
            Err(e) => return err(conn, Refusal::Malformed, e.to_string()),
        };
        self.authenticated(conn, &who.0, &who.1, frame, &bytes)
            .unwrap_or_else(|e| err(conn, Refusal::Internal, format!("the broker failed: {e}")))
    }

    /// A frame from a connection that has not authenticated.
    fn stranger(&self, conn: ConnId, bytes: &[u8]) -> Vec<Out> {
        if !crate::frame::is_pre_auth(bytes) {
            return self.refuse(conn, err(conn, Refusal::Unauthenticated, SAY_HELLO));
        }
        if bytes.len() > MAX_PRE_AUTH_FRAME {
            return self.refuse(
                conn,
                err(
                    conn,
                    Refusal::TooLarge,
                    "a hello, create or join is a few hundred bytes",
                ),
            );
        }
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.refuse(conn, err(conn, Refusal::Malformed, e.to_string())),
        };
        let out = self
            .unauthenticated(conn, frame)
            .unwrap_or_else(|e| err(conn, Refusal::Internal, format!("the broker failed: {e}")));
        let refused = out.iter().any(
            |o| matches!(o, Out::Send(c, b) if *c == conn && Frame::kind_of(b) == Some(crate::frame::Kind::Error)),
        );
        if refused && !self.is_authenticated(conn) {
            return self.refuse(conn, out);
        }
        out
    }

    /// Sends `out` and closes the connection; nothing it sends after this
    /// is read (a batch of bad frames gets one answer).
    fn refuse(&self, conn: ConnId, mut out: Vec<Out>) -> Vec<Out> {
        if let Some(c) = lock(&self.conns).get_mut(&conn) {
            c.closing = true;
        }
        out.push(Out::Close(conn));
        out
    }

    fn authed(&self, conn: ConnId, mesh: &str, peer: &str) -> Result<Vec<Out>, crate::MeshError> {
        {
            let mut online = lock(&self.online);
            let conns = online
                .entry((mesh.to_string(), peer.to_string()))
                .or_default();
            if conns.len() >= MAX_CONNECTIONS_PER_PEER {
                return Ok(err(
                    conn,
                    Refusal::TooManyConnections,
                    format!("this peer has {MAX_CONNECTIONS_PER_PEER} connections open already; close one (a stuck `nexus mesh inbox --follow`?)"),
                ));
            }
            conns.push(conn);
        }
        if let Some(c) = lock(&self.conns).get_mut(&conn) {
            c.who = Some(Arc::new((mesh.to_string(), peer.to_string())));
        }
        self.readers_changed(mesh);
        let pending = self.store.pending(mesh, peer)?;
        let mut out = Vec::new();
        out.push(Out::Send(
            conn,
            Frame::Welcome {
                queued: pending.len() as u32,
            }
            .encode()
            .into(),
        ));
        out.extend(
            pending
                .into_iter()
                .map(|q| Out::Send(conn, Bytes::from(q.frame))),
        );
        Ok(out)
    }

    /// Spends a create's or join's nonce (after its signature verified, so
    /// forgeries cannot burn nonces): a captured request cannot be replayed.
    fn fresh_nonce(&self, nonce: &str, now: u64) -> Result<(), &'static str> {
        if nonce.len() < 16 || nonce.len() > 128 {
            return Err("the request's nonce must be 16 to 128 characters");
        }
        if !lock(&self.replay).insert(nonce, now) {
            return Err("this request was already used (replay)");
        }
        Ok(())
    }

    /// A hello, create or join (or an invite look-up) from a stranger.
    /// Signatures are checked before anything is looked up, and whatever
    /// the broker holds (meshes, members, blocks) shows only as one
    /// uniform refusal until the request proves who sent it.
    fn unauthenticated(&self, conn: ConnId, frame: Frame) -> Result<Vec<Out>, crate::MeshError> {
        let now = self.clock.now_millis();
        match &frame {
            Frame::Hello {
                mesh, peer, key, ..
            } => {
                if let Err(e) = check_hello(&frame, now, &mut lock(&self.replay)) {
                    return Ok(err(conn, Refusal::BadHello, e.to_string()));
                }
                if self.store.mesh(mesh)?.is_none() {
                    return Ok(err(conn, Refusal::Refused, REFUSED));
                }
                match self.member(mesh, peer)? {
                    Some(m) if !m.blocked && &m.ed25519 == key => self.authed(conn, mesh, peer),
                    _ => Ok(err(conn, Refusal::Refused, REFUSED)),
                }
            }
            Frame::CreateMesh {
                mesh,
                key,
                x25519,
                name,
                ts,
                sig,
                nonce,
            } => {
                if ts.abs_diff(now) > MAX_SKEW_MS {
                    return Ok(err(
                        conn,
                        Refusal::BadRequest,
                        "the request's clock is off by more than 60s; fix the system clock",
                    ));
                }
                if mesh.is_empty()
                    || mesh.len() > 64
                    || !mesh
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Ok(err(
                        conn,
                        Refusal::BadRequest,
                        "mesh names are 1-64 letters, digits, - _ .",
                    ));
                }
                let ed: [u8; 32] = match unhex(key).ok().and_then(|k| k.try_into().ok()) {
                    Some(k) => k,
                    None => {
                        return Ok(err(
                            conn,
                            Refusal::BadRequest,
                            "the key is not 32 bytes of hex",
                        ))
                    }
                };
                if verify(
                    &ed,
                    &create_payload(mesh, key, x25519, name, *ts, nonce),
                    &unhex(sig).unwrap_or_default(),
                )
                .is_err()
                {
                    return Ok(err(
                        conn,
                        Refusal::BadSignature,
                        "the create request is not signed by its key",
                    ));
                }
                if let Err(e) = self.fresh_nonce(nonce, now) {
                    return Ok(err(conn, Refusal::BadRequest, e));
                }
                if !self.store.create_mesh(&MeshRecord {
                    mesh: mesh.clone(),
                    owner_key: key.clone(),
                })? {
                    return Ok(err(
                        conn,
                        Refusal::MeshExists,
                        format!("a mesh named `{mesh}` exists on this broker; pick another name"),
                    ));
                }
                let peer = PeerId::of(&ed).to_string();
                self.put_member(&Member {
                    mesh: mesh.clone(),
                    peer: peer.clone(),
                    ed25519: key.clone(),
                    x25519: x25519.clone(),
                    name: name.clone(),
                    caps: Capability::for_role("admin"),
                    blocked: false,
                    status: String::new(),
                    summary: String::new(),
                    invite: String::new(),
                })?;
                self.authed(conn, mesh, &peer)
            }
            Frame::Join {
                invite,
                key,
                x25519,
                name,
                ts,
                sig,
                nonce,
            } => {
                let Ok(inv) = Invite::parse(invite) else {
                    return Ok(err(
                        conn,
                        Refusal::BadInvite,
                        "the invite code is not valid",
                    ));
                };
                if ts.abs_diff(now) > MAX_SKEW_MS {
                    return Ok(err(
                        conn,
                        Refusal::BadRequest,
                        "the request's clock is off by more than 60s; fix the system clock",
                    ));
                }
                let ed: [u8; 32] = match unhex(key).ok().and_then(|k| k.try_into().ok()) {
                    Some(k) => k,
                    None => {
                        return Ok(err(
                            conn,
                            Refusal::BadRequest,
                            "the key is not 32 bytes of hex",
                        ))
                    }
                };
                if verify(
                    &ed,
                    &join_payload(&inv.id, key, x25519, name, *ts, nonce),
                    &unhex(sig).unwrap_or_default(),
                )
                .is_err()
                {
                    return Ok(err(
                        conn,
                        Refusal::BadSignature,
                        "the join request is not signed by its key",
                    ));
                }
                if let Err(e) = self.fresh_nonce(nonce, now) {
                    return Ok(err(conn, Refusal::BadRequest, e));
                }
                // An invite the mesh's owner did not sign, or for a mesh
                // this broker does not have, gets the uniform refusal.
                let genuine = match self.store.mesh(&inv.mesh)? {
                    Some(m) => inv.verify(&m.owner_key, 0).is_ok(),
                    None => false,
                };
                if !genuine {
                    return Ok(err(conn, Refusal::Refused, REFUSED));
                }
                if now >= inv.expires_ms {
                    return Ok(err(
                        conn,
                        Refusal::InviteExpired,
                        "the invite has expired; ask for a new one",
                    ));
                }
                let peer = PeerId::of(&ed).to_string();
                let inv_ref = crate::auth::invite_ref(&inv.id);
                if let Some(existing) = self.member(&inv.mesh, &peer)? {
                    if existing.blocked {
                        return Ok(err(
                            conn,
                            Refusal::Blocked,
                            "this peer is blocked in the mesh",
                        ));
                    }
                } else {
                    // Names are unique within a mesh (case aside), so no one
                    // can join looking exactly like another member.
                    let taken = self
                        .mesh_members(&inv.mesh)?
                        .values()
                        .any(|m| m.name.to_lowercase() == name.to_lowercase());
                    if taken || name.trim().is_empty() || name.chars().count() > 64 {
                        return Ok(err(
                            conn,
                            Refusal::NameTaken,
                            format!("the name `{name}` is taken in this mesh (or empty, or over 64 characters); join with another --name"),
                        ));
                    }
                    if !self.store.use_invite(&inv.mesh, &inv_ref, inv.max_uses)? {
                        return Ok(err(
                            conn,
                            Refusal::InviteSpent,
                            "the invite has been used up or revoked; ask for a new one",
                        ));
                    }
                    self.put_member(&Member {
                        mesh: inv.mesh.clone(),
                        peer: peer.clone(),
                        ed25519: key.clone(),
                        x25519: x25519.clone(),
                        name: name.clone(),
                        caps: Capability::for_role(&inv.role),
                        blocked: false,
                        status: String::new(),
                        summary: String::new(),
                        invite: inv_ref.clone(),
                    })?;
                }
                let mut out = self.authed(conn, &inv.mesh, &peer)?;
                // Admins learn of the join, to seal the root key to the newcomer.
                let note = Frame::MemberJoined {
                    peer: peer.clone(),
                    name: name.clone(),
                    x25519: x25519.clone(),
                    invite: inv_ref,
                };
                let admins: Vec<Arc<Member>> =
                    self.mesh_members(&inv.mesh)?.values().cloned().collect();
                for admin in admins
                    .into_iter()
                    .filter(|a| a.caps.contains(&Capability::Admin) && a.peer != peer)
                {
                    out.extend(self.deliver(
                        &inv.mesh,
                        &admin.peer,
                        &format!("joined-{peer}"),
                        &note,
                    )?);
                }
                Ok(out)
            }
            Frame::GetInvite { short } => {
                let short = crate::auth::normalize_short(short);
                let found = self
                    .store
                    .invite_code(&crate::auth::short_code_lookup(&short))?
                    .and_then(|sealed| crate::auth::open_invite_code(&short, &sealed));
                Ok(match found {
                    Some(code) => vec![Out::Send(conn, Frame::InviteCode { code }.encode().into())],
                    None => err(
                        conn,
                        Refusal::UnknownInvite,
                        "no invite has this code on this broker; check it, or ask for a new one",
                    ),
                })
            }
            _ => Ok(err(conn, Refusal::Unauthenticated, SAY_HELLO)),
        }
    }

    /// Persists `frame` for `to` and sends it now if `to` is online.
    fn deliver(
        &self,
        mesh: &str,
        to: &str,
        id: &str,
        frame: &Frame,
    ) -> Result<Vec<Out>, crate::MeshError> {
        let bytes = frame.encode();
        self.store.enqueue(
            mesh,
            to,
            &Queued {
                id: id.to_string(),
                frame: bytes.clone(),
            },
        )?;
        Ok(
            match lock(&self.online).get(&(mesh.to_string(), to.to_string())) {
                Some(conns) => {
                    let bytes = Bytes::from(bytes);
                    conns.iter().map(|c| Out::Send(*c, bytes.clone())).collect()
                }
                None => Vec::new(),
            },
        )
    }

    /// The connected member, or what to send when it may no longer speak.
    fn sender(
        &self,
        conn: ConnId,
        mesh: &str,
        me: &str,
    ) -> Result<Result<Arc<Member>, Vec<Out>>, crate::MeshError> {
        Ok(match self.member(mesh, me)? {
            Some(m) if !m.blocked => Ok(m),
            _ => Err(vec![
                Out::Send(
                    conn,
                    Frame::error(Refusal::Blocked, "this peer is no longer a member")
                        .encode()
                        .into(),
                ),
                Out::Close(conn),
            ]),
        })
    }

    /// A topic message from `me`, to be stored and fanned out as `bytes`
    /// (its encoding as received).
    fn publish(
        &self,
        conn: ConnId,
        mesh: &str,
        me: &str,
        member: &Member,
        p: &PublishView<'_>,
        bytes: Bytes,
    ) -> Result<Vec<Out>, crate::MeshError> {
        if !member.caps.contains(&Capability::Broadcast) {
            return Ok(err(
                conn,
                Refusal::Forbidden,
                "this peer may not publish to topics",
            ));
        }
        if p.from != me {
            return Ok(err(
                conn,
                Refusal::Spoofed,
                "a message's sender must be the connected peer",
            ));
        }
        let ack = Out::Send(
            conn,
            Frame::Ack {
                id: p.id.to_owned(),
            }
            .encode()
            .into(),
        );
        if !self.group_commit && !self.store.append_topic(mesh, p.topic, p.id, &bytes)?.fresh {
            // Stored already (a retry, or a bridged copy that came another
            // way): acknowledged, not fanned out twice.
            return Ok(vec![ack]);
        }
        let readers = self.readers(mesh)?;
        let mut out: Vec<Out> = Vec::with_capacity(readers.len() + 1);
        out.extend(
            readers
                .iter()
                .filter(|(peer, _)| peer != me)
                .map(|(_, c)| Out::Send(*c, bytes.clone())),
        );
        if self.group_commit {
            return Ok(vec![Out::Persist(Box::new(PendingAppend {
                conn,
                mesh: mesh.to_string(),
                topic: p.topic.to_owned(),
                id: p.id.to_owned(),
                frame: bytes,
                then: out,
                ack,
            }))]);
        }
        out.push(ack);
        Ok(out)
    }

    fn authenticated(
        &self,
        conn: ConnId,
        mesh: &str,
        me: &str,
        frame: Frame,
        raw: &Bytes,
    ) -> Result<Vec<Out>, crate::MeshError> {
        let member = match self.sender(conn, mesh, me)? {
            Ok(m) => m,
            Err(refused) => return Ok(refused),
        };
        let can = |c: Capability| member.caps.contains(&c);
        match frame {
            Frame::Dm {
                ref id,
                ref from,
                ref to,
                ..
            } => {
                if !can(Capability::Dm) {
                    return Ok(err(
                        conn,
                        Refusal::Forbidden,
                        "this peer may not send direct messages (the dm grant was revoked)",
                    ));
                }
                if from != me {
                    return Ok(err(
                        conn,
                        Refusal::Spoofed,
                        "a message's sender must be the connected peer",
                    ));
                }
                match self.member(mesh, to)? {
                    Some(r) if !r.blocked => {}
                    _ => {
                        return Ok(err(
                            conn,
                            Refusal::UnknownPeer,
                            format!("`{to}` is not a member of this mesh"),
                        ))
                    }
                }
                let mut out = self.deliver(mesh, to, id, &frame)?;
                out.push(Out::Send(
                    conn,
                    Frame::Ack { id: id.clone() }.encode().into(),
                ));
                Ok(out)
            }
            Frame::Publish {
                ref id,
                ref from,
                ref topic,
                epoch,
                ref nonce,
                ref body,
            } => {
                // A version-1 frame (current ones take the path in `receive`).
                let view = PublishView {
                    id,
                    from,
                    topic,
                    epoch,
                    nonce,
                    body,
                };
                let bytes = if raw.first() == Some(&crate::frame::VERSION) {
                    raw.clone()
                } else {
                    Bytes::from(frame.encode())
                };
                self.publish(conn, mesh, me, &member, &view, bytes)
            }
            Frame::Ack { id } => {
                self.store.ack(mesh, me, &id)?;
                Ok(Vec::new())
            }
            Frame::Ping => Ok(vec![Out::Send(
                conn,
                Frame::Done {
                    what: "pong".into(),
                }
                .encode()
                .into(),
            )]),
            Frame::ListPeers => {
                let mut all: Vec<Member> = self
                    .mesh_members(mesh)?
                    .values()
                    .map(|m| (**m).clone())
                    .collect();
                all.sort_by(|a, b| a.peer.cmp(&b.peer));
                let online = lock(&self.online);
                let peers = all
                    .into_iter()
                    .map(|m| PeerInfo {
                        online: online.contains_key(&(mesh.to_string(), m.peer.clone()))
                            || self.online_elsewhere(mesh, &m.peer),
                        caps: m
                            .caps
                            .iter()
                            .map(|c| format!("{c:?}").to_lowercase())
                            .collect(),
                        peer: m.peer,
                        name: m.name,
                        ed25519: m.ed25519,
                        x25519: m.x25519,
                        status: m.status,
                        summary: m.summary,
                        blocked: m.blocked,
                    })
                    .collect();
                Ok(vec![Out::Send(
                    conn,
                    Frame::PeerList { peers }.encode().into(),
                )])
            }
            Frame::SetPresence { status, summary } => {
                // Sealed by the clients (`presence`): refused when too long,
                // never cut (a cut ciphertext opens to nothing).
                let too_long =
                    |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_PRESENCE);
                if too_long(&status) || too_long(&summary) {
                    return Ok(err(
                        conn,
                        Refusal::BadRequest,
                        format!("a status or summary is at most {MAX_PRESENCE} bytes as sent"),
                    ));
                }
                self.change_member(mesh, me, &|m| {
                    if let Some(s) = &status {
                        m.status.clone_from(s);
                    }
                    if let Some(s) = &summary {
                        m.summary.clone_from(s);
                    }
                })?;
                Ok(vec![Out::Send(
                    conn,
                    Frame::Done {
                        what: "presence".into(),
                    }
                    .encode()
                    .into(),
                )])
            }
            Frame::Grant { peer, caps, revoke } => {
                if !can(Capability::Admin) {
                    return Ok(err(conn, Refusal::Forbidden, "only admins change grants"));
                }
                let Some(target) = self.member(mesh, &peer)? else {
                    return Ok(err(
                        conn,
                        Refusal::UnknownPeer,
                        format!("`{peer}` is not a member"),
                    ));
                };
                let mut parsed = Vec::new();
                for c in &caps {
                    match Capability::parse(c) {
                        Ok(c) => parsed.push(c),
                        Err(e) => return Ok(err(conn, Refusal::BadRequest, e.to_string())),
                    }
                }
                drop(target);
                self.change_member(mesh, &peer, &|m| {
                    for c in &parsed {
                        if revoke {
                            m.caps.retain(|x| x != c);
                        } else if !m.caps.contains(c) {
                            m.caps.push(*c);
                        }
                    }
                })?;
                Ok(vec![Out::Send(
                    conn,
                    Frame::Done {
                        what: "grant".into(),
                    }
                    .encode()
                    .into(),
                )])
            }
            Frame::Block { peer, blocked } => {
                if !can(Capability::Admin) {
                    return Ok(err(conn, Refusal::Forbidden, "only admins block peers"));
                }
                let Some(target) = self.member(mesh, &peer)? else {
                    return Ok(err(
                        conn,
                        Refusal::UnknownPeer,
                        format!("`{peer}` is not a member"),
                    ));
                };
                drop(target);
                let Some(target) = self.change_member(mesh, &peer, &|m| m.blocked = blocked)?
                else {
                    return Ok(err(
                        conn,
                        Refusal::UnknownPeer,
                        format!("`{peer}` is not a member"),
                    ));
                };
                // The invite it came in with brings no one back.
                if blocked && !target.invite.is_empty() {
                    self.store.revoke_invite(mesh, &target.invite)?;
                }
                let mut out = vec![Out::Send(
                    conn,
                    Frame::Done {
                        what: "block".into(),
                    }
                    .encode()
                    .into(),
                )];
                if blocked {
                    if let Some(conns) = lock(&self.online).remove(&(mesh.to_string(), peer)) {
                        out.extend(conns.into_iter().map(Out::Close));
                    }
                    self.readers_changed(mesh);
                }
                Ok(out)
            }
            Frame::PutInvite { code } => {
                if !can(Capability::Admin) {
                    return Ok(err(conn, Refusal::Forbidden, "only admins publish invites"));
                }
                let Ok(inv) = Invite::parse(&code) else {
                    return Ok(err(
                        conn,
                        Refusal::BadInvite,
                        "the invite code is not valid",
                    ));
                };
                if inv.mesh != mesh {
                    return Ok(err(
                        conn,
                        Refusal::BadInvite,
                        "the invite is for another mesh",
                    ));
                }
                let owner = self
                    .store
                    .mesh(mesh)?
                    .map(|m| m.owner_key)
                    .unwrap_or_default();
                if let Err(e) = inv.verify(&owner, self.clock.now_millis()) {
                    return Ok(err(conn, Refusal::BadInvite, e.to_string()));
                }
                let short = inv.short_code();
                self.store.put_invite_code(
                    &crate::auth::short_code_lookup(&short),
                    &crate::auth::seal_invite_code(&short, &code)?,
                )?;
                Ok(vec![Out::Send(
                    conn,
                    Frame::Done {
                        what: "invite".into(),
                    }
                    .encode()
                    .into(),
                )])
            }
            Frame::History {
                topic,
                before,
                limit,
            } => {
                if !can(Capability::Read) {
                    return Ok(err(
                        conn,
                        Refusal::Forbidden,
                        "this peer may not read topics",
                    ));
                }
                let entries = self
                    .store
                    .history(
                        mesh,
                        &topic,
                        before,
                        limit.clamp(1, 500) as usize,
                        self.limits.history_page_bytes,
                    )?
                    .into_iter()
                    .filter_map(|(seq, b)| Frame::decode(&b).ok().map(|f| (seq, f)))
                    .collect();
                Ok(vec![Out::Send(
                    conn,
                    Frame::HistoryPage { topic, entries }.encode().into(),
                )])
            }
            Frame::Hello { .. } | Frame::CreateMesh { .. } | Frame::Join { .. } => Ok(err(
                conn,
                Refusal::BadRequest,
                "already authenticated on this connection",
            )),
            _ => Ok(err(
                conn,
                Refusal::BadRequest,
                "brokers do not accept this frame from peers",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sign_hello;
    use crate::identity::{hex, Identity};
    use crate::store::MemoryStore;
    use nexus_core::ManualClock;

    fn decode(out: &[Out]) -> Vec<Frame> {
        out.iter()
            .filter_map(|o| match o {
                Out::Send(_, b) => Frame::decode(b).ok(),
                Out::Close(_) | Out::Persist(_) => None,
            })
            .collect()
    }

    fn create(b: &Broker, c: ConnId, owner: &Identity, now: u64) -> Vec<Frame> {
        let key = hex(&owner.ed25519_public());
        let x = hex(&owner.x25519_public());
        let nonce = format!("create-nonce-{now}");
        let sig = hex(&owner.sign(&create_payload("lab", &key, &x, "o", now, &nonce)));
        decode(
            &b.handle(
                c,
                &Frame::CreateMesh {
                    mesh: "lab".into(),
                    key,
                    x25519: x,
                    name: "o".into(),
                    ts: now,
                    sig,
                    nonce,
                }
                .encode(),
            ),
        )
    }

    #[test]
    fn the_rate_limit_answers_with_an_error_frame_and_refills_with_time() {
        let clock = ManualClock::new(1_795_219_200_000);
        let limits = Limits {
            rate_per_sec: 10,
            burst: 5,
            ..Limits::default()
        };
        let b = Broker::new(
            Arc::new(MemoryStore::default()),
            Arc::new(clock.clone()),
            limits,
        );
        let c = b.connect();
        let owner = Identity::generate("o").unwrap();
        assert!(matches!(
            create(&b, c, &owner, clock.now_millis())[0],
            Frame::Welcome { .. }
        ));
        let mut codes = Vec::new();
        for _ in 0..7 {
            let f = decode(&b.handle(c, &Frame::ListPeers.encode()));
            codes.push(match f.first() {
                Some(Frame::Error { code, .. }) => code.clone(),
                Some(_) => "ok".into(),
                None => "silent".into(),
            });
        }
        // Burst of 5, one spent on the create: 4 answers, then one refusal
        // (a flood gets one error frame, not one per frame).
        assert_eq!(
            codes,
            ["ok", "ok", "ok", "ok", "rate_limited", "silent", "silent"]
        );
        clock.advance(std::time::Duration::from_millis(500)); // +5 tokens
        assert!(matches!(
            decode(&b.handle(c, &Frame::ListPeers.encode()))[0],
            Frame::PeerList { .. }
        ));
    }

    #[test]
    fn a_hello_outside_the_skew_window_is_refused() {
        let clock = ManualClock::new(1_795_219_200_000);
        let b = Broker::new(
            Arc::new(MemoryStore::default()),
            Arc::new(clock.clone()),
            Limits::default(),
        );
        let owner = Identity::generate("o").unwrap();
        create(&b, b.connect(), &owner, clock.now_millis());
        let c = b.connect();
        let late = sign_hello(
            &owner,
            "lab",
            clock.now_millis() - 61_000,
            "0123456789abcdef0123",
        );
        let out = b.handle(c, &late.encode());
        let f = decode(&out);
        assert!(
            matches!(&f[0], Frame::Error { code, message } if code == "bad_hello" && message.contains("clock"))
        );
        // A stranger's refusal closes its connection; nothing more is read.
        assert!(out.contains(&Out::Close(c)));
        assert!(b.handle(c, &Frame::ListPeers.encode()).is_empty());
        let c = b.connect();
        let ok = sign_hello(
            &owner,
            "lab",
            clock.now_millis() - 59_000,
            "0123456789abcdef0124",
        );
        assert!(matches!(
            decode(&b.handle(c, &ok.encode()))[0],
            Frame::Welcome { .. }
        ));
        // More connections of the same peer are served side by side, up
        // to the limit; none evicts another.
        // The create and the hello above are two already.
        for i in 2..MAX_CONNECTIONS_PER_PEER {
            let c2 = b.connect();
            let again = sign_hello(
                &owner,
                "lab",
                clock.now_millis(),
                &format!("0123456789abcdef-{i}"),
            );
            let out = b.handle(c2, &again.encode());
            assert!(matches!(decode(&out)[0], Frame::Welcome { .. }), "{i}");
            assert!(!out.iter().any(|o| matches!(o, Out::Close(_))));
        }
        let extra = b.connect();
        let again = sign_hello(&owner, "lab", clock.now_millis(), "0123456789abcdef-extra");
        let out = b.handle(extra, &again.encode());
        assert!(
            matches!(&decode(&out)[0], Frame::Error { code, .. } if code == "too_many_connections")
        );
        assert!(out.contains(&Out::Close(extra)));
        assert!(!out.contains(&Out::Close(c)));
    }

    #[test]
    fn unauthenticated_connections_can_only_say_hello() {
        let b = Broker::new(
            Arc::new(MemoryStore::default()),
            Arc::new(nexus_core::SystemClock),
            Limits::default(),
        );
        let c = b.connect();
        let f = decode(&b.handle(c, &Frame::ListPeers.encode()));
        assert!(matches!(&f[0], Frame::Error { code, .. } if code == "unauthenticated"));
    }
}
