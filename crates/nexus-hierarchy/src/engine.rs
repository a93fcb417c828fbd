//! The escalation engine: walk a category's tiers under an
//! [`EscalationPolicy`], within budgets, skipping cooled-down models,
//! recording every attempt in the [`Ledger`].

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use nexus_core::{
    Admission, AttemptOutcome, AttemptReport, ChatRequest, ChatResponse, Clock, Decision,
    ErrorKind, ModelInfo, Provider, ProviderError, RandomSource, StopReason, Usage, Usd,
};

use crate::classify::{split_tag, Basis, TaskContext};
use crate::config::{Category, CooldownConfig};
use crate::cooldown::{cooling_until, lookback_ms};
use crate::ledger::{day_of, AttemptRecord, Ledger, RequestRecord};
use crate::router::{PreparedTier, Router, MIN_FIT_TOKENS};
use crate::validate::Validator;
use crate::HierarchyError;

/// How long a request waits for other requests' budget holds to settle.
pub const HOLD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const HOLD_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Holds `estimate` against `today`'s budget. When only other requests'
/// open holds are in the way (concurrent requests sharing the ledger),
/// waits for them to settle, up to [`HOLD_WAIT`], instead of failing at
/// once. `None`: it does not fit.
pub async fn reserve_waiting(
    ledger: &dyn Ledger,
    today: &str,
    estimate: Usd,
    budget: Option<Usd>,
    now_ms: &(dyn Fn() -> u64 + Sync),
) -> Result<Option<crate::ledger::Hold>, crate::ledger::LedgerError> {
    let polls = HOLD_WAIT.as_millis() / HOLD_POLL.as_millis();
    for _ in 0..=polls {
        if let Some(h) = ledger.reserve(today, estimate, budget, now_ms())? {
            return Ok(Some(h));
        }
        let Some(b) = budget else { return Ok(None) };
        let held = ledger.held_on(today)?;
        let settled = ledger.spent_on(today)?.saturating_sub(held);
        if held == Usd::ZERO || settled + estimate > b {
            return Ok(None);
        }
        tokio::time::sleep(HOLD_POLL).await;
    }
    Ok(None)
}

/// Where the engine finds a provider for a tier's model.
pub trait ProviderSource: Send + Sync {
    /// The provider type (the engine is generic over it).
    type Provider: Provider;

    /// The catalog entry of `model`, if known (for cost).
    fn info(&self, model: &str) -> Option<ModelInfo>;

    /// A provider for `model`: `(provider name, provider, wire model id)`.
    fn provider(&self, model: &str) -> Result<(String, Self::Provider, String), HierarchyError>;
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted.
    Success,
    /// The provider failed.
    Error {
        /// The class.
        kind: ErrorKind,
        /// The message.
        message: String,
    },
    /// The model refused.
    Refusal,
    /// A validator rejected the answer.
    InvalidOutput {
        /// Which validator and why.
        reason: String,
    },
    /// Not called.
    Skipped {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Success => "success".into(),
            Outcome::Error { kind, .. } => format!("error:{kind}"),
            Outcome::Refusal => "refusal".into(),
            Outcome::InvalidOutput { .. } => "invalid_output".into(),
            Outcome::Skipped { .. } => "skipped".into(),
        }
    }
}

/// One attempt, as `nexus ask --json` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The tier (1-based).
    pub tier: u32,
    /// The model as configured.
    pub model: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Why the engine moved on (or stopped) after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalation: Option<String>,
    /// The model that actually answered, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    /// Tokens.
    pub usage: Usage,
    /// Estimated cost before the call.
    pub estimate: Usd,
    /// Actual cost.
    pub cost: Usd,
    /// Wall time of the call.
    pub latency_ms: u64,
}

/// A request through the hierarchy.
#[derive(Debug, Clone, Default)]
pub struct AskRequest {
    /// The prompt (a leading `[tag]` picks the category and is removed).
    pub prompt: String,
    /// The system prompt.
    pub system: Option<String>,
    /// Forces the category.
    pub category: Option<Category>,
    /// What else is known about the task.
    pub context: TaskContext,
}

/// The accepted answer and how it was reached.
#[derive(Debug, Clone, Serialize)]
pub struct AskOutcome {
    /// This request's id in the ledger.
    pub request_id: String,
    /// The category.
    pub category: Category,
    /// Why that category.
    pub basis: Basis,
    /// The tier that answered (1-based).
    pub tier: u32,
    /// The provider that answered.
    pub provider: String,
    /// The answer.
    pub response: ChatResponse,
    /// Every attempt, skips included.
    pub attempts: Vec<Attempt>,
    /// The sum of the attempts' costs.
    pub total_cost: Usd,
    /// How many times it escalated.
    pub escalations: u32,
}

/// Why no answer was accepted.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The budget is spent (or zero); `attempts` may be empty.
    #[error("budget: {reason}")]
    Budget {
        /// Which budget and how much.
        reason: String,
        /// Attempts made before it ran out.
        attempts: Vec<Attempt>,
    },
    /// The policy stopped after a failure.
    #[error("{reason}")]
    Stopped {
        /// Why.
        reason: String,
        /// Every attempt.
        attempts: Vec<Attempt>,
        /// The last provider error, if the last failure was one.
        last_error: Option<Box<ProviderError>>,
    },
    /// Every tier was tried or skipped.
    #[error("every tier of {category} failed or was skipped ({} attempt(s)); see the attempts for why", attempts.len())]
    Exhausted {
        /// The category.
        category: Category,
        /// Every attempt.
        attempts: Vec<Attempt>,
        /// The last provider error, if any.
        last_error: Option<Box<ProviderError>>,
    },
    /// No tiers are configured for the category.
    #[error("no tiers are configured for {0}; run `nexus hierarchy preset balanced` or `nexus hierarchy set {0} tier1=MODEL`")]
    NoTiers(Category),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

impl AskError {
    /// The attempts made, if any.
    pub fn attempts(&self) -> &[Attempt] {
        match self {
            AskError::Budget { attempts, .. }
            | AskError::Stopped { attempts, .. }
            | AskError::Exhausted { attempts, .. } => attempts,
            _ => &[],
        }
    }

    /// The last provider error, if any.
    pub fn last_error(&self) -> Option<&ProviderError> {
        match self {
            AskError::Stopped { last_error, .. } | AskError::Exhausted { last_error, .. } => {
                last_error.as_deref()
            }
            _ => None,
        }
    }
}

const REFUSALS: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am unable to help",
    "i'm unable to help",
    "i won't be able to help",
];

/// Whether an answer is a refusal: by stop reason, or a short answer that
/// opens with a refusal phrase.
pub fn is_refusal(r: &ChatResponse) -> bool {
    if matches!(
        r.stop_reason,
        StopReason::Refusal | StopReason::ContentFilter
    ) {
        return true;
    }
    let t = r.text.trim_start();
    if t.len() > 400 || !r.tool_calls.is_empty() {
        return false;
    }
    let head: String = t
        .chars()
        .take(48)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    REFUSALS.iter().any(|p| head.starts_with(p))
}

/// The escalation engine.
pub struct EscalationEngine<S: ProviderSource> {
    source: S,
    router: Router,
    ledger: Arc<dyn Ledger>,
    validators: Vec<Arc<dyn Validator>>,
    cooldown: CooldownConfig,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    observer: Option<AttemptObserver>,
}

/// Told of each attempt as it ends (a frontend shows "tier 1 failed,
/// escalating to tier 2" while the request goes on).
pub type AttemptObserver = Arc<dyn Fn(&Attempt) + Send + Sync>;

impl<S: ProviderSource> std::fmt::Debug for EscalationEngine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscalationEngine")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

impl<S: ProviderSource> EscalationEngine<S> {
    /// An engine over `source` with `router`'s tiers and policy.
    pub fn new(
        source: S,
        router: Router,
        ledger: Arc<dyn Ledger>,
        cooldown: CooldownConfig,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
    ) -> Self {
        EscalationEngine {
            source,
            router,
            ledger,
            validators: Vec::new(),
            cooldown,
            clock,
            rng,
            observer: None,
        }
    }

    /// Tells `f` of each attempt as it ends.
    pub fn with_observer(mut self, f: AttemptObserver) -> Self {
        self.observer = Some(f);
        self
    }

    /// Adds a validator every answer must pass.
    pub fn with_validator(mut self, v: Arc<dyn Validator>) -> Self {
        self.validators.push(v);
        self
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    fn skipped_attempt(
        &self,
        i: usize,
        t: &PreparedTier,
        estimate: Usd,
        reason: String,
    ) -> Attempt {
        Attempt {
            tier: i as u32 + 1,
            model: t.tier.model.clone(),
            outcome: Outcome::Skipped { reason },
            escalation: None,
            answered_by: None,
            usage: Usage::default(),
            estimate,
            cost: Usd::ZERO,
            latency_ms: 0,
        }
    }

    /// Records a skipped tier and adds it to the attempts.
    fn skip_recorded(
        &self,
        attempts: &mut Vec<Attempt>,
        request_id: &str,
        category: Category,
        (i, t, estimate): (usize, &PreparedTier, Usd),
        provider: &str,
        reason: String,
    ) -> Result<(), AskError> {
        let a = self.skipped_attempt(i, t, estimate, reason);
        self.record(request_id, category, i, provider, None, &a)?;
        attempts.push(a);
        Ok(())
    }

    fn record(
        &self,
        request_id: &str,
        category: Category,
        i: usize,
        provider: &str,
        hold: Option<crate::ledger::Hold>,
        a: &Attempt,
    ) -> Result<(), AskError> {
        if let Some(f) = &self.observer {
            f(a);
        }
        self.ledger.settle(
            hold,
            &AttemptRecord {
                request_id: request_id.to_string(),
                at_ms: self.clock.now_millis(),
                category: Some(category),
                tier: i as u32,
                provider: provider.to_string(),
                model: a.model.clone(),
                outcome: match &a.outcome {
                    Outcome::Skipped { .. } => "skipped".into(),
                    o => o.label(),
                },
                ok: a.outcome == Outcome::Success,
                reason: a.escalation.clone().or_else(|| match &a.outcome {
                    Outcome::Skipped { reason } => Some(reason.clone()),
                    _ => None,
                }),
                usage: a.usage,
                cost: a.cost,
                latency_ms: a.latency_ms,
            },
        )?;
        Ok(())
    }

    /// Runs a request through the hierarchy.
    pub async fn ask(&self, req: AskRequest) -> Result<AskOutcome, AskError> {
        let request_id = format!("ask_{:016x}", self.rng.next_u64());
        let (category, basis, prompt) = match (req.category, split_tag(&req.prompt)) {
            (Some(c), tagged) => (
                c,
                Basis::Explicit,
                tagged.map_or(req.prompt.as_str(), |(_, p)| p),
            ),
            (None, Some((c, rest))) => (c, Basis::Tag, rest),
            (None, None) => {
                let c = self.router.classifier().classify(&req.prompt, req.context);
                (c.category, c.basis, req.prompt.as_str())
            }
        };
        let tiers = self.router.tiers(category);
        if tiers.is_empty() {
            return Err(AskError::NoTiers(category));
        }
        let policy = self.router.policy();
        let now = self.clock.now_millis();
        let today = day_of(now);
        // Settled spend: other requests' open holds are waited for at the
        // reservation, not counted as spent.
        let mut spent_today = self
            .ledger
            .spent_on(&today)?
            .saturating_sub(self.ledger.held_on(&today)?);
        // A zero or spent budget stops before anything is sent.
        if let Some(b) = policy.daily_budget() {
            if spent_today >= b {
                return Err(AskError::Budget {
                    reason: format!(
                        "the daily budget of {b} is spent ({spent_today} today); raise it with `nexus hierarchy policy set daily-budget=AMOUNT`"
                    ),
                    attempts: Vec::new(),
                });
            }
        }
        let prompt_bytes = prompt.len() + req.system.as_ref().map_or(0, String::len);
        let mut attempts: Vec<Attempt> = Vec::new();
        let mut spent_request = Usd::ZERO;
        let mut escalations = 0u32;
        let mut last_error: Option<Box<ProviderError>> = None;
        // Why tiers were skipped for money, to report a budget error when
        // nothing could be afforded at all.
        let mut budget_skip: Option<String> = None;
        let mut calls = 0usize;
        let finish = |ok: bool, attempts: &[Attempt], escalations: u32, final_tier: Option<u32>| {
            self.ledger.record_request(&RequestRecord {
                request_id: request_id.clone(),
                at_ms: now,
                category,
                ok,
                escalations,
                final_tier,
                cost: attempts.iter().map(|a| a.cost).sum(),
            })
        };

        for (i, t) in tiers.iter().enumerate() {
            let estimate = t.estimate(prompt_bytes, 1);
            // Cooldown, from the ledger's record of recent calls.
            let recent = self.ledger.recent_calls(
                &t.tier.model,
                now.saturating_sub(lookback_ms(&self.cooldown)),
            )?;
            if let Some(until) = cooling_until(&recent, &self.cooldown, self.clock.now_millis()) {
                let secs = until.saturating_sub(self.clock.now_millis()).div_ceil(1000);
                self.skip_recorded(
                    &mut attempts,
                    &request_id,
                    category,
                    (i, t, estimate),
                    "",
                    format!("cooling down for {secs}s after repeated failures"),
                )?;
                continue;
            }
            let mut max_tokens = t.max_tokens;
            let mut estimate = estimate;
            if let Some(cap) = t.tier.max_cost_per_request {
                match t.fit_to_cap(prompt_bytes, 1, cap) {
                    Some(n) => {
                        max_tokens = n;
                        estimate = t.estimate_with(prompt_bytes, 1, n);
                    }
                    None => {
                        let n = i + 1;
                        self.skip_recorded(
                            &mut attempts,
                            &request_id,
                            category,
                            (i, t, estimate),
                            "",
                            format!(
                                "estimated {estimate} (the prompt plus up to {} output tokens) exceeds this tier's cap of {cap}, \
                                 and fewer than {MIN_FIT_TOKENS} output tokens would fit; raise tier{n}.max_cost or shorten the prompt",
                                t.max_tokens
                            ),
                        )?;
                        continue;
                    }
                }
            }
            match policy.admit(estimate, spent_today, spent_request) {
                Admission::Admit => {}
                Admission::Skip(reason) => {
                    budget_skip.get_or_insert_with(|| reason.clone());
                    self.skip_recorded(
                        &mut attempts,
                        &request_id,
                        category,
                        (i, t, estimate),
                        "",
                        reason,
                    )?;
                    continue;
                }
                Admission::BudgetExhausted(reason) => {
                    finish(false, &attempts, escalations, None)?;
                    return Err(AskError::Budget { reason, attempts });
                }
            }
            let (provider_name, provider, wire_model) = match self.source.provider(&t.tier.model) {
                Ok(p) => p,
                Err(e) => {
                    self.skip_recorded(
                        &mut attempts,
                        &request_id,
                        category,
                        (i, t, estimate),
                        "",
                        e.to_string(),
                    )?;
                    continue;
                }
            };
            // Hold the estimate against the day's budget, atomically with
            // every other process sharing the ledger.
            let Some(hold) = reserve_waiting(
                &*self.ledger,
                &today,
                estimate,
                policy.daily_budget(),
                &|| self.clock.now_millis(),
            )
            .await?
            else {
                budget_skip.get_or_insert_with(|| "the rest of the daily budget was taken".into());
                self.skip_recorded(
                    &mut attempts,
                    &request_id,
                    category,
                    (i, t, estimate),
                    &provider_name,
                    "another request took the rest of the daily budget".into(),
                )?;
                continue;
            };

            calls += 1;
            let mut chat = ChatRequest::new(wire_model, prompt);
            chat.system.clone_from(&req.system);
            chat.max_tokens = Some(max_tokens);
            let started = Instant::now();
            let result = provider.chat(&chat).await;
            let latency_ms = started.elapsed().as_millis() as u64;

            let (outcome, usage, cost, response) = match result {
                Err(e) => {
                    let o = Outcome::Error {
                        kind: e.kind,
                        message: e.to_string(),
                    };
                    last_error = Some(Box::new(e));
                    (o, Usage::default(), Usd::ZERO, None)
                }
                Ok(r) => {
                    let info = self.source.info(&t.tier.model);
                    let cost = r
                        .provider_cost
                        .or_else(|| info.map(|m| m.cost(&r.usage)))
                        .unwrap_or(Usd::ZERO);
                    let outcome = if is_refusal(&r) {
                        Outcome::Refusal
                    } else {
                        let mut o = Outcome::Success;
                        for v in &self.validators {
                            if let Err(reason) = v.validate(&r).await {
                                o = Outcome::InvalidOutput {
                                    reason: format!("{}: {reason}", v.name()),
                                };
                                break;
                            }
                        }
                        o
                    };
                    (outcome, r.usage, cost, Some(r))
                }
            };
            spent_request += cost;
            spent_today += cost;
            let report = AttemptReport {
                tier: i,
                escalations,
                outcome: match &outcome {
                    Outcome::Success => AttemptOutcome::Success,
                    Outcome::Error { kind, .. } => AttemptOutcome::Error { kind: *kind },
                    Outcome::Refusal => AttemptOutcome::Refusal,
                    Outcome::InvalidOutput { reason } => AttemptOutcome::InvalidOutput {
                        reason: reason.clone(),
                    },
                    Outcome::Skipped { .. } => AttemptOutcome::Success,
                },
            };
            let decision = policy.decide(&report);
            let mut attempt = Attempt {
                tier: i as u32 + 1,
                model: t.tier.model.clone(),
                outcome,
                escalation: None,
                answered_by: response.as_ref().map(|r| r.model.clone()),
                usage,
                estimate,
                cost,
                latency_ms,
            };
            // Why the engine moved on (or stopped) after this attempt.
            let last_tier = i + 1 == tiers.len();
            attempt.escalation = match &decision {
                Decision::Accept => None,
                Decision::Escalate(reason) if last_tier => {
                    Some(format!("stopped: {reason}; no higher tier is configured"))
                }
                Decision::Escalate(reason) => Some(reason.clone()),
                Decision::Stop(reason) => Some(format!("stopped: {reason}")),
            };
            self.record(
                &request_id,
                category,
                i,
                &provider_name,
                Some(hold),
                &attempt,
            )?;
            attempts.push(attempt);
            match decision {
                Decision::Accept => {
                    finish(true, &attempts, escalations, Some(i as u32))?;
                    let total_cost = attempts.iter().map(|a| a.cost).sum();
                    let response = response.ok_or_else(|| AskError::Stopped {
                        reason: "accepted an attempt without an answer".into(),
                        attempts: Vec::new(),
                        last_error: None,
                    })?;
                    return Ok(AskOutcome {
                        request_id,
                        category,
                        basis,
                        tier: i as u32 + 1,
                        provider: provider_name,
                        response,
                        attempts,
                        total_cost,
                        escalations,
                    });
                }
                Decision::Escalate(_) if last_tier => {}
                Decision::Escalate(_) => escalations += 1,
                Decision::Stop(reason) => {
                    finish(false, &attempts, escalations, None)?;
                    return Err(AskError::Stopped {
                        reason,
                        attempts,
                        last_error,
                    });
                }
            }
        }
        finish(false, &attempts, escalations, None)?;
        if calls == 0 {
            if let Some(reason) = budget_skip {
                return Err(AskError::Budget {
                    reason: format!("no tier fits the budget: {reason}"),
                    attempts,
                });
            }
        }
        Err(AskError::Exhausted {
            category,
            attempts,
            last_error,
        })
    }
}
