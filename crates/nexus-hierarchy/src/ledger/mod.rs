//! The cost ledger: every attempt, what it cost, and what is held against
//! the day's budget.
//!
//! Budget admission is a *reservation*: before a call, the estimate is held
//! atomically against the day's budget (so two processes cannot both slip
//! under it); after the call, the hold is replaced by the actual cost. A
//! process that dies mid-call leaves its hold in place, which errs on the
//! side of spending less.

mod memory;
mod sqlite;

pub use memory::MemoryLedger;
pub use sqlite::SqliteLedger;

use serde::{Deserialize, Serialize};

use nexus_core::{Usage, Usd};

use crate::config::Category;

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
#[error("cost ledger {path}: {message}")]
pub struct LedgerError {
    /// The database.
    pub path: String,
    /// What failed.
    pub message: String,
}

/// One attempt at one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The request (ask) it belongs to.
    pub request_id: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// The request's category; `None` for a direct chat (no hierarchy),
    /// which reports as `chat`.
    pub category: Option<Category>,
    /// The tier (0-based).
    pub tier: u32,
    /// The provider.
    pub provider: String,
    /// The model as configured (`provider/model`).
    pub model: String,
    /// `success`, `error:KIND`, `refusal`, `invalid_output`, `skipped:REASON`.
    pub outcome: String,
    /// Whether it produced the accepted answer.
    pub ok: bool,
    /// Why the engine moved on (or stopped), if it did.
    pub reason: Option<String>,
    /// Tokens.
    pub usage: Usage,
    /// Actual cost.
    pub cost: Usd,
    /// Wall time of the call.
    pub latency_ms: u64,
}

/// One request through the hierarchy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Unique id.
    pub request_id: String,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    /// Its category.
    pub category: Category,
    /// Whether an answer was accepted.
    pub ok: bool,
    /// How many times it escalated.
    pub escalations: u32,
    /// The tier that answered.
    pub final_tier: Option<u32>,
    /// Total cost.
    pub cost: Usd,
}

impl AttemptRecord {
    /// The category's name, or `chat` for a direct call.
    pub fn bucket(&self) -> &'static str {
        self.category.map_or("chat", Category::as_str)
    }
}

/// How long a hold lasts: one whose process died (a kill mid-request) stops
/// counting against the budget after this, instead of for the rest of the day.
pub const HOLD_TTL_MS: u64 = 15 * 60 * 1000;

/// A hold on budget, returned by [`Ledger::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// The hold's id.
    pub id: i64,
    /// The amount held.
    pub amount: Usd,
}

/// Spend in one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// The day, category or model.
    pub key: String,
    /// Money spent.
    pub cost: Usd,
    /// Attempts made.
    pub attempts: u64,
    /// Input tokens (uncached + cache).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// `nexus usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UsageReport {
    /// Spent today (UTC), holds included.
    pub today: Usd,
    /// Spent in the period.
    pub total: Usd,
    /// By day, newest first.
    pub by_day: Vec<Spend>,
    /// By category.
    pub by_category: Vec<Spend>,
    /// By model.
    pub by_model: Vec<Spend>,
}

/// Escalation behaviour of one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryStats {
    /// The category.
    pub category: String,
    /// Requests.
    pub requests: u64,
    /// Requests that escalated at least once.
    pub escalated: u64,
    /// `escalated / requests`.
    pub escalation_rate: f64,
    /// Requests with no accepted answer.
    pub failed: u64,
}

/// Success of one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierStats {
    /// The tier (1-based for people).
    pub tier: u32,
    /// Calls made at it (skips excluded).
    pub attempts: u64,
    /// Calls whose answer was accepted.
    pub successes: u64,
    /// `successes / attempts`.
    pub success_rate: f64,
}

/// `nexus hierarchy stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct HierarchyStats {
    /// Per category.
    pub categories: Vec<CategoryStats>,
    /// Per tier.
    pub tiers: Vec<TierStats>,
}

/// Where attempts and spend are kept.
pub trait Ledger: Send + Sync {
    /// Holds `estimate` against `day`'s spend if that stays within `budget`
    /// (always, when there is none), until settled or [`HOLD_TTL_MS`] after
    /// `now_ms`; holds past their time are dropped first. `None` means it
    /// would not fit.
    fn reserve(
        &self,
        day: &str,
        estimate: Usd,
        budget: Option<Usd>,
        now_ms: u64,
    ) -> Result<Option<Hold>, LedgerError>;

    /// The open holds on `day` (part of [`Ledger::spent_on`]).
    fn held_on(&self, day: &str) -> Result<Usd, LedgerError>;

    /// Records an attempt, releasing its hold (if any) in the same step.
    fn settle(&self, hold: Option<Hold>, attempt: &AttemptRecord) -> Result<(), LedgerError>;

    /// Records a finished request.
    fn record_request(&self, r: &RequestRecord) -> Result<(), LedgerError>;

    /// Spent on `day`, open holds included.
    fn spent_on(&self, day: &str) -> Result<Usd, LedgerError>;

    /// `(at_ms, failed)` of the calls to `model` since `since_ms`, oldest
    /// first, skips excluded; `failed` means a provider error (not a
    /// refusal or a rejected answer). Cooldowns are computed from this.
    fn recent_calls(&self, model: &str, since_ms: u64) -> Result<Vec<(u64, bool)>, LedgerError>;

    /// Spend since `since_day` (inclusive), with `today` for the header.
    fn usage(&self, since_day: &str, today: &str) -> Result<UsageReport, LedgerError>;

    /// Escalation and tier statistics since `since_day`.
    fn stats(&self, since_day: &str) -> Result<HierarchyStats, LedgerError>;
}

/// The UTC day (`YYYY-MM-DD`) of a millisecond timestamp.
pub fn day_of(ms: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// `day_of(ms)` minus `days` days.
pub fn day_before(ms: u64, days: u64) -> String {
    day_of(ms.saturating_sub(days * 86_400_000))
}

/// The shared ledger conformance suite. Its functions panic on failure,
/// like the assertions of the tests that call them.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub mod conformance {
    use super::*;

    fn attempt(
        req: &str,
        day_ms: u64,
        tier: u32,
        model: &str,
        ok: bool,
        cost: f64,
    ) -> AttemptRecord {
        AttemptRecord {
            request_id: req.into(),
            at_ms: day_ms,
            category: Some(Category::Coding),
            tier,
            provider: "p".into(),
            model: model.into(),
            outcome: if ok {
                "success".into()
            } else {
                "error:server".into()
            },
            ok,
            reason: (!ok).then(|| "provider error: server".into()),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Default::default()
            },
            cost: Usd::from_dollars(cost),
            latency_ms: 12,
        }
    }

    /// Holds count against the budget until settled; settling swaps the
    /// hold for the actual cost.
    pub fn reservations_respect_the_budget(l: &dyn Ledger) {
        let day = "2026-11-21";
        let budget = Some(Usd::from_dollars(1.0));
        const NOW: u64 = 1_795_219_200_000;
        let h1 = l
            .reserve(day, Usd::from_dollars(0.6), budget, NOW)
            .unwrap()
            .expect("fits");
        assert!(
            l.reserve(day, Usd::from_dollars(0.5), budget, NOW)
                .unwrap()
                .is_none(),
            "over budget"
        );
        assert_eq!(l.spent_on(day).unwrap(), Usd::from_dollars(0.6));
        l.settle(
            Some(h1),
            &attempt("r1", 1_795_219_200_000, 0, "p/a", true, 0.2),
        )
        .unwrap();
        assert_eq!(l.spent_on(day).unwrap(), Usd::from_dollars(0.2));
        assert!(l
            .reserve(day, Usd::from_dollars(0.5), budget, NOW)
            .unwrap()
            .is_some());
        assert!(
            l.reserve("2026-11-22", Usd::from_dollars(0.9), budget, NOW)
                .unwrap()
                .is_some(),
            "days are separate"
        );
        assert!(
            l.reserve(day, Usd::from_dollars(99.0), None, NOW)
                .unwrap()
                .is_some(),
            "no budget, no limit"
        );
        assert_eq!(l.held_on("2026-11-22").unwrap(), Usd::from_dollars(0.9));
        // A hold whose process died stops counting once its time is up.
        let later = NOW + HOLD_TTL_MS + 1;
        assert!(l
            .reserve("2026-11-22", Usd::from_dollars(0.9), budget, later)
            .unwrap()
            .is_some());
        assert_eq!(l.held_on("2026-11-22").unwrap(), Usd::from_dollars(0.9));
    }

    /// Usage and stats add up.
    pub fn reports_add_up(l: &dyn Ledger) {
        let t = 1_795_219_200_000; // 2026-11-21
        l.settle(None, &attempt("a", t, 0, "p/cheap", false, 0.01))
            .unwrap();
        l.settle(None, &attempt("a", t + 1, 1, "p/strong", true, 0.10))
            .unwrap();
        l.settle(None, &attempt("b", t + 2, 0, "p/cheap", true, 0.02))
            .unwrap();
        for (id, esc, tier, cost) in [("a", 1, 1, 0.11), ("b", 0, 0, 0.02)] {
            l.record_request(&RequestRecord {
                request_id: id.into(),
                at_ms: t,
                category: Category::Coding,
                ok: true,
                escalations: esc,
                final_tier: Some(tier),
                cost: Usd::from_dollars(cost),
            })
            .unwrap();
        }
        let u = l.usage("2026-11-01", "2026-11-21").unwrap();
        assert_eq!(u.total, Usd::from_dollars(0.13));
        assert_eq!(u.today, Usd::from_dollars(0.13));
        let cheap = u.by_model.iter().find(|s| s.key == "p/cheap").unwrap();
        assert_eq!((cheap.cost, cheap.attempts), (Usd::from_dollars(0.03), 2));
        assert_eq!(u.by_category[0].key, "coding");
        let s = l.stats("2026-11-01").unwrap();
        let c = &s.categories[0];
        assert_eq!((c.requests, c.escalated), (2, 1));
        assert!((c.escalation_rate - 0.5).abs() < 1e-9);
        let t1 = s.tiers.iter().find(|t| t.tier == 1).unwrap();
        assert_eq!((t1.attempts, t1.successes), (2, 1));
        let recent = l.recent_calls("p/cheap", t).unwrap();
        assert_eq!(recent, vec![(t, true), (t + 2, false)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_795_219_200_000), "2026-11-21");
        assert_eq!(day_of(951_782_400_000), "2000-02-29");
        assert_eq!(day_before(1_795_219_200_000, 21), "2026-10-31");
    }

    #[test]
    fn memory_reservations() {
        conformance::reservations_respect_the_budget(&MemoryLedger::default());
    }

    #[test]
    fn memory_reports() {
        conformance::reports_add_up(&MemoryLedger::default());
    }

    #[test]
    fn sqlite_reservations() {
        let d = tempfile::tempdir().unwrap();
        conformance::reservations_respect_the_budget(
            &SqliteLedger::open(&d.path().join("l.db")).unwrap(),
        );
    }

    #[test]
    fn sqlite_reports() {
        let d = tempfile::tempdir().unwrap();
        conformance::reports_add_up(&SqliteLedger::open(&d.path().join("l.db")).unwrap());
    }
}
