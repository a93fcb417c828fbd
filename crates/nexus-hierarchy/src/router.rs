//! The routing decision, pure and allocation-light: classify, pick the
//! first tier, estimate its cost, check the budget. This is the hot path
//! measured in `benches/` (target: well under a microsecond).

use std::collections::BTreeMap;
use std::sync::Arc;

use nexus_core::{Admission, EscalationPolicy, ModelInfo, Pricing, Usd};

use crate::classify::{Basis, TaskClassifier, TaskContext};
use crate::config::{Category, HierarchyConfig, Tier};

/// Output tokens assumed for a tier with no `max_tokens` and no catalog entry.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A tier with what the router needs precomputed.
#[derive(Debug, Clone)]
pub struct PreparedTier {
    /// The configured tier.
    pub tier: Tier,
    /// List prices, when the model is in the catalog.
    pub pricing: Option<Pricing>,
    /// The output cap sent with the request (bounds its cost).
    pub max_tokens: u32,
}

impl PreparedTier {
    /// Prepares `tier` with its catalog entry.
    pub fn new(tier: Tier, info: Option<&ModelInfo>) -> Self {
        let max_tokens = tier
            .max_tokens
            .or_else(|| info.map(|i| i.max_output_tokens.min(DEFAULT_MAX_TOKENS)))
            .unwrap_or(DEFAULT_MAX_TOKENS);
        PreparedTier {
            pricing: info.map(|i| i.pricing),
            max_tokens,
            tier,
        }
    }

    /// The most this tier can cost for a prompt of `prompt_bytes`: an upper
    /// estimate of input tokens (a token is rarely under 3 bytes; plus
    /// per-message framing) at the input price, plus the output cap at the
    /// output price. Unknown prices (local models) cost nothing.
    pub fn estimate(&self, prompt_bytes: usize, messages: usize) -> Usd {
        self.estimate_with(prompt_bytes, messages, self.max_tokens)
    }

    /// [`PreparedTier::estimate`] with an output cap of `max_tokens`.
    pub fn estimate_with(&self, prompt_bytes: usize, messages: usize, max_tokens: u32) -> Usd {
        let Some(p) = self.pricing else {
            return Usd::ZERO;
        };
        let input = (prompt_bytes as u64).div_ceil(3) + 16 * messages as u64;
        Usd::for_tokens(input, p.input) + Usd::for_tokens(u64::from(max_tokens), p.output)
    }

    /// The largest output cap (at most this tier's) that keeps the worst
    /// case within `cap`, if at least [`MIN_FIT_TOKENS`] fit: a request is
    /// sent with that cap, so it can never cost more than `cap`, instead of
    /// being refused because a 4,096-token answer would.
    pub fn fit_to_cap(&self, prompt_bytes: usize, messages: usize, cap: Usd) -> Option<u32> {
        if self.estimate(prompt_bytes, messages) <= cap {
            return Some(self.max_tokens);
        }
        let p = self.pricing?;
        let input = self.estimate_with(prompt_bytes, messages, 0);
        let left = cap.saturating_sub(input);
        let per_token = Usd::for_tokens(1, p.output);
        if per_token == Usd::ZERO {
            return Some(self.max_tokens);
        }
        let n = u32::try_from(left.picos() / per_token.picos()).unwrap_or(u32::MAX);
        (n >= MIN_FIT_TOKENS).then_some(n.min(self.max_tokens))
    }
}

/// The smallest output cap [`PreparedTier::fit_to_cap`] will send.
pub const MIN_FIT_TOKENS: u32 = 64;

/// What the router decided for one request, before any I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDecision {
    /// The category.
    pub category: Category,
    /// Why that category.
    pub basis: Basis,
    /// The first tier that the budget admits, if any.
    pub tier: Option<usize>,
    /// Its estimated cost.
    pub estimate: Usd,
    /// The admission of the first tier considered.
    pub admission: Admission,
}

/// Classifier + prepared tiers + policy.
#[derive(Clone)]
pub struct Router {
    classifier: Arc<dyn TaskClassifier>,
    tiers: BTreeMap<Category, Vec<PreparedTier>>,
    policy: Arc<dyn EscalationPolicy>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("tiers", &self.tiers)
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router over `config`, looking models up with `info`.
    pub fn new(
        classifier: Arc<dyn TaskClassifier>,
        config: &HierarchyConfig,
        info: &dyn Fn(&str) -> Option<ModelInfo>,
        policy: Arc<dyn EscalationPolicy>,
    ) -> Self {
        let tiers = config
            .tiers
            .iter()
            .map(|(c, ts)| {
                (
                    *c,
                    ts.iter()
                        .map(|t| PreparedTier::new(t.clone(), info(&t.model).as_ref()))
                        .collect(),
                )
            })
            .collect();
        Router {
            classifier,
            tiers,
            policy,
        }
    }

    /// The classifier.
    pub fn classifier(&self) -> &dyn TaskClassifier {
        &*self.classifier
    }

    /// The policy.
    pub fn policy(&self) -> &dyn EscalationPolicy {
        &*self.policy
    }

    /// The prepared tiers of `category`.
    pub fn tiers(&self, category: Category) -> &[PreparedTier] {
        self.tiers.get(&category).map_or(&[], Vec::as_slice)
    }

    /// Classify, pick the first admitted tier, estimate, check the budget.
    pub fn decide(
        &self,
        prompt: &str,
        ctx: TaskContext,
        category: Option<Category>,
        spent_today: Usd,
    ) -> RouteDecision {
        let (category, basis) = match category {
            Some(c) => (c, Basis::Explicit),
            None => {
                let c = self.classifier.classify(prompt, ctx);
                (c.category, c.basis)
            }
        };
        let mut first = None;
        for (i, t) in self.tiers(category).iter().enumerate() {
            let estimate = t.estimate(prompt.len(), 1);
            if t.tier
                .max_cost_per_request
                .is_some_and(|cap| estimate > cap)
            {
                continue;
            }
            let admission = self.policy.admit(estimate, spent_today, Usd::ZERO);
            match admission {
                Admission::Admit => {
                    return RouteDecision {
                        category,
                        basis,
                        tier: Some(i),
                        estimate,
                        admission,
                    }
                }
                Admission::BudgetExhausted(_) => {
                    return RouteDecision {
                        category,
                        basis,
                        tier: None,
                        estimate,
                        admission,
                    }
                }
                Admission::Skip(_) => {
                    if first.is_none() {
                        first = Some((estimate, admission));
                    }
                }
            }
        }
        let (estimate, admission) =
            first.unwrap_or((Usd::ZERO, Admission::Skip("no tiers are configured".into())));
        RouteDecision {
            category,
            basis,
            tier: None,
            estimate,
            admission,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::RuleClassifier;
    use nexus_core::PolicyConfig;

    /// Issue 14, defect 10: a $0.01 cap does not block a one-word prompt to
    /// Sonnet; the answer's cap shrinks to fit, and the worst case stays
    /// within the cap.
    #[test]
    fn a_small_cost_cap_shrinks_the_output_cap_instead_of_refusing() {
        let info = nexus_providers::catalog::embedded()
            .get("claude-sonnet-4-5")
            .unwrap()
            .clone();
        let t = PreparedTier::new(Tier::new("anthropic/claude-sonnet-4-5"), Some(&info));
        let cap = Usd::from_dollars(0.01);
        assert!(t.estimate(5, 1) > cap, "the full cap would exceed it");
        let n = t.fit_to_cap(5, 1, cap).expect("fits with fewer tokens");
        assert!((600..=666).contains(&n), "{n}");
        assert!(t.estimate_with(5, 1, n) <= cap);
        // A cap too small for even a short answer is still refused.
        assert_eq!(t.fit_to_cap(5, 1, Usd::from_dollars(0.0005)), None);
    }

    #[test]
    fn estimate_bounds_output_by_the_cap() {
        let info = nexus_providers::catalog::embedded()
            .get("claude-sonnet-4-5")
            .unwrap()
            .clone();
        let mut tier = Tier::new("anthropic/claude-sonnet-4-5");
        tier.max_tokens = Some(1000);
        let t = PreparedTier::new(tier, Some(&info));
        // 300 bytes → ≤100 tokens + 16 framing = 116 × $3/M, plus 1000 × $15/M.
        assert_eq!(
            t.estimate(300, 1),
            Usd::from_dollars(116.0 * 3e-6 + 1000.0 * 15e-6)
        );
    }

    #[test]
    fn decides_category_tier_and_budget() {
        let mut h = HierarchyConfig::default();
        let ok = |m: &str| Ok(m.to_string());
        h.apply_edits(
            Category::Coding,
            &[
                "tier1=anthropic/claude-haiku-4-5".into(),
                "tier2=anthropic/claude-opus-4-6".into(),
            ],
            &ok,
        )
        .unwrap();
        let cat = nexus_providers::catalog::embedded();
        let info = |m: &str| cat.get(m).cloned();
        let policy = PolicyConfig {
            daily_budget: Some(Usd::from_dollars(1.0)),
            ..Default::default()
        };
        let r = Router::new(Arc::new(RuleClassifier), &h, &info, Arc::new(policy));
        let d = r.decide(
            "fix this bug in my rust function",
            TaskContext::default(),
            None,
            Usd::ZERO,
        );
        assert_eq!((d.category, d.tier), (Category::Coding, Some(0)));
        let spent = r.decide(
            "fix this bug",
            TaskContext::default(),
            None,
            Usd::from_dollars(1.0),
        );
        assert!(matches!(spent.admission, Admission::BudgetExhausted(_)));
    }
}
