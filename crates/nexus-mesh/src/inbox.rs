//! The local inbox: every direct and topic message a peer receives, kept
//! in SQLite under `NEXUS_HOME` (`inbox.db`, 0600) before the broker is
//! told it arrived. A direct message is acknowledged only once it is here;
//! a message is marked shown only once it was shown; the same message id
//! is kept once, whichever connection brought it and however often.
//!
//! Frames are stored as received (ciphertext): a topic message that came
//! before its key waits here, unshown, until the key arrives.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::frame::Frame;
use crate::MeshError;

/// One stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Its place in the inbox (arrival order).
    pub seq: i64,
    /// The mesh.
    pub mesh: String,
    /// The message id.
    pub id: String,
    /// The frame as received.
    pub frame: Frame,
}

/// The inbox database.
pub struct Inbox {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mesh TEXT NOT NULL,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    frame BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    shown INTEGER NOT NULL DEFAULT 0,
    UNIQUE (mesh, id));
CREATE INDEX IF NOT EXISTS unshown ON messages (mesh, shown, seq);
";

fn db(e: rusqlite::Error) -> MeshError {
    MeshError::Storage(format!("the local inbox: {e}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Inbox {
    /// Opens (or creates) the inbox at `path`. A damaged database is moved
    /// aside (to `inbox.db.damaged-<ms>`, with its WAL) and refused with a
    /// message naming where it went; it is never silently reset.
    pub fn open(path: &Path) -> Result<Inbox, MeshError> {
        nexus_core::private_db_file(path)
            .map_err(|e| MeshError::Storage(format!("cannot create {}: {e}", path.display())))?;
        let opened = Self::try_open(path);
        match opened {
            Ok(c) => Ok(Inbox {
                conn: Mutex::new(c),
                path: path.to_path_buf(),
            }),
            Err(why) => {
                let aside = PathBuf::from(format!("{}.damaged-{}", path.display(), now_ms()));
                let moved = std::fs::rename(path, &aside);
                for suffix in ["-wal", "-shm"] {
                    let mut from = path.as_os_str().to_owned();
                    from.push(suffix);
                    let mut to = aside.as_os_str().to_owned();
                    to.push(suffix);
                    let _ = std::fs::rename(&from, &to);
                }
                Err(MeshError::Storage(match moved {
                    Ok(()) => format!(
                        "the local inbox {} was damaged ({why}); it was moved to {} and a new one starts with the next command (messages not yet acknowledged are still at the broker)",
                        path.display(),
                        aside.display()
                    ),
                    Err(e) => format!(
                        "the local inbox {} is damaged ({why}) and could not be moved aside ({e}); move it away by hand",
                        path.display()
                    ),
                }))
            }
        }
    }

    fn try_open(path: &Path) -> Result<Connection, String> {
        let c = Connection::open(path).map_err(|e| e.to_string())?;
        c.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        c.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        // The inbox is written a message at a time: durable on every commit.
        c.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| e.to_string())?;
        let check: String = c
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if check != "ok" {
            return Err(check);
        }
        c.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
        Ok(c)
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, MeshError> {
        let c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&c).map_err(db)
    }

    /// Stores a direct or topic message (committed when this returns);
    /// false if the inbox had it already. Other frames are refused.
    pub fn store(&self, mesh: &str, f: &Frame) -> Result<bool, MeshError> {
        let (id, kind, topic) = match f {
            Frame::Dm { id, .. } => (id, "dm", ""),
            Frame::Publish { id, topic, .. } => (id, "topic", topic.as_str()),
            _ => return Err(MeshError::Invalid("only messages go in the inbox".into())),
        };
        let frame = f.encode();
        self.with(|c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO messages (mesh, id, kind, topic, frame, received_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![mesh, id, kind, topic, frame, now_ms()])
            .map(|n| n == 1)
        })
    }

    /// Stores several messages in one commit (one `fsync` for a burst);
    /// how many were new. Anything but a message is refused, storing none.
    pub fn store_all(&self, mesh: &str, frames: &[&Frame]) -> Result<usize, MeshError> {
        let mut rows = Vec::with_capacity(frames.len());
        for f in frames {
            let (id, kind, topic) = match f {
                Frame::Dm { id, .. } => (id, "dm", ""),
                Frame::Publish { id, topic, .. } => (id, "topic", topic.as_str()),
                _ => return Err(MeshError::Invalid("only messages go in the inbox".into())),
            };
            rows.push((id, kind, topic, f.encode()));
        }
        let now = now_ms();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let mut new = 0;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR IGNORE INTO messages (mesh, id, kind, topic, frame, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (id, kind, topic, frame) in &rows {
                    new += st.execute(params![mesh, id, kind, topic, frame, now])?;
                }
            }
            tx.commit()?;
            Ok(new)
        })
    }

    /// Whether the inbox holds message `id` of `mesh`.
    pub fn contains(&self, mesh: &str, id: &str) -> Result<bool, MeshError> {
        self.with(|c| {
            c.prepare_cached("SELECT 1 FROM messages WHERE mesh = ?1 AND id = ?2")?
                .query_row(params![mesh, id], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
        })
    }

    /// Messages of `mesh` not yet shown, in arrival order.
    pub fn unshown(&self, mesh: &str) -> Result<Vec<Stored>, MeshError> {
        let rows: Vec<(i64, String, Vec<u8>)> = self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT seq, id, frame FROM messages WHERE mesh = ?1 AND shown = 0 ORDER BY seq",
            )?;
            let rows = st.query_map(params![mesh], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, id, bytes)| {
                Frame::decode(&bytes).ok().map(|frame| Stored {
                    seq,
                    mesh: mesh.to_string(),
                    id,
                    frame,
                })
            })
            .collect())
    }

    /// Marks a message shown.
    pub fn mark_shown(&self, seq: i64) -> Result<(), MeshError> {
        self.with(|c| {
            c.prepare_cached("UPDATE messages SET shown = 1 WHERE seq = ?1")?
                .execute(params![seq])
                .map(|_| ())
        })
    }

    /// Marks several messages shown, in one commit.
    pub fn mark_all_shown(&self, seqs: &[i64]) -> Result<(), MeshError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            {
                let mut st = tx.prepare_cached("UPDATE messages SET shown = 1 WHERE seq = ?1")?;
                for s in seqs {
                    st.execute(params![s])?;
                }
            }
            tx.commit()
        })
    }

    /// Folds the write-ahead log into the database and truncates it;
    /// returns the WAL's size before, bytes.
    pub fn checkpoint(&self) -> Result<u64, MeshError> {
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        let before = std::fs::metadata(&wal).map_or(0, |m| m.len());
        self.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);"))?;
        Ok(before)
    }

    /// The newest row's number (0 when empty): it moves whenever a
    /// message is stored.
    pub fn last_seq(&self) -> Result<i64, MeshError> {
        self.with(|c| {
            c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages")?
                .query_row([], |r| r.get(0))
        })
    }

    /// Unread counts of `mesh`: `("direct", n)` and `("#topic", n)`.
    pub fn unread(&self, mesh: &str) -> Result<Vec<(String, u64)>, MeshError> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT kind, topic, COUNT(*) FROM messages WHERE mesh = ?1 AND shown = 0
                 GROUP BY kind, topic ORDER BY kind, topic",
            )?;
            let rows = st.query_map(params![mesh], |r| {
                let kind: String = r.get(0)?;
                let topic: String = r.get(1)?;
                let n: i64 = r.get(2)?;
                Ok((
                    if kind == "dm" {
                        "direct".to_string()
                    } else {
                        format!("#{topic}")
                    },
                    u64::try_from(n).unwrap_or(0),
                ))
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn dm(id: &str) -> Frame {
        Frame::Dm {
            id: id.into(),
            from: "a".into(),
            to: "b".into(),
            nonce: [1; 24],
            body: vec![2; 20],
        }
    }

    fn publish(id: &str, topic: &str) -> Frame {
        Frame::Publish {
            id: id.into(),
            from: "a".into(),
            topic: topic.into(),
            epoch: 0,
            nonce: [1; 24],
            body: vec![2; 20],
        }
    }

    #[test]
    fn messages_are_kept_once_in_order_until_shown() {
        let d = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&d.path().join("inbox.db")).unwrap();
        assert!(inbox.store("lab", &dm("m1")).unwrap());
        assert!(inbox.store("lab", &publish("t1", "builds")).unwrap());
        assert!(!inbox.store("lab", &dm("m1")).unwrap(), "the same id twice");
        assert!(inbox.store("ops", &dm("m1")).unwrap(), "another mesh");
        assert!(inbox.store("lab", &Frame::ListPeers).is_err());
        let u = inbox.unshown("lab").unwrap();
        assert_eq!(
            u.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["m1", "t1"]
        );
        assert_eq!(
            inbox.unread("lab").unwrap(),
            [("direct".to_string(), 1), ("#builds".to_string(), 1)]
        );
        inbox.mark_shown(u[0].seq).unwrap();
        drop(inbox);
        // Reopened: what was not shown is still there.
        let inbox = Inbox::open(&d.path().join("inbox.db")).unwrap();
        let u = inbox.unshown("lab").unwrap();
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].frame, publish("t1", "builds"));
        assert!(inbox.contains("lab", "m1").unwrap());
    }

    #[test]
    fn a_burst_is_stored_in_one_commit_once_and_in_order() {
        let d = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&d.path().join("inbox.db")).unwrap();
        let (a, b, t) = (dm("a"), dm("b"), publish("t1", "general"));
        assert_eq!(inbox.store_all("m", &[&a, &b, &t]).unwrap(), 3);
        // Again, with one new: the known ones are kept once.
        let c = dm("c");
        assert_eq!(inbox.store_all("m", &[&b, &c]).unwrap(), 1);
        let ids: Vec<String> = inbox
            .unshown("m")
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["a", "b", "t1", "c"]);
        // Anything but a message refuses the whole burst.
        let ack = Frame::Ack { id: "x".into() };
        assert!(inbox.store_all("m", &[&dm("d"), &ack]).is_err());
        assert!(!inbox.contains("m", "d").unwrap());
        assert!(inbox.last_seq().unwrap() >= 4);
        inbox.mark_all_shown(&[1, 2]).unwrap();
        assert_eq!(inbox.unshown("m").unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_inbox_is_moved_aside_not_reset() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("inbox.db");
        std::fs::write(&p, vec![0x5a; 8192]).unwrap();
        let e = Inbox::open(&p).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("moved to"), "{e}");
        let aside: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("inbox.db.damaged-")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), vec![0x5a; 8192]);
        // The next open starts a new inbox.
        Inbox::open(&p).unwrap();
    }
}
