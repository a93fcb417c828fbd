//! The conversation log: every `chat` turn a frontend records, in SQLite
//! under `NEXUS_HOME` (`history.db`, 0600), to continue a conversation
//! (`nexus chat -c`, `--cid`) and to list, show, search and remove past ones.

use std::path::Path;
use std::sync::Mutex;

use nexus_core::{Clock, NexusHome, RandomSource, SeededRandom, SystemClock, Usd};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::{Error, ErrorCode, Reply, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    title TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_ms);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    at_ms INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    system TEXT,
    prompt TEXT NOT NULL,
    response TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_picos INTEGER
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns(conversation_id, id);
";

/// The most turns of a conversation sent back to the model when continuing.
pub const MAX_CONTEXT_TURNS: usize = 200;

/// One recorded exchange.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    /// When, in milliseconds since the epoch.
    pub at_ms: u64,
    /// The provider that answered.
    pub provider: String,
    /// The model (`provider/model`).
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// What was asked.
    pub prompt: String,
    /// What came back.
    pub response: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Dollars, when known.
    pub cost: Option<f64>,
}

/// A conversation, with or without its turns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    /// Its id (`cid` on the command line).
    pub id: String,
    /// The model it was started with.
    pub model: String,
    /// The first prompt, shortened.
    pub title: String,
    /// Started, in milliseconds since the epoch.
    pub created_ms: u64,
    /// Last turn, in milliseconds since the epoch.
    pub updated_ms: u64,
    /// Its turns, oldest first (empty in listings).
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// The turns as a conversation to send (user and assistant messages).
    pub fn messages(&self) -> Vec<(String, String)> {
        let start = self.turns.len().saturating_sub(MAX_CONTEXT_TURNS);
        self.turns[start..]
            .iter()
            .flat_map(|t| {
                [
                    ("user".to_string(), t.prompt.clone()),
                    ("assistant".to_string(), t.response.clone()),
                ]
            })
            .collect()
    }
}

/// The conversation log.
#[derive(Debug)]
pub struct History {
    conn: Mutex<Connection>,
}

fn err(e: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("the conversation log: {e}"))
}

fn title_of(prompt: &str) -> String {
    let one_line: String = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= 60 {
        one_line
    } else {
        format!("{}…", one_line.chars().take(59).collect::<String>())
    }
}

fn ms(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl History {
    /// Opens (or creates) the log of `home`.
    pub fn open(home: &NexusHome) -> Result<History> {
        home.ensure()?;
        History::open_at(&home.join("history.db"))
    }

    /// Opens (or creates) the log at `path`.
    pub fn open_at(path: &Path) -> Result<History> {
        nexus_core::private_db_file(path)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("{}: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(History {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut c).map_err(err)
    }

    /// Records a turn: in conversation `cid` (created if new; `None` starts
    /// one). Returns the conversation's id.
    pub fn record(
        &self,
        cid: Option<&str>,
        system: Option<&str>,
        prompt: &str,
        reply: &Reply,
    ) -> Result<String> {
        let now = i64::try_from(SystemClock.now_millis()).unwrap_or(i64::MAX);
        let id = cid.map_or_else(
            || format!("{:016x}", SeededRandom::from_entropy().next_u64()),
            str::to_string,
        );
        let model = format!("{}/{}", reply.provider, reply.requested_model);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO conversations (id, model, title, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(id) DO UPDATE SET updated_ms = excluded.updated_ms",
                params![id, model, title_of(prompt), now],
            )?;
            tx.execute(
                "INSERT INTO turns (conversation_id, at_ms, provider, model, system, prompt, response,
                    input_tokens, output_tokens, cost_picos)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    now,
                    reply.provider,
                    model,
                    system,
                    prompt,
                    reply.text,
                    i64::try_from(reply.usage.input_tokens).unwrap_or(i64::MAX),
                    i64::try_from(reply.usage.output_tokens).unwrap_or(i64::MAX),
                    reply.cost.map(|c| i64::try_from(c.picos()).unwrap_or(i64::MAX)),
                ],
            )?;
            tx.commit()
        })?;
        Ok(id)
    }

    fn head(row: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
        Ok(Conversation {
            id: row.get(0)?,
            model: row.get(1)?,
            title: row.get(2)?,
            created_ms: ms(row.get(3)?),
            updated_ms: ms(row.get(4)?),
            turns: Vec::new(),
        })
    }

    /// The newest conversations first, at most `limit`.
    pub fn list(&self, limit: usize) -> Result<Vec<Conversation>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, model, title, created_ms, updated_ms FROM conversations
                 ORDER BY updated_ms DESC, rowid DESC LIMIT ?1",
            )?;
            let rows = st.query_map(params![limit], History::head)?;
            rows.collect()
        })
    }

    /// Conversations with a turn whose prompt or response contains `text`
    /// (case-insensitive for ASCII), newest first.
    pub fn search(&self, text: &str, limit: usize) -> Result<Vec<Conversation>> {
        let pattern = format!(
            "%{}%",
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, model, title, created_ms, updated_ms FROM conversations
                 WHERE id IN (SELECT conversation_id FROM turns
                              WHERE prompt LIKE ?1 ESCAPE '\\' OR response LIKE ?1 ESCAPE '\\')
                 ORDER BY updated_ms DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![pattern, limit], History::head)?;
            rows.collect()
        })
    }

    /// The newest conversation, with its turns.
    pub fn last(&self) -> Result<Option<Conversation>> {
        let id: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT id FROM conversations ORDER BY updated_ms DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
        })?;
        id.map_or(Ok(None), |id| self.get(&id))
    }

    /// Conversation `id` (or the one whose id starts with it), with its turns.
    pub fn get(&self, id: &str) -> Result<Option<Conversation>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, model, title, created_ms, updated_ms FROM conversations
                 WHERE id = ?1 OR id LIKE ?2 ORDER BY id = ?1 DESC LIMIT 2",
            )?;
            let prefix = format!("{}%", id.replace(['%', '_', '\\'], ""));
            let found: Vec<Conversation> = st
                .query_map(params![id, prefix], History::head)?
                .collect::<rusqlite::Result<_>>()?;
            let mut conv = match found.as_slice() {
                [one] => one.clone(),
                [exact, _] if exact.id == id => exact.clone(),
                _ => return Ok(None),
            };
            let mut st = c.prepare(
                "SELECT at_ms, provider, model, system, prompt, response, input_tokens,
                        output_tokens, cost_picos
                 FROM turns WHERE conversation_id = ?1 ORDER BY id",
            )?;
            conv.turns = st
                .query_map(params![conv.id], |r| {
                    Ok(Turn {
                        at_ms: ms(r.get(0)?),
                        provider: r.get(1)?,
                        model: r.get(2)?,
                        system: r.get(3)?,
                        prompt: r.get(4)?,
                        response: r.get(5)?,
                        input_tokens: ms(r.get(6)?),
                        output_tokens: ms(r.get(7)?),
                        cost: r
                            .get::<_, Option<i64>>(8)?
                            .map(|p| Usd::from_picos(u64::try_from(p).unwrap_or(0)).dollars()),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Some(conv))
        })
    }

    /// Removes conversation `id` and its turns; whether there was one.
    pub fn remove(&self, id: &str) -> Result<bool> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM turns WHERE conversation_id = ?1", params![id])?;
            let n = tx.execute("DELETE FROM conversations WHERE id = ?1", params![id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }
}
