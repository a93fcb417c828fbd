//! The SQLite ledger: WAL mode, a busy timeout, and `BEGIN IMMEDIATE` for
//! every read-check-write, so several processes can share it safely.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, TransactionBehavior};

use nexus_core::Usd;

use super::{
    AttemptRecord, CategoryStats, HierarchyStats, Hold, Ledger, LedgerError, RequestRecord, Spend,
    TierStats, UsageReport,
};

/// A ledger in one SQLite file.
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL,
    amount INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    day TEXT NOT NULL,
    category TEXT NOT NULL,
    tier INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    outcome TEXT NOT NULL,
    ok INTEGER NOT NULL,
    reason TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_day ON attempts(day);
CREATE INDEX IF NOT EXISTS attempts_model_time ON attempts(model, at_ms);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    day TEXT NOT NULL,
    category TEXT NOT NULL,
    ok INTEGER NOT NULL,
    escalations INTEGER NOT NULL,
    final_tier INTEGER,
    cost INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_day ON requests(day);
-- The running total per day, kept in step with `attempts` in the same
-- transaction, so a budget check costs the same on the busiest day.
CREATE TABLE IF NOT EXISTS daily_spend (
    day TEXT PRIMARY KEY,
    spent INTEGER NOT NULL
) WITHOUT ROWID;
";

fn picos(u: Usd) -> i64 {
    i64::try_from(u.picos()).unwrap_or(i64::MAX)
}

fn usd(p: i64) -> Usd {
    Usd::from_picos(u64::try_from(p).unwrap_or(0))
}

impl SqliteLedger {
    /// Opens (or creates) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let err = |e: rusqlite::Error| LedgerError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        nexus_core::private_db_file(path).map_err(|e| LedgerError {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        // Ledgers from before holds expired: add the column (their old holds
        // read as expired, which is what a hold left by a dead process is).
        let has_expiry = conn
            .prepare("SELECT 1 FROM pragma_table_info('holds') WHERE name = 'expires_ms'")
            .and_then(|mut st| st.exists([]))
            .map_err(err)?;
        if !has_expiry {
            conn.execute_batch(
                "ALTER TABLE holds ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0",
            )
            .map_err(err)?;
        }
        Ok(SqliteLedger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn err(&self, e: rusqlite::Error) -> LedgerError {
        LedgerError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, LedgerError> {
        let mut c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut c).map_err(|e| self.err(e))
    }
}

fn spent(tx: &Connection, day: &str) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "SELECT (SELECT COALESCE(SUM(spent), 0) FROM daily_spend WHERE day = ?1)
              + (SELECT COALESCE(SUM(amount), 0) FROM holds WHERE day = ?1)",
    )?
    .query_row(params![day], |r| r.get(0))
}

fn spend_rows(c: &Connection, sql: &str, since: &str) -> rusqlite::Result<Vec<Spend>> {
    let mut st = c.prepare(sql)?;
    let rows = st.query_map(params![since], |r| {
        Ok(Spend {
            key: r.get(0)?,
            cost: usd(r.get(1)?),
            attempts: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            input_tokens: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            output_tokens: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        })
    })?;
    rows.collect()
}

impl Ledger for SqliteLedger {
    fn reserve(
        &self,
        day: &str,
        estimate: Usd,
        budget: Option<Usd>,
        now_ms: u64,
    ) -> Result<Option<Hold>, LedgerError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let expires = i64::try_from(now_ms.saturating_add(super::HOLD_TTL_MS)).unwrap_or(i64::MAX);
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM holds WHERE expires_ms <= ?1")?
                .execute(params![now])?;
            if let Some(b) = budget {
                let now = spent(&tx, day)?;
                if now.saturating_add(picos(estimate)) > picos(b) {
                    return Ok(None);
                }
            }
            tx.prepare_cached("INSERT INTO holds (day, amount, expires_ms) VALUES (?1, ?2, ?3)")?
                .execute(params![day, picos(estimate), expires])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(Some(Hold {
                id,
                amount: estimate,
            }))
        })
    }

    fn settle(&self, hold: Option<Hold>, a: &AttemptRecord) -> Result<(), LedgerError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(h) = hold {
                tx.prepare_cached("DELETE FROM holds WHERE id = ?1")?
                    .execute(params![h.id])?;
            }
            let day = super::day_of(a.at_ms);
            tx.prepare_cached(
                "INSERT INTO daily_spend (day, spent) VALUES (?1, ?2)
                 ON CONFLICT(day) DO UPDATE SET spent = spent + excluded.spent",
            )?
            .execute(params![day, picos(a.cost)])?;
            tx.prepare_cached(
                "INSERT INTO attempts (request_id, at_ms, day, category, tier, provider, model, outcome, ok,
                    reason, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                    reasoning_tokens, cost, latency_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
                    a.request_id,
                    a.at_ms as i64,
                    day,
                    a.bucket(),
                    a.tier,
                    a.provider,
                    a.model,
                    a.outcome,
                    a.ok,
                    a.reason,
                    a.usage.input_tokens as i64,
                    a.usage.output_tokens as i64,
                    a.usage.cache_read_tokens as i64,
                    a.usage.cache_write_tokens as i64,
                    a.usage.reasoning_tokens as i64,
                    picos(a.cost),
                    a.latency_ms as i64,
                ])?;
            tx.commit()
        })
    }

    fn record_request(&self, r: &RequestRecord) -> Result<(), LedgerError> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO requests (request_id, at_ms, day, category, ok, escalations, final_tier, cost)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    r.request_id,
                    r.at_ms as i64,
                    super::day_of(r.at_ms),
                    r.category.as_str(),
                    r.ok,
                    r.escalations,
                    r.final_tier,
                    picos(r.cost),
                ],
            )
            .map(|_| ())
        })
    }

    fn spent_on(&self, day: &str) -> Result<Usd, LedgerError> {
        self.with(|c| spent(c, day).map(usd))
    }

    fn held_on(&self, day: &str) -> Result<Usd, LedgerError> {
        self.with(|c| {
            c.prepare_cached("SELECT COALESCE(SUM(amount), 0) FROM holds WHERE day = ?1")?
                .query_row(params![day], |r| r.get::<_, i64>(0))
                .map(usd)
        })
    }

    fn recent_calls(&self, model: &str, since_ms: u64) -> Result<Vec<(u64, bool)>, LedgerError> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT at_ms, outcome LIKE 'error:%' FROM attempts
                 WHERE model = ?1 AND at_ms >= ?2 AND outcome NOT LIKE 'skipped%'
                 ORDER BY at_ms, id",
            )?;
            let rows = st.query_map(params![model, since_ms as i64], |r| {
                Ok((
                    u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    r.get::<_, bool>(1)?,
                ))
            })?;
            rows.collect()
        })
    }

    fn usage(&self, since: &str, today: &str) -> Result<UsageReport, LedgerError> {
        self.with(|c| {
            let sums = "SUM(cost), COUNT(*), SUM(input_tokens + cache_read_tokens + cache_write_tokens), SUM(output_tokens)";
            let by_day = spend_rows(
                c,
                &format!("SELECT day, {sums} FROM attempts WHERE day >= ?1 GROUP BY day ORDER BY day DESC"),
                since,
            )?;
            let by_category = spend_rows(
                c,
                &format!("SELECT category, {sums} FROM attempts WHERE day >= ?1 GROUP BY category ORDER BY SUM(cost) DESC, category"),
                since,
            )?;
            let by_model = spend_rows(
                c,
                &format!("SELECT model, {sums} FROM attempts WHERE day >= ?1 GROUP BY model ORDER BY SUM(cost) DESC, model"),
                since,
            )?;
            let total = by_day.iter().map(|d| d.cost).sum();
            Ok(UsageReport {
                today: usd(spent(c, today)?),
                total,
                by_day,
                by_category,
                by_model,
            })
        })
    }

    fn stats(&self, since: &str) -> Result<HierarchyStats, LedgerError> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT category, COUNT(*), SUM(escalations > 0), SUM(ok = 0)
                 FROM requests WHERE day >= ?1 GROUP BY category ORDER BY category",
            )?;
            let categories = st
                .query_map(params![since], |r| {
                    let requests = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
                    let escalated = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
                    Ok(CategoryStats {
                        category: r.get(0)?,
                        requests,
                        escalated,
                        escalation_rate: if requests == 0 {
                            0.0
                        } else {
                            escalated as f64 / requests as f64
                        },
                        failed: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut st = c.prepare(
                "SELECT tier + 1, COUNT(*), SUM(ok) FROM attempts
                 WHERE day >= ?1 AND outcome NOT LIKE 'skipped%' GROUP BY tier ORDER BY tier",
            )?;
            let tiers = st
                .query_map(params![since], |r| {
                    let attempts = u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0);
                    let successes = u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
                    Ok(TierStats {
                        tier: r.get(0)?,
                        attempts,
                        successes,
                        success_rate: if attempts == 0 {
                            0.0
                        } else {
                            successes as f64 / attempts as f64
                        },
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(HierarchyStats { categories, tiers })
        })
    }
}
