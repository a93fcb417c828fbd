//! Direct chats count against the daily budget like `ask`: a hold on the
//! estimate before the call (waiting briefly for other requests' holds),
//! and the actual cost in the ledger after it, on every path: success,
//! provider error, and a stream dropped half-way.

use std::sync::Arc;
use std::time::Instant;

use nexus_core::{
    ChatRequest, ChatResponse, Clock, PolicyConfig, ProviderError, RandomSource, SystemClock, Usd,
};
use nexus_hierarchy::engine::reserve_waiting;
use nexus_hierarchy::ledger::{day_of, AttemptRecord, Hold, Ledger, SqliteLedger};
use nexus_hierarchy::router::PreparedTier;
use nexus_hierarchy::Tier;
use nexus_providers::registry::Target;

use crate::{Error, ErrorCode, Result};

/// One chat's claim on the budget; settle it with [`Spend::settle`].
/// Dropped unsettled (a stream abandoned mid-way), it records the call as
/// cancelled and releases its hold.
pub(crate) struct Spend {
    ledger: Arc<SqliteLedger>,
    hold: Option<Hold>,
    request_id: String,
    provider: String,
    model: String,
    started: Instant,
    settled: bool,
}

impl std::fmt::Debug for Spend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spend")
            .field("request_id", &self.request_id)
            .field("hold", &self.hold)
            .finish_non_exhaustive()
    }
}

/// Checks the budget for `req` to `target`, holds its estimate and, when a
/// per-request cap is set, lowers `req.max_tokens` so the call cannot cost
/// more than the cap.
pub(crate) async fn begin(
    ledger: Arc<SqliteLedger>,
    policy: &PolicyConfig,
    target: &Target,
    req: &mut ChatRequest,
) -> Result<Spend> {
    let mut tier = Tier::new(format!("{}/{}", target.provider, target.model));
    tier.max_tokens = req.max_tokens;
    let prepared = PreparedTier::new(tier, target.info.as_ref());
    let bytes = req.prompt_chars();
    let messages = req.messages.len().max(1);
    let mut max_tokens = prepared.max_tokens;
    if let Some(cap) = policy.max_cost_per_request {
        max_tokens = prepared.fit_to_cap(bytes, messages, cap).ok_or_else(|| {
            Error::new(
                ErrorCode::BudgetExceeded,
                format!(
                    "this request could cost more than the per-request cap of {cap} even with a short answer; \
                     raise it with `nexus hierarchy policy set max-cost=AMOUNT` or shorten the prompt"
                ),
            )
        })?;
        if prepared.pricing.is_some() {
            req.max_tokens = Some(max_tokens);
        }
    }
    let estimate = prepared.estimate_with(bytes, messages, max_tokens);
    let now = SystemClock.now_millis();
    let today = day_of(now);
    let budget = policy.daily_budget;
    if let Some(b) = budget {
        let held = ledger.held_on(&today)?;
        let settled = ledger.spent_on(&today)?.saturating_sub(held);
        if settled >= b {
            return Err(Error::new(
                ErrorCode::BudgetExceeded,
                format!(
                    "the daily budget of {b} is spent ({settled} today, chats included); \
                     raise it with `nexus hierarchy policy set daily-budget=AMOUNT`"
                ),
            ));
        }
    }
    let hold = reserve_waiting(&*ledger, &today, estimate, budget, &|| {
        SystemClock.now_millis()
    })
    .await?;
    if hold.is_none() {
        let left = budget
            .unwrap_or(Usd::ZERO)
            .saturating_sub(ledger.spent_on(&today)?);
        return Err(Error::new(
            ErrorCode::BudgetExceeded,
            format!(
                "this request may cost up to {estimate} (up to {max_tokens} output tokens) and only {left} of today's budget is left; \
                 lower --max-tokens or raise the budget with `nexus hierarchy policy set daily-budget=AMOUNT`"
            ),
        ));
    }
    Ok(Spend {
        ledger,
        hold,
        request_id: format!(
            "chat_{:016x}",
            nexus_core::SeededRandom::from_entropy().next_u64()
        ),
        provider: target.provider.clone(),
        model: format!("{}/{}", target.provider, target.model),
        started: Instant::now(),
        settled: false,
    })
}

impl Spend {
    /// Records how the call ended: the answer and its cost, or the error.
    pub(crate) fn settle(
        &mut self,
        outcome: std::result::Result<(&ChatResponse, Option<Usd>), &ProviderError>,
    ) -> Result<()> {
        let (label, ok, usage, cost) = match outcome {
            Ok((r, cost)) => (
                "success".to_string(),
                true,
                r.usage,
                cost.unwrap_or(Usd::ZERO),
            ),
            Err(e) => (
                format!("error:{}", e.kind.as_str()),
                false,
                nexus_core::Usage::default(),
                Usd::ZERO,
            ),
        };
        self.record(label, ok, usage, cost)
    }

    /// Records a call that ended without a usable answer.
    pub(crate) fn fail(&mut self, label: &str) {
        let _ = self.record(
            label.to_string(),
            false,
            nexus_core::Usage::default(),
            Usd::ZERO,
        );
    }

    fn record(
        &mut self,
        outcome: String,
        ok: bool,
        usage: nexus_core::Usage,
        cost: Usd,
    ) -> Result<()> {
        if self.settled {
            return Ok(());
        }
        self.settled = true;
        self.ledger.settle(
            self.hold.take(),
            &AttemptRecord {
                request_id: self.request_id.clone(),
                at_ms: SystemClock.now_millis(),
                category: None,
                tier: 0,
                provider: self.provider.clone(),
                model: self.model.clone(),
                outcome,
                ok,
                reason: None,
                usage,
                cost,
                latency_ms: self.started.elapsed().as_millis() as u64,
            },
        )?;
        Ok(())
    }
}

impl Drop for Spend {
    fn drop(&mut self) {
        let _ = self.record(
            "cancelled".into(),
            false,
            nexus_core::Usage::default(),
            Usd::ZERO,
        );
    }
}
