//! The in-memory ledger.

use std::collections::BTreeMap;
use std::sync::Mutex;

use nexus_core::Usd;

use super::{
    day_of, AttemptRecord, CategoryStats, HierarchyStats, Hold, Ledger, LedgerError, RequestRecord,
    Spend, TierStats, UsageReport,
};

#[derive(Default)]
struct Inner {
    /// id → (day, amount, expires at ms).
    holds: BTreeMap<i64, (String, Usd, u64)>,
    next: i64,
    attempts: Vec<AttemptRecord>,
    requests: BTreeMap<String, RequestRecord>,
}

/// A ledger that lives in memory (tests, one-shot tools).
#[derive(Default)]
pub struct MemoryLedger(Mutex<Inner>);

impl std::fmt::Debug for MemoryLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryLedger")
    }
}

impl MemoryLedger {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every attempt recorded, in order.
    pub fn attempts(&self) -> Vec<AttemptRecord> {
        self.inner().attempts.clone()
    }
}

fn spent(i: &Inner, day: &str) -> Usd {
    let a: Usd = i
        .attempts
        .iter()
        .filter(|a| day_of(a.at_ms) == day)
        .map(|a| a.cost)
        .sum();
    let h: Usd = i
        .holds
        .values()
        .filter(|(d, _, _)| d == day)
        .map(|(_, u, _)| *u)
        .sum();
    a + h
}

fn group(attempts: &[&AttemptRecord], key: impl Fn(&AttemptRecord) -> String) -> Vec<Spend> {
    let mut m: BTreeMap<String, Spend> = BTreeMap::new();
    for a in attempts {
        let k = key(a);
        let s = m.entry(k.clone()).or_insert_with(|| Spend {
            key: k,
            cost: Usd::ZERO,
            attempts: 0,
            input_tokens: 0,
            output_tokens: 0,
        });
        s.cost += a.cost;
        s.attempts += 1;
        s.input_tokens +=
            a.usage.input_tokens + a.usage.cache_read_tokens + a.usage.cache_write_tokens;
        s.output_tokens += a.usage.output_tokens;
    }
    let mut v: Vec<Spend> = m.into_values().collect();
    v.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.key.cmp(&b.key)));
    v
}

impl Ledger for MemoryLedger {
    fn reserve(
        &self,
        day: &str,
        estimate: Usd,
        budget: Option<Usd>,
        now_ms: u64,
    ) -> Result<Option<Hold>, LedgerError> {
        let mut i = self.inner();
        i.holds.retain(|_, h| h.2 > now_ms);
        if let Some(b) = budget {
            if spent(&i, day) + estimate > b {
                return Ok(None);
            }
        }
        i.next += 1;
        let id = i.next;
        i.holds
            .insert(id, (day.to_string(), estimate, now_ms + super::HOLD_TTL_MS));
        Ok(Some(Hold {
            id,
            amount: estimate,
        }))
    }

    fn settle(&self, hold: Option<Hold>, attempt: &AttemptRecord) -> Result<(), LedgerError> {
        let mut i = self.inner();
        if let Some(h) = hold {
            i.holds.remove(&h.id);
        }
        i.attempts.push(attempt.clone());
        Ok(())
    }

    fn record_request(&self, r: &RequestRecord) -> Result<(), LedgerError> {
        self.inner()
            .requests
            .insert(r.request_id.clone(), r.clone());
        Ok(())
    }

    fn spent_on(&self, day: &str) -> Result<Usd, LedgerError> {
        Ok(spent(&self.inner(), day))
    }

    fn held_on(&self, day: &str) -> Result<Usd, LedgerError> {
        Ok(self
            .inner()
            .holds
            .values()
            .filter(|h| h.0 == day)
            .map(|h| h.1)
            .sum())
    }

    fn recent_calls(&self, model: &str, since_ms: u64) -> Result<Vec<(u64, bool)>, LedgerError> {
        Ok(self
            .inner()
            .attempts
            .iter()
            .filter(|a| {
                a.model == model && a.at_ms >= since_ms && !a.outcome.starts_with("skipped")
            })
            .map(|a| (a.at_ms, a.outcome.starts_with("error:")))
            .collect())
    }

    fn usage(&self, since: &str, today: &str) -> Result<UsageReport, LedgerError> {
        let i = self.inner();
        let sel: Vec<&AttemptRecord> = i
            .attempts
            .iter()
            .filter(|a| day_of(a.at_ms).as_str() >= since)
            .collect();
        let mut by_day = group(&sel, |a| day_of(a.at_ms));
        by_day.sort_by(|a, b| b.key.cmp(&a.key));
        Ok(UsageReport {
            today: spent(&i, today),
            total: sel.iter().map(|a| a.cost).sum(),
            by_day,
            by_category: group(&sel, |a| a.bucket().to_string()),
            by_model: group(&sel, |a| a.model.clone()),
        })
    }

    fn stats(&self, since: &str) -> Result<HierarchyStats, LedgerError> {
        let i = self.inner();
        let mut cats: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        for r in i
            .requests
            .values()
            .filter(|r| day_of(r.at_ms).as_str() >= since)
        {
            let e = cats.entry(r.category.as_str().to_string()).or_default();
            e.0 += 1;
            e.1 += u64::from(r.escalations > 0);
            e.2 += u64::from(!r.ok);
        }
        let mut tiers: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
        for a in i
            .attempts
            .iter()
            .filter(|a| day_of(a.at_ms).as_str() >= since && !a.outcome.starts_with("skipped"))
        {
            let e = tiers.entry(a.tier + 1).or_default();
            e.0 += 1;
            e.1 += u64::from(a.ok);
        }
        Ok(HierarchyStats {
            categories: cats
                .into_iter()
                .map(|(category, (requests, escalated, failed))| CategoryStats {
                    category,
                    requests,
                    escalated,
                    escalation_rate: if requests == 0 {
                        0.0
                    } else {
                        escalated as f64 / requests as f64
                    },
                    failed,
                })
                .collect(),
            tiers: tiers
                .into_iter()
                .map(|(tier, (attempts, successes))| TierStats {
                    tier,
                    attempts,
                    successes,
                    success_rate: if attempts == 0 {
                        0.0
                    } else {
                        successes as f64 / attempts as f64
                    },
                })
                .collect(),
        })
    }
}
