//! Broker storage behind a trait: meshes, members (public keys, grants,
//! blocks, presence), the offline queue and topic history. The broker only
//! ever stores what clients sent it: public keys and ciphertext.
//!
//! [`MemoryStore`] and [`SqliteStore`] (WAL mode, the embedded default)
//! run one [conformance suite](conformance). A Postgres store for several
//! brokers behind a load balancer implements the same trait.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::auth::Capability;
use crate::MeshError;

/// A mesh, as the broker knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeshRecord {
    /// Its name.
    pub mesh: String,
    /// The owner's Ed25519 key, hex (verifies invites).
    pub owner_key: String,
}

/// A member of a mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The mesh.
    pub mesh: String,
    /// Peer id.
    pub peer: String,
    /// Ed25519 key, hex.
    pub ed25519: String,
    /// X25519 key, hex.
    pub x25519: String,
    /// Display name.
    pub name: String,
    /// Granted capabilities.
    pub caps: Vec<Capability>,
    /// Blocked peers cannot connect.
    pub blocked: bool,
    /// Free-form status ("busy", ...).
    pub status: String,
    /// A one-line summary of what the peer is doing.
    pub summary: String,
    /// The invite it joined with, as [`crate::auth::invite_ref`] (empty
    /// for the owner): blocking the member revokes it, so the same invite
    /// cannot bring it back.
    #[serde(default)]
    pub invite: String,
}

/// A stored, still unacknowledged message for a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// The message id.
    pub id: String,
    /// The encoded frame (ciphertext inside).
    pub frame: Vec<u8>,
}

/// A topic message to store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Append<'a> {
    /// The mesh.
    pub mesh: &'a str,
    /// The topic (its wire id).
    pub topic: &'a str,
    /// The message id: a topic holds one message per id.
    pub id: &'a str,
    /// The encoded frame.
    pub frame: &'a [u8],
}

/// Where a stored topic message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence number in the topic (the first copy's, for a duplicate).
    pub seq: u64,
    /// False when the topic already held a message with this id: nothing
    /// was stored, and nothing should be fanned out again.
    pub fresh: bool,
}

/// Storage the broker needs.
pub trait BrokerStore: Send + Sync {
    /// Creates a mesh; false if the name is taken.
    fn create_mesh(&self, m: &MeshRecord) -> Result<bool, MeshError>;
    /// A mesh by name.
    fn mesh(&self, mesh: &str) -> Result<Option<MeshRecord>, MeshError>;
    /// Adds or replaces a member.
    fn put_member(&self, m: &Member) -> Result<(), MeshError>;
    /// A member.
    fn member(&self, mesh: &str, peer: &str) -> Result<Option<Member>, MeshError>;
    /// Changes a member with `change` and returns it as stored (`None` if
    /// it is not one). Stores shared by several brokers make this a
    /// compare-and-set, calling `change` again on what another broker
    /// wrote meanwhile, so two admins' changes never undo each other.
    fn update_member(
        &self,
        mesh: &str,
        peer: &str,
        change: &dyn Fn(&mut Member),
    ) -> Result<Option<Member>, MeshError> {
        let Some(mut m) = self.member(mesh, peer)? else {
            return Ok(None);
        };
        change(&mut m);
        self.put_member(&m)?;
        Ok(Some(m))
    }
    /// Every member, by peer id.
    fn members(&self, mesh: &str) -> Result<Vec<Member>, MeshError>;
    /// Counts one use of an invite; false when `max_uses` are spent or the
    /// invite was revoked.
    fn use_invite(&self, mesh: &str, invite: &str, max_uses: u32) -> Result<bool, MeshError>;
    /// Revokes an invite for good: no one joins with it again.
    fn revoke_invite(&self, mesh: &str, invite: &str) -> Result<(), MeshError>;
    /// Queues a message for `to` until acknowledged (idempotent by id).
    fn enqueue(&self, mesh: &str, to: &str, q: &Queued) -> Result<(), MeshError>;
    /// Unacknowledged messages for `to`, oldest first.
    fn pending(&self, mesh: &str, to: &str) -> Result<Vec<Queued>, MeshError>;
    /// Drops an acknowledged message.
    fn ack(&self, mesh: &str, to: &str, id: &str) -> Result<(), MeshError>;
    /// Appends to a topic's history unless a message with the same id is
    /// already in it (a retry, or a bridged copy that took another path);
    /// returns its sequence number and whether it is new. A store may bound
    /// how far back it looks: the SQLite store checks each topic's latest
    /// 4,096 messages, the memory store all of them.
    fn append_topic(
        &self,
        mesh: &str,
        topic: &str,
        id: &str,
        frame: &[u8],
    ) -> Result<Appended, MeshError> {
        self.append_topics(&[Append {
            mesh,
            topic,
            id,
            frame,
        }])?
        .pop()
        .ok_or_else(|| MeshError::Storage("nothing was appended".into()))
    }
    /// Appends many messages, all or none, in order, each one only if its
    /// id is new to its topic (also within the batch). Stores with
    /// transactions make this one.
    fn append_topics(&self, items: &[Append<'_>]) -> Result<Vec<Appended>, MeshError>;
    /// Stores an invite under a lookup key (the broker stores a hash of
    /// the short code and the invite sealed with it, never either as is).
    fn put_invite_code(&self, short: &str, code: &str) -> Result<(), MeshError>;
    /// The invite stored under a lookup key.
    fn invite_code(&self, short: &str) -> Result<Option<String>, MeshError>;
    /// Up to `limit` history entries before `before` (newest first), and no
    /// more than `max_bytes` of frames, though always at least one entry
    /// when there is one: a page is bounded in memory however large the
    /// messages are.
    fn history(
        &self,
        mesh: &str,
        topic: &str,
        before: Option<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, MeshError>;
}

/// A topic's history: `(sequence, encoded frame)`, oldest first.
type History = Vec<(u64, Vec<u8>)>;

/// The use count that marks an invite revoked.
const REVOKED: u32 = u32::MAX;

/// Bytes a history entry costs in a page beyond its frame (sequence number
/// and length prefix, generously).
pub const PAGE_ENTRY_OVERHEAD: usize = 16;

/// Fills a history page up to a count and a byte budget.
struct PageBudget {
    entries: History,
    limit: usize,
    left: usize,
}

impl PageBudget {
    fn new(limit: usize, max_bytes: usize) -> Self {
        PageBudget {
            entries: Vec::new(),
            limit,
            left: max_bytes,
        }
    }

    /// Whether an entry of `len` bytes goes in (the first always does).
    fn admit(&mut self, len: usize) -> bool {
        let cost = len + PAGE_ENTRY_OVERHEAD;
        if self.entries.len() >= self.limit || (!self.entries.is_empty() && cost > self.left) {
            return false;
        }
        self.left = self.left.saturating_sub(cost);
        true
    }
}

/// Storage in memory.
#[derive(Default)]
pub struct MemoryStore(Mutex<MemInner>);

#[derive(Default)]
struct MemInner {
    meshes: BTreeMap<String, MeshRecord>,
    members: BTreeMap<(String, String), Member>,
    invites: BTreeMap<(String, String), u32>,
    invite_codes: BTreeMap<String, String>,
    queue: BTreeMap<(String, String), Vec<Queued>>,
    topics: BTreeMap<(String, String), History>,
    /// `(mesh, topic, message id)` → sequence number.
    ids: HashMap<(String, String, String), u64>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    fn inner(&self) -> std::sync::MutexGuard<'_, MemInner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl BrokerStore for MemoryStore {
    fn create_mesh(&self, m: &MeshRecord) -> Result<bool, MeshError> {
        let mut i = self.inner();
        if i.meshes.contains_key(&m.mesh) {
            return Ok(false);
        }
        i.meshes.insert(m.mesh.clone(), m.clone());
        Ok(true)
    }
    fn mesh(&self, mesh: &str) -> Result<Option<MeshRecord>, MeshError> {
        Ok(self.inner().meshes.get(mesh).cloned())
    }
    fn put_member(&self, m: &Member) -> Result<(), MeshError> {
        self.inner()
            .members
            .insert((m.mesh.clone(), m.peer.clone()), m.clone());
        Ok(())
    }
    fn member(&self, mesh: &str, peer: &str) -> Result<Option<Member>, MeshError> {
        Ok(self
            .inner()
            .members
            .get(&(mesh.into(), peer.into()))
            .cloned())
    }
    fn members(&self, mesh: &str) -> Result<Vec<Member>, MeshError> {
        Ok(self
            .inner()
            .members
            .values()
            .filter(|m| m.mesh == mesh)
            .cloned()
            .collect())
    }
    fn use_invite(&self, mesh: &str, invite: &str, max_uses: u32) -> Result<bool, MeshError> {
        let mut i = self.inner();
        let n = i.invites.entry((mesh.into(), invite.into())).or_insert(0);
        if *n >= max_uses || *n == REVOKED {
            return Ok(false);
        }
        *n += 1;
        Ok(true)
    }
    fn revoke_invite(&self, mesh: &str, invite: &str) -> Result<(), MeshError> {
        self.inner()
            .invites
            .insert((mesh.into(), invite.into()), REVOKED);
        Ok(())
    }
    fn enqueue(&self, mesh: &str, to: &str, q: &Queued) -> Result<(), MeshError> {
        let mut i = self.inner();
        let list = i.queue.entry((mesh.into(), to.into())).or_default();
        if !list.iter().any(|x| x.id == q.id) {
            list.push(q.clone());
        }
        Ok(())
    }
    fn pending(&self, mesh: &str, to: &str) -> Result<Vec<Queued>, MeshError> {
        Ok(self
            .inner()
            .queue
            .get(&(mesh.into(), to.into()))
            .cloned()
            .unwrap_or_default())
    }
    fn ack(&self, mesh: &str, to: &str, id: &str) -> Result<(), MeshError> {
        if let Some(l) = self.inner().queue.get_mut(&(mesh.into(), to.into())) {
            l.retain(|q| q.id != id);
        }
        Ok(())
    }
    fn put_invite_code(&self, short: &str, code: &str) -> Result<(), MeshError> {
        self.inner()
            .invite_codes
            .insert(short.to_string(), code.to_string());
        Ok(())
    }
    fn invite_code(&self, short: &str) -> Result<Option<String>, MeshError> {
        Ok(self.inner().invite_codes.get(short).cloned())
    }
    fn append_topics(&self, items: &[Append<'_>]) -> Result<Vec<Appended>, MeshError> {
        let mut i = self.inner();
        let mut out = Vec::with_capacity(items.len());
        for a in items {
            let key = (a.mesh.to_string(), a.topic.to_string(), a.id.to_string());
            if let Some(seq) = i.ids.get(&key) {
                out.push(Appended {
                    seq: *seq,
                    fresh: false,
                });
                continue;
            }
            let l = i.topics.entry((a.mesh.into(), a.topic.into())).or_default();
            let seq = l.last().map_or(1, |(s, _)| s + 1);
            l.push((seq, a.frame.to_vec()));
            i.ids.insert(key, seq);
            out.push(Appended { seq, fresh: true });
        }
        Ok(out)
    }
    fn history(
        &self,
        mesh: &str,
        topic: &str,
        before: Option<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, MeshError> {
        let i = self.inner();
        let mut page = PageBudget::new(limit, max_bytes);
        if let Some(l) = i.topics.get(&(mesh.into(), topic.into())) {
            for (seq, f) in l
                .iter()
                .rev()
                .filter(|(s, _)| before.is_none_or(|b| *s < b))
            {
                if !page.admit(f.len()) {
                    break;
                }
                page.entries.push((*seq, f.clone()));
            }
        }
        Ok(page.entries)
    }
}

/// When an acknowledged message is on disk. Chosen per broker (`nexus up
/// --durability`, `broker.durability` in config.toml); measured side by
/// side in docs/PERFORMANCE.md.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=FULL`: every commit fsyncs the WAL before the broker
    /// acknowledges, so an acknowledged message survives a power loss or
    /// an OS crash. Costs one fsync per group commit: at 10,000 deliveries
    /// a second on this project's test machine, p50 0.23 → 0.55 ms and a
    /// p99 with fsync stalls of 60-250 ms.
    Full,
    /// `synchronous=NORMAL` (the default): an acknowledged message is in
    /// the database and survives the broker crashing or being killed; an
    /// OS crash or power loss can lose what was acknowledged since the last
    /// checkpoint (they fsync every 500 ms).
    #[default]
    Normal,
}

impl Durability {
    /// Parses `full` or `normal`.
    pub fn parse(s: &str) -> Result<Durability, MeshError> {
        match s {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(MeshError::Invalid(format!(
                "durability `{other}`: use full (survives power loss) or normal (survives a crash)"
            ))),
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// Topic numbers by `(mesh, topic)`.
type TopicNumbers = HashMap<(String, String), i64>;

mod migrate;
mod recent;

pub use migrate::Copied;

/// What the SQLite store keeps in memory: topic numbers (they never change
/// once assigned) and each topic's recent message ids.
#[derive(Default)]
struct Cache {
    names: TopicNumbers,
    recent: recent::RecentIds,
}

/// Storage in one SQLite file, WAL mode.
pub struct SqliteStore {
    /// The connection, and what is cached of it.
    conn: Mutex<(Connection, Cache)>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn db(e: rusqlite::Error) -> MeshError {
    MeshError::Storage(e.to_string())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meshes (mesh TEXT PRIMARY KEY, owner_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    mesh TEXT NOT NULL, peer TEXT NOT NULL, ed25519 TEXT NOT NULL, x25519 TEXT NOT NULL,
    name TEXT NOT NULL, caps TEXT NOT NULL, blocked INTEGER NOT NULL,
    status TEXT NOT NULL, summary TEXT NOT NULL, invite TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mesh, peer));
CREATE TABLE IF NOT EXISTS invites (mesh TEXT NOT NULL, invite TEXT NOT NULL, uses INTEGER NOT NULL,
    PRIMARY KEY (mesh, invite));
CREATE TABLE IF NOT EXISTS invite_codes (short TEXT PRIMARY KEY, code TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queue (seq INTEGER PRIMARY KEY, mesh TEXT NOT NULL, recipient TEXT NOT NULL,
    id TEXT NOT NULL, frame BLOB NOT NULL, UNIQUE (mesh, recipient, id));
CREATE TABLE IF NOT EXISTS topic_names (id INTEGER PRIMARY KEY, mesh TEXT NOT NULL,
    topic TEXT NOT NULL, UNIQUE (mesh, topic));
CREATE TABLE IF NOT EXISTS topic_log (key INTEGER PRIMARY KEY, frame BLOB NOT NULL, id BLOB);
";

/// A `topic_log` key is the topic's number shifted left by this many bits,
/// plus the message's sequence number in its topic: one table, no second
/// index, a topic's messages contiguous and in order.
const SEQ_BITS: u32 = 40;

/// The largest sequence number a topic can reach (about 10^12).
const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;

/// The largest topic number (about 8 million topics a broker).
const MAX_TOPIC: i64 = (1 << (63 - SEQ_BITS)) - 1;

/// The schema version `SCHEMA` is (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 4;

/// Brings a database written by an older broker to [`SCHEMA_VERSION`], in
/// one transaction: version 1 kept topic history in `topics` with the mesh
/// and topic names in every row and in a composite primary key (a second
/// B-tree); version 2 keys `topic_log` by topic number and sequence in one
/// integer ([`SEQ_BITS`]), which halves the pages a group commit writes.
fn migrate(c: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let old: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'topics'",
        [],
        |r| r.get(0),
    )?;
    if old {
        tx.execute_batch(
            "INSERT OR IGNORE INTO topic_names (mesh, topic) SELECT DISTINCT mesh, topic FROM topics;
             INSERT INTO topic_log (key, frame)
                 SELECT (n.id << 40) | t.seq, t.frame FROM topics t
                 JOIN topic_names n ON n.mesh = t.mesh AND n.topic = t.topic
                 ORDER BY n.id, t.seq;
             DROP TABLE topics;",
        )?;
    }
    // Version 3 records the invite each member joined with.
    let has_invite: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('members') WHERE name = 'invite'",
        [],
        |r| r.get(0),
    )?;
    if !has_invite {
        tx.execute_batch("ALTER TABLE members ADD COLUMN invite TEXT NOT NULL DEFAULT '';")?;
    }
    // Version 4 stores each topic message's id (older rows have none).
    let has_id: bool = tx.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('topic_log') WHERE name = 'id'",
        [],
        |r| r.get(0),
    )?;
    if !has_id {
        tx.execute_batch("ALTER TABLE topic_log ADD COLUMN id BLOB;")?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()
}

/// Refuses a damaged database: `PRAGMA quick_check` reads every page
/// (overwritten or torn pages, broken indexes) in a second or so per
/// gigabyte, once at start.
fn check_integrity(c: &Connection, path: &Path) -> Result<(), MeshError> {
    let mut st = c
        .prepare("PRAGMA quick_check(5)")
        .map_err(|e| damaged(path, &e.to_string()))?;
    let problems: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| damaged(path, &e.to_string()))?;
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    Err(damaged(path, &problems.join("; ")))
}

fn damaged(path: &Path, what: &str) -> MeshError {
    MeshError::Storage(format!(
        "the broker database {} is damaged ({what}); stop the broker, move the file (and its -wal and -shm files) aside, and restore a backup or start with a new database",
        path.display()
    ))
}

/// Checkpoints the WAL into the database every half second on its own
/// connection. A failed checkpoint (a full disk, a reader holding the WAL)
/// is retried with a growing pause, up to 30 s, and reported once per
/// failure spell: the thread never gives up while the file exists, so the
/// WAL cannot grow for good after one bad moment.
fn spawn_checkpointer(path: std::path::PathBuf) -> Result<(), MeshError> {
    std::thread::Builder::new()
        .name("nexus-broker-checkpoint".into())
        .spawn(move || {
            let mut cp: Option<Connection> = None;
            checkpoint_loop(
                || path.exists(),
                std::thread::sleep,
                || {
                    let c = match cp.take() {
                        Some(c) => c,
                        None => {
                            let c = Connection::open(&path)?;
                            c.busy_timeout(std::time::Duration::from_secs(1))?;
                            c
                        }
                    };
                    c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")?;
                    cp = Some(c);
                    Ok(())
                },
                |e: Option<rusqlite::Error>| match e {
                    Some(e) => eprintln!(
                        "nexus-broker: checkpointing {} failed ({e}); retrying",
                        path.display()
                    ),
                    None => eprintln!("nexus-broker: WAL checkpoints work again"),
                },
            );
        })
        .map(|_| ())
        .map_err(|e| MeshError::Storage(e.to_string()))
}

/// The checkpointer's schedule, apart from SQLite and the clock: while
/// `alive`, sleep and checkpoint; after a failure, pause twice as long each
/// time (up to 30 s) and say so once; after a success, back to the normal
/// pace. It returns only when `alive` says the database is gone.
fn checkpoint_loop<E>(
    mut alive: impl FnMut() -> bool,
    mut sleep: impl FnMut(std::time::Duration),
    mut checkpoint: impl FnMut() -> Result<(), E>,
    mut report: impl FnMut(Option<E>),
) {
    let mut pause = CHECKPOINT_EVERY;
    let mut failing = false;
    while alive() {
        sleep(pause);
        match checkpoint() {
            Ok(()) => {
                if failing {
                    report(None);
                }
                failing = false;
                pause = CHECKPOINT_EVERY;
            }
            Err(e) => {
                if !failing {
                    report(Some(e));
                }
                failing = true;
                pause = (pause * 2).min(std::time::Duration::from_secs(30));
            }
        }
    }
}

const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// The number standing for `(mesh, topic)`, assigned on first use.
fn topic_number(
    tx: &rusqlite::Transaction<'_>,
    names: &mut TopicNumbers,
    mesh: &str,
    topic: &str,
) -> rusqlite::Result<i64> {
    if let Some(id) = names.get(&(mesh.to_string(), topic.to_string())) {
        return Ok(*id);
    }
    tx.prepare_cached("INSERT OR IGNORE INTO topic_names (mesh, topic) VALUES (?1, ?2)")?
        .execute(params![mesh, topic])?;
    let id: i64 = tx
        .prepare_cached("SELECT id FROM topic_names WHERE mesh = ?1 AND topic = ?2")?
        .query_row(params![mesh, topic], |r| r.get(0))?;
    if id > MAX_TOPIC {
        return Err(rusqlite::Error::ToSqlConversionFailure(
            format!("this broker's database holds its limit of {MAX_TOPIC} topics").into(),
        ));
    }
    names.insert((mesh.to_string(), topic.to_string()), id);
    Ok(id)
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with the default
    /// [`Durability`].
    pub fn open(path: &Path) -> Result<Self, MeshError> {
        Self::open_with(path, Durability::default())
    }

    /// Opens (or creates) the store at `path`, mode 0600 in a 0700
    /// directory, committing with `durability`. The database is checked
    /// first: a damaged one is refused with what to do, never half-used.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, MeshError> {
        nexus_core::private_db_file(path)
            .map_err(|e| MeshError::Storage(format!("cannot create {}: {e}", path.display())))?;
        let c = Connection::open(path).map_err(db)?;
        c.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(db)?;
        // 16 KiB pages (for a new file; an existing one keeps its own):
        // a group commit writes a quarter as many WAL frames, each a
        // pwrite, as with 4 KiB (docs/PERFORMANCE.md).
        c.pragma_update(None, "page_size", 16384).map_err(db)?;
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        c.pragma_update(None, "synchronous", durability.pragma())
            .map_err(db)?;
        check_integrity(&c, path)?;
        let mut c = c;
        c.execute_batch(SCHEMA).map_err(db)?;
        migrate(&mut c).map_err(db)?;
        // Checkpoints fsync; run them off the message path, on their own
        // connection, instead of inside whichever commit crosses the
        // threshold (that commit's latency would spike).
        c.pragma_update(None, "wal_autocheckpoint", 0).map_err(db)?;
        spawn_checkpointer(path.to_path_buf())?;
        Ok(SqliteStore {
            conn: Mutex::new((c, Cache::default())),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, MeshError> {
        self.with_names(|c, _| f(c))
    }

    fn with_names<T>(
        &self,
        f: impl FnOnce(&mut Connection, &mut Cache) -> rusqlite::Result<T>,
    ) -> Result<T, MeshError> {
        let mut g = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (c, names) = &mut *g;
        f(c, names).map_err(db)
    }
}

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    let caps: String = r.get(5)?;
    Ok(Member {
        mesh: r.get(0)?,
        peer: r.get(1)?,
        ed25519: r.get(2)?,
        x25519: r.get(3)?,
        name: r.get(4)?,
        caps: serde_json::from_str(&caps).unwrap_or_default(),
        blocked: r.get(6)?,
        status: r.get(7)?,
        summary: r.get(8)?,
        invite: r.get(9)?,
    })
}

impl BrokerStore for SqliteStore {
    fn create_mesh(&self, m: &MeshRecord) -> Result<bool, MeshError> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO meshes (mesh, owner_key) VALUES (?1, ?2)",
                params![m.mesh, m.owner_key],
            )
            .map(|n| n == 1)
        })
    }
    fn mesh(&self, mesh: &str) -> Result<Option<MeshRecord>, MeshError> {
        self.with(|c| {
            c.query_row(
                "SELECT mesh, owner_key FROM meshes WHERE mesh = ?1",
                params![mesh],
                |r| {
                    Ok(MeshRecord {
                        mesh: r.get(0)?,
                        owner_key: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }
    fn put_member(&self, m: &Member) -> Result<(), MeshError> {
        let caps = serde_json::to_string(&m.caps).unwrap_or_else(|_| "[]".into());
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO members
                 (mesh, peer, ed25519, x25519, name, caps, blocked, status, summary, invite)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    m.mesh, m.peer, m.ed25519, m.x25519, m.name, caps, m.blocked, m.status,
                    m.summary, m.invite
                ],
            )
            .map(|_| ())
        })
    }
    fn member(&self, mesh: &str, peer: &str) -> Result<Option<Member>, MeshError> {
        self.with(|c| {
            c.query_row(
                "SELECT mesh, peer, ed25519, x25519, name, caps, blocked, status, summary, invite
                 FROM members WHERE mesh = ?1 AND peer = ?2",
                params![mesh, peer],
                member_row,
            )
            .optional()
        })
    }
    fn members(&self, mesh: &str) -> Result<Vec<Member>, MeshError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT mesh, peer, ed25519, x25519, name, caps, blocked, status, summary, invite
                 FROM members WHERE mesh = ?1 ORDER BY peer",
            )?;
            let rows = st.query_map(params![mesh], member_row)?;
            rows.collect()
        })
    }
    fn use_invite(&self, mesh: &str, invite: &str, max_uses: u32) -> Result<bool, MeshError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let used: u32 = tx
                .query_row(
                    "SELECT uses FROM invites WHERE mesh = ?1 AND invite = ?2",
                    params![mesh, invite],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0);
            if used >= max_uses || used == REVOKED {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO invites (mesh, invite, uses) VALUES (?1, ?2, 1)
                 ON CONFLICT(mesh, invite) DO UPDATE SET uses = uses + 1",
                params![mesh, invite],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }
    fn revoke_invite(&self, mesh: &str, invite: &str) -> Result<(), MeshError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO invites (mesh, invite, uses) VALUES (?1, ?2, ?3)
                 ON CONFLICT(mesh, invite) DO UPDATE SET uses = ?3",
                params![mesh, invite, REVOKED],
            )
            .map(|_| ())
        })
    }
    fn enqueue(&self, mesh: &str, to: &str, q: &Queued) -> Result<(), MeshError> {
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO queue (mesh, recipient, id, frame) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![mesh, to, q.id, q.frame])
            .map(|_| ())
        })
    }
    fn pending(&self, mesh: &str, to: &str) -> Result<Vec<Queued>, MeshError> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, frame FROM queue WHERE mesh = ?1 AND recipient = ?2 ORDER BY seq",
            )?;
            let rows = st.query_map(params![mesh, to], |r| {
                Ok(Queued {
                    id: r.get(0)?,
                    frame: r.get(1)?,
                })
            })?;
            rows.collect()
        })
    }
    fn ack(&self, mesh: &str, to: &str, id: &str) -> Result<(), MeshError> {
        self.with(|c| {
            c.prepare_cached("DELETE FROM queue WHERE mesh = ?1 AND recipient = ?2 AND id = ?3")?
                .execute(params![mesh, to, id])
                .map(|_| ())
        })
    }
    fn put_invite_code(&self, short: &str, code: &str) -> Result<(), MeshError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO invite_codes (short, code) VALUES (?1, ?2)",
                params![short, code],
            )
            .map(|_| ())
        })
    }
    fn invite_code(&self, short: &str) -> Result<Option<String>, MeshError> {
        self.with(|c| {
            c.query_row(
                "SELECT code FROM invite_codes WHERE short = ?1",
                params![short],
                |r| r.get(0),
            )
            .optional()
        })
    }
    fn append_topics(&self, items: &[Append<'_>]) -> Result<Vec<Appended>, MeshError> {
        self.with_names(|c, cache| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut seqs = Vec::with_capacity(items.len());
            {
                // The next sequence number of each topic in the batch, read
                // once inside the transaction (so another writer cannot race).
                let mut next: HashMap<i64, i64> = HashMap::new();
                let mut last = tx
                    .prepare_cached("SELECT MAX(key) FROM topic_log WHERE key BETWEEN ?1 AND ?2")?;
                let mut insert = tx
                    .prepare_cached("INSERT INTO topic_log (key, frame, id) VALUES (?1, ?2, ?3)")?;
                for Append {
                    mesh,
                    topic,
                    id,
                    frame,
                } in items
                {
                    let t = topic_number(&tx, &mut cache.names, mesh, topic)?;
                    let base = t << SEQ_BITS;
                    if !cache.recent.has(t) {
                        let mut window = tx.prepare_cached(
                            "SELECT id, key FROM topic_log WHERE key BETWEEN ?1 AND ?2
                             ORDER BY key DESC LIMIT ?3",
                        )?;
                        let mut ids = window
                            .query_map(params![base, base | MAX_SEQ, recent::WINDOW as i64], |r| {
                                Ok((r.get::<_, Option<Vec<u8>>>(0)?, r.get::<_, i64>(1)? - base))
                            })?
                            .filter_map(|r| match r {
                                Ok((Some(id), seq)) => Some(Ok((id, seq))),
                                Ok((None, _)) => None,
                                Err(e) => Some(Err(e)),
                            })
                            .collect::<rusqlite::Result<Vec<_>>>()?;
                        ids.reverse();
                        cache.recent.load(t, ids);
                    }
                    let key = recent::id_bytes(id);
                    if let Some(was) = cache.recent.get(t, &key) {
                        seqs.push(Appended {
                            seq: u64::try_from(was).unwrap_or(0),
                            fresh: false,
                        });
                        continue;
                    }
                    let seq = match next.get_mut(&t) {
                        Some(n) => n,
                        None => {
                            let key: Option<i64> =
                                last.query_row(params![base, base | MAX_SEQ], |r| r.get(0))?;
                            next.entry(t).or_insert(key.map_or(0, |k| k - base))
                        }
                    };
                    if *seq >= MAX_SEQ {
                        return Err(rusqlite::Error::ToSqlConversionFailure(
                            format!("topic `{topic}` holds its limit of {MAX_SEQ} messages").into(),
                        ));
                    }
                    *seq += 1;
                    insert.execute(params![base | *seq, frame, &key])?;
                    cache.recent.insert(t, &key, *seq);
                    seqs.push(Appended {
                        seq: u64::try_from(*seq).unwrap_or(0),
                        fresh: true,
                    });
                }
            }
            tx.commit()?;
            Ok(seqs)
        })
        .inspect_err(|_| {
            // A failed transaction may have assigned topic numbers and
            // recorded ids that rolled back: forget them all.
            let mut g = self
                .conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.1.names.clear();
            g.1.recent.clear();
        })
    }
    fn history(
        &self,
        mesh: &str,
        topic: &str,
        before: Option<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, MeshError> {
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        self.with(|c| {
            let t: Option<i64> = c
                .prepare_cached("SELECT id FROM topic_names WHERE mesh = ?1 AND topic = ?2")?
                .query_row(params![mesh, topic], |r| r.get(0))
                .optional()?;
            let Some(t) = t else {
                return Ok(Vec::new());
            };
            let base = t << SEQ_BITS;
            // Rows are read one at a time and the scan stops at the budget:
            // a page never holds more than it may send.
            let mut st = c.prepare_cached(
                "SELECT key, length(frame) FROM topic_log WHERE key > ?1 AND key < ?2
                 ORDER BY key DESC",
            )?;
            let mut frame = c.prepare_cached("SELECT frame FROM topic_log WHERE key = ?1")?;
            let end = base + before.clamp(0, MAX_SEQ + 1);
            let mut rows = st.query(params![base, end])?;
            let mut page = PageBudget::new(limit, max_bytes);
            while let Some(r) = rows.next()? {
                let (key, len): (i64, i64) = (r.get(0)?, r.get(1)?);
                if !page.admit(usize::try_from(len).unwrap_or(usize::MAX)) {
                    break;
                }
                let f: Vec<u8> = frame.query_row(params![key], |r| r.get(0))?;
                page.entries
                    .push((u64::try_from(key - base).unwrap_or(0), f));
            }
            Ok(page.entries)
        })
    }
}

/// The shared store conformance suite. Its functions panic on failure.
#[allow(clippy::unwrap_used, clippy::panic)]
pub mod conformance {
    use super::*;

    fn member(peer: &str) -> Member {
        Member {
            mesh: "lab".into(),
            peer: peer.into(),
            ed25519: "ed".into(),
            x25519: "x".into(),
            name: peer.into(),
            caps: Capability::for_role("member"),
            blocked: false,
            status: String::new(),
            summary: String::new(),
            invite: "i0".into(),
        }
    }

    /// Meshes, members, invites.
    pub fn membership(s: &dyn BrokerStore) {
        let m = MeshRecord {
            mesh: "lab".into(),
            owner_key: "k".into(),
        };
        assert!(s.create_mesh(&m).unwrap());
        assert!(!s.create_mesh(&m).unwrap(), "names are unique");
        assert_eq!(s.mesh("lab").unwrap(), Some(m));
        s.put_member(&member("b")).unwrap();
        s.put_member(&member("a")).unwrap();
        let mut blocked = member("a");
        blocked.blocked = true;
        s.put_member(&blocked).unwrap();
        assert!(s.member("lab", "a").unwrap().unwrap().blocked);
        assert_eq!(s.members("lab").unwrap().len(), 2);
        let changed = s
            .update_member("lab", "b", &|m| m.status = "busy".into())
            .unwrap()
            .unwrap();
        assert_eq!(changed.status, "busy");
        assert_eq!(s.member("lab", "b").unwrap().unwrap().status, "busy");
        assert!(s.update_member("lab", "nobody", &|_| {}).unwrap().is_none());
        assert!(s.use_invite("lab", "i1", 2).unwrap());
        assert!(s.use_invite("lab", "i1", 2).unwrap());
        assert!(!s.use_invite("lab", "i1", 2).unwrap(), "max uses");
        assert_eq!(s.member("lab", "b").unwrap().unwrap().invite, "i0");
        assert!(s.use_invite("lab", "i2", 5).unwrap());
        s.revoke_invite("lab", "i2").unwrap();
        assert!(!s.use_invite("lab", "i2", 5).unwrap(), "revoked");
        s.revoke_invite("lab", "i3").unwrap();
        assert!(!s.use_invite("lab", "i3", 5).unwrap(), "revoked before use");
        s.put_invite_code("ABCD-0000-1111-2222", "full-code")
            .unwrap();
        assert_eq!(
            s.invite_code("ABCD-0000-1111-2222").unwrap().as_deref(),
            Some("full-code")
        );
        assert_eq!(s.invite_code("FFFF-0000-1111-2222").unwrap(), None);
    }

    /// The offline queue and topic history.
    pub fn queue_and_history(s: &dyn BrokerStore) {
        for id in ["m1", "m2", "m1"] {
            s.enqueue(
                "lab",
                "b",
                &Queued {
                    id: id.into(),
                    frame: id.as_bytes().to_vec(),
                },
            )
            .unwrap();
        }
        let p = s.pending("lab", "b").unwrap();
        assert_eq!(
            p.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            ["m1", "m2"]
        );
        s.ack("lab", "b", "m1").unwrap();
        assert_eq!(s.pending("lab", "b").unwrap().len(), 1);
        // Sequence numbers grow within a topic (by one in the SQLite and
        // memory stores; a JetStream mesh stream numbers all its topics'
        // messages together, so a topic's may skip).
        let mut t = Vec::new();
        for i in 0..5u8 {
            let a = s.append_topic("lab", "t", &format!("m{i}"), &[i]).unwrap();
            assert!(a.fresh);
            assert!(t.last().is_none_or(|l| a.seq > *l), "{t:?} then {}", a.seq);
            t.push(a.seq);
        }
        let seqs = |p: Vec<(u64, Vec<u8>)>| p.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        let page = s.history("lab", "t", None, 2, 1 << 20).unwrap();
        assert_eq!(seqs(page.clone()), [t[4], t[3]]);
        assert_eq!(page[0].1, [4]);
        let next = s.history("lab", "t", Some(t[3]), 10, 1 << 20).unwrap();
        assert_eq!(seqs(next), [t[2], t[1], t[0]]);
        assert!(s
            .history("lab", "none", None, 10, 1 << 20)
            .unwrap()
            .is_empty());
        assert!(s
            .history("lab", "t", Some(t[0]), 10, 1 << 20)
            .unwrap()
            .is_empty());
        // Pages are bounded in bytes too; a message larger than the budget
        // still comes, alone.
        let mut big = Vec::new();
        for i in 0..3 {
            big.push(
                s.append_topic("lab", "big", &format!("big{i}"), &[7; 1000])
                    .unwrap()
                    .seq,
            );
        }
        assert_eq!(
            seqs(s.history("lab", "big", None, 500, 2100).unwrap()),
            [big[2], big[1]]
        );
        assert_eq!(
            seqs(s.history("lab", "big", None, 500, 10).unwrap()),
            [big[2]]
        );
        assert_eq!(
            seqs(s.history("lab", "big", Some(big[2]), 500, 10).unwrap()),
            [big[1]]
        );
        // One message per id and topic: a retry or a second path stores
        // nothing and answers the first copy's number, also inside a batch;
        // the same id in another topic or mesh is another message.
        let dup = s.append_topic("lab", "t", "m1", b"retry").unwrap();
        assert_eq!(
            dup,
            Appended {
                seq: t[1],
                fresh: false
            }
        );
        let batch = s
            .append_topics(&[
                Append {
                    mesh: "lab",
                    topic: "t",
                    id: "n1",
                    frame: b"a",
                },
                Append {
                    mesh: "lab",
                    topic: "t",
                    id: "n1",
                    frame: b"b",
                },
                Append {
                    mesh: "lab",
                    topic: "u",
                    id: "n1",
                    frame: b"c",
                },
                Append {
                    mesh: "ops",
                    topic: "t",
                    id: "n1",
                    frame: b"d",
                },
            ])
            .unwrap();
        let fresh: Vec<bool> = batch.iter().map(|a| a.fresh).collect();
        assert_eq!(fresh, [true, false, true, true]);
        assert!(batch[0].seq > t[4] && batch[1].seq == batch[0].seq);
        let all = s.history("lab", "t", None, 100, 1 << 20).unwrap();
        assert_eq!(
            seqs(all.clone()),
            [batch[0].seq, t[4], t[3], t[2], t[1], t[0]]
        );
        assert_eq!(all[0].1, b"a", "the first copy is kept");
        assert_eq!(all[4].1, [1], "a retry changes nothing");
        assert_eq!(
            seqs(s.history("lab", "u", None, 10, 1 << 20).unwrap()),
            [batch[2].seq]
        );
        assert_eq!(
            seqs(s.history("ops", "t", None, 10, 1 << 20).unwrap()),
            [batch[3].seq]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_membership() {
        conformance::membership(&MemoryStore::default());
    }

    #[test]
    fn memory_queue_and_history() {
        conformance::queue_and_history(&MemoryStore::default());
    }

    #[test]
    fn sqlite_membership() {
        let d = tempfile::tempdir().unwrap();
        conformance::membership(&SqliteStore::open(&d.path().join("b.db")).unwrap());
    }

    #[test]
    fn sqlite_queue_and_history_survive_reopen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.db");
        conformance::queue_and_history(&SqliteStore::open(&p).unwrap());
        let again = SqliteStore::open(&p).unwrap();
        assert_eq!(again.pending("lab", "b").unwrap().len(), 1);
        assert_eq!(again.append_topic("lab", "t", "x", b"x").unwrap().seq, 7);
        // Ids are remembered across a restart.
        assert_eq!(
            again.append_topic("lab", "t", "m2", b"again").unwrap(),
            Appended {
                seq: 3,
                fresh: false
            }
        );
    }

    #[test]
    fn a_version_1_database_is_migrated_without_losing_history() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("old.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "CREATE TABLE topics (mesh TEXT NOT NULL, topic TEXT NOT NULL, seq INTEGER NOT NULL,
                     frame BLOB NOT NULL, PRIMARY KEY (mesh, topic, seq));
                 INSERT INTO topics VALUES ('lab', 't', 1, x'01'), ('lab', 't', 2, x'02'),
                     ('lab', 'u', 1, x'0a'), ('ops', 't', 1, x'0b');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&p).unwrap();
        let page = s.history("lab", "t", None, 10, 1 << 20).unwrap();
        assert_eq!(page, [(2, vec![2]), (1, vec![1])]);
        assert_eq!(
            s.history("lab", "u", None, 10, 1 << 20).unwrap(),
            [(1, vec![10])]
        );
        assert_eq!(
            s.history("ops", "t", None, 10, 1 << 20).unwrap(),
            [(1, vec![11])]
        );
        assert_eq!(s.append_topic("lab", "t", "x", b"x").unwrap().seq, 3);
        assert_eq!(
            s.append_topics(&[
                Append {
                    mesh: "ops",
                    topic: "t",
                    id: "y",
                    frame: b"y"
                },
                Append {
                    mesh: "new",
                    topic: "n",
                    id: "z",
                    frame: b"z"
                },
                Append {
                    mesh: "ops",
                    topic: "t",
                    id: "w",
                    frame: b"w"
                },
            ])
            .unwrap()
            .iter()
            .map(|a| a.seq)
            .collect::<Vec<_>>(),
            [2, 1, 3]
        );
        drop(s);
        // Opening again migrates nothing twice.
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(s.history("lab", "t", None, 10, 1 << 20).unwrap().len(), 3);
        assert_eq!(
            s.history("ops", "t", Some(3), 10, 1 << 20).unwrap().len(),
            2
        );
    }

    #[test]
    fn the_checkpointer_outlives_failures_and_backs_off() {
        let mut results = vec![
            Ok(()),
            Err("disk full"),
            Err("disk full"),
            Err("disk full"),
            Ok(()),
            Ok(()),
        ];
        results.reverse();
        let (mut slept, mut reports, mut calls) = (Vec::new(), Vec::new(), 0);
        let mut left = results.len();
        checkpoint_loop(
            || {
                let go = left > 0;
                left = left.saturating_sub(1);
                go
            },
            |d| slept.push(d.as_millis()),
            || {
                calls += 1;
                results.pop().unwrap()
            },
            |e| reports.push(e),
        );
        assert_eq!(calls, 6, "it kept checkpointing after failures");
        assert_eq!(slept, [500, 500, 1000, 2000, 4000, 500]);
        assert_eq!(reports, [Some("disk full"), None], "one report per spell");
    }

    #[test]
    fn a_damaged_database_is_refused_at_start_with_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("b.db");
        {
            let s = SqliteStore::open(&p).unwrap();
            for i in 0..200u32 {
                s.append_topic("lab", "t", &i.to_string(), &i.to_be_bytes().repeat(500))
                    .unwrap();
            }
            s.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);"))
                .unwrap();
        }
        // Overwrite a page in the middle of the file, as a bad disk would.
        let mut bytes = std::fs::read(&p).unwrap();
        assert!(bytes.len() > 5 * 16384);
        for b in &mut bytes[16384..3 * 16384] {
            *b = 0xa5;
        }
        std::fs::write(&p, &bytes).unwrap();
        let e = SqliteStore::open(&p).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("move the file"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn the_database_and_its_wal_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("home");
        let p = dir.join("broker.db");
        let s = SqliteStore::open(&p).unwrap();
        s.append_topic("lab", "t", "x", b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for f in ["broker.db", "broker.db-wal", "broker.db-shm"] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        drop(s);
        // An older broker's 0644 files are narrowed on the next start.
        for f in ["broker.db", "broker.db-wal"] {
            let _ = std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644));
        }
        let _s = SqliteStore::open(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn history_is_a_range_scan_of_the_topic_log() {
        let d = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&d.path().join("b.db")).unwrap();
        let plan: Vec<String> = s
            .with(|c| {
                let mut st = c.prepare(
                    "EXPLAIN QUERY PLAN SELECT key, frame FROM topic_log WHERE key > 1099511627776
                     AND key < 1099511627786 ORDER BY key DESC LIMIT 5",
                )?;
                let rows = st.query_map([], |r| r.get::<_, String>(3))?;
                rows.collect()
            })
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("SCAN")), "{plan:?}");
    }
}
