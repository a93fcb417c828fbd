//! The `EscalationPolicy` trait: when to move up a tier, and when to stop.
//!
//! The policy is pure: it sees what happened and what was spent, and answers.
//! The escalation engine in `nexus-hierarchy` does the walking and the I/O.

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::money::Usd;

/// How one attempt at a tier ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// A usable answer.
    Success,
    /// The provider failed.
    Error {
        /// The class of failure.
        kind: ErrorKind,
    },
    /// The model refused.
    Refusal,
    /// A validator rejected the answer.
    InvalidOutput {
        /// Which validator and why.
        reason: String,
    },
}

/// What the engine knows after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The tier just tried (0-based).
    pub tier: usize,
    /// Escalations made before this attempt.
    pub escalations: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep this answer.
    Accept,
    /// Try the next tier, for this reason.
    Escalate(String),
    /// Give up, for this reason.
    Stop(String),
}

/// Whether a call that is estimated to cost `estimate` may go ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Admit,
    /// Skip this tier (a cheaper one later may fit; rarely the case).
    Skip(String),
    /// The budget is spent; send nothing more.
    BudgetExhausted(String),
}

/// Decides when to escalate and what may be spent.
pub trait EscalationPolicy: Send + Sync {
    /// After an attempt: accept, escalate or stop.
    fn decide(&self, report: &AttemptReport) -> Decision;

    /// Before a call: may a call estimated at `estimate` go ahead, given
    /// `spent_today` across all requests and `spent_request` on this one?
    fn admit(&self, estimate: Usd, spent_today: Usd, spent_request: Usd) -> Admission;

    /// The daily budget, if any: the engine holds estimates against it
    /// atomically in the cost ledger, across processes.
    fn daily_budget(&self) -> Option<Usd> {
        None
    }
}

/// The standard policy, configured by value (stored in `config.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyConfig {
    /// Escalate at all.
    pub enabled: bool,
    /// The most escalations per request.
    pub max_escalations: u32,
    /// Escalate on retryable provider errors (rate limits, 5xx, timeouts).
    pub escalate_on_error: bool,
    /// Escalate when the model refuses.
    pub escalate_on_refusal: bool,
    /// Escalate when a validator rejects the output.
    pub escalate_on_invalid_output: bool,
    /// The most to spend per UTC day, across all requests.
    pub daily_budget: Option<Usd>,
    /// The most to spend on one request, across its attempts.
    pub max_cost_per_request: Option<Usd>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            enabled: true,
            max_escalations: 2,
            escalate_on_error: true,
            escalate_on_refusal: true,
            escalate_on_invalid_output: true,
            daily_budget: None,
            max_cost_per_request: None,
        }
    }
}

impl EscalationPolicy for PolicyConfig {
    fn decide(&self, r: &AttemptReport) -> Decision {
        let (wanted, why) = match &r.outcome {
            AttemptOutcome::Success => return Decision::Accept,
            AttemptOutcome::Error { kind } => (
                self.escalate_on_error
                    && (kind.is_retryable() || *kind == ErrorKind::ContextWindowExceeded),
                format!("provider error: {kind}"),
            ),
            AttemptOutcome::Refusal => (self.escalate_on_refusal, "the model refused".to_string()),
            AttemptOutcome::InvalidOutput { reason } => (
                self.escalate_on_invalid_output,
                format!("invalid output: {reason}"),
            ),
        };
        if !self.enabled {
            return Decision::Stop(format!("{why}; auto-escalation is disabled"));
        }
        if !wanted {
            return Decision::Stop(format!("{why}; the policy does not escalate on this"));
        }
        if r.escalations >= self.max_escalations {
            return Decision::Stop(format!(
                "{why}; already escalated {} time(s), the maximum",
                r.escalations
            ));
        }
        Decision::Escalate(why)
    }

    fn admit(&self, estimate: Usd, spent_today: Usd, spent_request: Usd) -> Admission {
        if let Some(budget) = self.daily_budget {
            if spent_today >= budget {
                return Admission::BudgetExhausted(format!(
                    "daily budget of {budget} is spent ({spent_today} so far today)"
                ));
            }
            if spent_today.saturating_add(estimate) > budget {
                return Admission::Skip(format!(
                    "estimated {estimate} would exceed the daily budget ({spent_today} of {budget} spent)"
                ));
            }
        }
        if let Some(cap) = self.max_cost_per_request {
            if spent_request.saturating_add(estimate) > cap {
                return Admission::Skip(format!(
                    "estimated {estimate} would exceed the per-request cap of {cap} ({spent_request} spent)"
                ));
            }
        }
        Admission::Admit
    }

    fn daily_budget(&self) -> Option<Usd> {
        self.daily_budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(escalations: u32, outcome: AttemptOutcome) -> AttemptReport {
        AttemptReport {
            tier: escalations as usize,
            escalations,
            outcome,
        }
    }

    #[test]
    fn escalates_until_the_limit() {
        let p = PolicyConfig::default();
        let e = AttemptOutcome::Error {
            kind: ErrorKind::Server,
        };
        assert!(matches!(
            p.decide(&report(0, e.clone())),
            Decision::Escalate(_)
        ));
        assert!(matches!(p.decide(&report(2, e)), Decision::Stop(_)));
        assert_eq!(
            p.decide(&report(0, AttemptOutcome::Success)),
            Decision::Accept
        );
    }

    #[test]
    fn auth_errors_do_not_escalate() {
        let p = PolicyConfig::default();
        let d = p.decide(&report(
            0,
            AttemptOutcome::Error {
                kind: ErrorKind::Auth,
            },
        ));
        assert!(matches!(d, Decision::Stop(_)));
    }

    #[test]
    fn budget_admission() {
        let p = PolicyConfig {
            daily_budget: Some(Usd::from_dollars(1.0)),
            max_cost_per_request: Some(Usd::from_dollars(0.1)),
            ..Default::default()
        };
        let d = |x: f64| Usd::from_dollars(x);
        assert_eq!(p.admit(d(0.05), d(0.5), d(0.0)), Admission::Admit);
        assert!(matches!(
            p.admit(d(0.2), d(0.5), d(0.0)),
            Admission::Skip(_)
        ));
        assert!(matches!(
            p.admit(d(0.01), d(1.0), d(0.0)),
            Admission::BudgetExhausted(_)
        ));
        let zero = PolicyConfig {
            daily_budget: Some(Usd::ZERO),
            ..Default::default()
        };
        assert!(matches!(
            zero.admit(d(0.0), d(0.0), d(0.0)),
            Admission::BudgetExhausted(_)
        ));
    }
}
