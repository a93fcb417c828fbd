//! Presets: hierarchies computed by ranking functions over the catalog,
//! limited to providers that have credentials. Nothing is hard-coded to a
//! model id, so a preset stays valid when the catalog changes.

use std::collections::BTreeMap;

use nexus_core::{Catalog, ModelInfo, ModelStatus};

use crate::config::{Category, Tier};
use crate::HierarchyError;

/// The built-in presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Cheapest models that do the job, escalating to affordable ones.
    Budget,
    /// A cheap first try, a solid middle, the best model last.
    Balanced,
    /// The strongest models first, from different providers.
    Premium,
    /// The fastest models that do the job.
    Speed,
    /// Anthropic only: Haiku → Sonnet → Opus, as the ranking finds them.
    ClaudeOnly,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 5] = [
        Preset::Budget,
        Preset::Balanced,
        Preset::Premium,
        Preset::Speed,
        Preset::ClaudeOnly,
    ];

    /// The name used in config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Budget => "budget",
            Preset::Balanced => "balanced",
            Preset::Premium => "premium",
            Preset::Speed => "speed",
            Preset::ClaudeOnly => "claude-only",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = HierarchyError;
    fn from_str(s: &str) -> Result<Self, HierarchyError> {
        Preset::ALL
            .into_iter()
            .find(|p| {
                p.as_str().eq_ignore_ascii_case(s)
                    || (s == "claude_only" && *p == Preset::ClaudeOnly)
            })
            .ok_or_else(|| {
                HierarchyError::Usage(format!(
                    "unknown preset `{s}`; use budget, balanced, premium, speed or claude-only"
                ))
            })
    }
}

/// How well a model suits a category, on the catalog's 1–10 scale.
pub fn quality(m: &ModelInfo, c: Category) -> f64 {
    let (s, r, k) = (
        f64::from(m.speed_score),
        f64::from(m.reasoning_score),
        f64::from(m.coding_score),
    );
    match c {
        Category::Heartbeat => 0.6 * s + 0.4 * r,
        Category::Daily => 0.3 * s + 0.7 * r,
        Category::Planning => r,
        Category::Coding => 0.7 * k + 0.3 * r,
        Category::Review => 0.6 * r + 0.4 * k,
    }
}

/// A blended price in USD per million tokens, weighting input 3:1 as
/// typical prompts are longer than answers.
pub fn blended_price(m: &ModelInfo) -> f64 {
    (3.0 * m.pricing.input.dollars() + m.pricing.output.dollars()) / 4.0
}

fn floor(c: Category) -> f64 {
    match c {
        Category::Heartbeat => 5.0,
        Category::Daily => 6.0,
        Category::Planning | Category::Coding | Category::Review => 7.0,
    }
}

/// Routers with variable prices (`openrouter/auto`) are only used by the
/// budget preset, and only their `:free` form.
fn is_router(m: &ModelInfo) -> bool {
    m.id.starts_with("openrouter/auto")
}

fn cmp_f(a: f64, b: f64) -> std::cmp::Ordering {
    a.total_cmp(&b)
}

/// Cheapest first, each next rung strictly better than the one below;
/// keeps the cheapest rung and the best `n - 1` above it.
fn ladder(mut c: Vec<&ModelInfo>, cat: Category, n: usize) -> Vec<&ModelInfo> {
    c.sort_by(|a, b| {
        cmp_f(blended_price(a), blended_price(b))
            .then(cmp_f(quality(b, cat), quality(a, cat)))
            .then(b.release_date.cmp(&a.release_date))
            .then(a.id.cmp(&b.id))
    });
    let mut rungs: Vec<&ModelInfo> = Vec::new();
    for m in c {
        if rungs
            .last()
            .is_none_or(|last| quality(m, cat) > quality(last, cat) + 0.25)
        {
            rungs.push(m);
        }
    }
    if rungs.len() > n {
        let top = rungs.split_off(rungs.len() - (n - 1));
        rungs.truncate(1);
        rungs.extend(top);
    }
    rungs
}

fn tiers_for(preset: Preset, cat: Category, eligible: &[&ModelInfo]) -> Vec<Tier> {
    let f = floor(cat);
    let picked: Vec<&ModelInfo> = match preset {
        Preset::Budget => ladder(
            eligible
                .iter()
                .copied()
                .filter(|m| (!is_router(m) || m.pricing.is_free()) && quality(m, cat) >= f - 1.0)
                .filter(|m| blended_price(m) <= 2.0)
                .collect(),
            cat,
            3,
        ),
        Preset::Balanced => ladder(
            eligible
                .iter()
                .copied()
                .filter(|m| !is_router(m) && quality(m, cat) >= f && blended_price(m) <= 12.0)
                .collect(),
            cat,
            3,
        ),
        Preset::ClaudeOnly => ladder(
            eligible
                .iter()
                .copied()
                .filter(|m| m.provider == "anthropic" && quality(m, cat) >= f - 2.0)
                .collect(),
            cat,
            3,
        ),
        Preset::Premium => {
            let mut c: Vec<&ModelInfo> =
                eligible.iter().copied().filter(|m| !is_router(m)).collect();
            c.sort_by(|a, b| {
                cmp_f(quality(b, cat), quality(a, cat))
                    .then(cmp_f(blended_price(a), blended_price(b)))
                    .then(b.release_date.cmp(&a.release_date))
                    .then(a.id.cmp(&b.id))
            });
            // Fall back across providers: one model per provider first.
            let mut out: Vec<&ModelInfo> = Vec::new();
            for m in &c {
                if out.len() < 3 && !out.iter().any(|o| o.provider == m.provider) {
                    out.push(m);
                }
            }
            for m in &c {
                if out.len() < 3 && !out.iter().any(|o| o.id == m.id) {
                    out.push(m);
                }
            }
            out
        }
        Preset::Speed => {
            let mut c: Vec<&ModelInfo> = eligible
                .iter()
                .copied()
                .filter(|m| !is_router(m) && quality(m, cat) >= f - 1.0 && m.speed_score >= 7)
                .collect();
            c.sort_by(|a, b| {
                b.speed_score
                    .cmp(&a.speed_score)
                    .then(cmp_f(quality(b, cat), quality(a, cat)))
                    .then(cmp_f(blended_price(a), blended_price(b)))
                    .then(a.id.cmp(&b.id))
            });
            let mut out: Vec<&ModelInfo> = Vec::new();
            for m in c {
                if out.len() < 3 && out.last().is_none_or(|l| quality(m, cat) > quality(l, cat)) {
                    out.push(m);
                }
            }
            out
        }
    };
    monotone(picked, cat)
        .into_iter()
        .map(|m| Tier::new(m.qualified_id()))
        .collect()
}

/// Keeps tiers that never get cheaper or weaker going up: ordered by
/// quality then price, a model cheaper than the one below it is dropped
/// (escalating to it would pay less for no better answer).
fn monotone(mut picked: Vec<&ModelInfo>, cat: Category) -> Vec<&ModelInfo> {
    picked.sort_by(|a, b| {
        cmp_f(quality(a, cat), quality(b, cat)).then(cmp_f(blended_price(a), blended_price(b)))
    });
    let mut out: Vec<&ModelInfo> = Vec::new();
    for m in picked {
        if out.last().is_none_or(|l| {
            blended_price(m) >= blended_price(l) && quality(m, cat) >= quality(l, cat)
        }) {
            out.push(m);
        }
    }
    out
}

/// Computes `preset` over `catalog`, using only stable models whose
/// provider `has_credentials`.
pub fn compute(
    preset: Preset,
    catalog: &Catalog,
    has_credentials: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<Category, Vec<Tier>>, HierarchyError> {
    compute_with(preset, catalog, has_credentials, false)
}

/// [`compute`], with preview models too when `include_preview` (never
/// deprecated ones).
pub fn compute_with(
    preset: Preset,
    catalog: &Catalog,
    has_credentials: &dyn Fn(&str) -> bool,
    include_preview: bool,
) -> Result<BTreeMap<Category, Vec<Tier>>, HierarchyError> {
    let eligible: Vec<&ModelInfo> = catalog
        .models()
        .iter()
        .filter(|m| has_credentials(&m.provider))
        .filter(|m| match m.status {
            ModelStatus::Stable => true,
            ModelStatus::Preview => include_preview,
            ModelStatus::Deprecated => false,
        })
        .collect();
    if eligible.is_empty() {
        return Err(HierarchyError::NoCredentials(
            "no provider with models in the catalog has credentials; set a key such as ANTHROPIC_API_KEY or OPENAI_API_KEY".into(),
        ));
    }
    let mut out = BTreeMap::new();
    for cat in Category::ALL {
        let tiers = tiers_for(preset, cat, &eligible);
        if tiers.is_empty() {
            let why = if preset == Preset::ClaudeOnly {
                "it needs Anthropic models: set ANTHROPIC_API_KEY".to_string()
            } else {
                "no credentialed model is good enough; add a key for another provider".to_string()
            };
            return Err(HierarchyError::NoCredentials(format!(
                "preset {} has no models for {cat}: {why}",
                preset.as_str()
            )));
        }
        out.insert(cat, tiers);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> &'static Catalog {
        nexus_providers::catalog::embedded()
    }

    fn all(_: &str) -> bool {
        true
    }

    fn avg_price(h: &BTreeMap<Category, Vec<Tier>>) -> f64 {
        let c = catalog();
        let prices: Vec<f64> = h
            .values()
            .flatten()
            .map(|t| blended_price(c.get(&t.model).unwrap()))
            .collect();
        prices.iter().sum::<f64>() / prices.len() as f64
    }

    /// Issue 14, defect 8: only stable models, and no tier cheaper or
    /// weaker than the one below it, in every preset and category.
    #[test]
    fn presets_are_stable_and_never_step_down() {
        for p in Preset::ALL {
            let h = compute(p, catalog(), &all).unwrap();
            for (cat, tiers) in &h {
                let models: Vec<&ModelInfo> = tiers
                    .iter()
                    .map(|t| catalog().get(&t.model).unwrap())
                    .collect();
                for m in &models {
                    assert_eq!(m.status, ModelStatus::Stable, "{p:?} {cat}: {}", m.id);
                }
                for w in models.windows(2) {
                    assert!(
                        blended_price(w[1]) >= blended_price(w[0])
                            && quality(w[1], *cat) >= quality(w[0], *cat),
                        "{p:?} {cat}: {} → {} steps down",
                        w[0].id,
                        w[1].id
                    );
                }
            }
        }
        let claude = compute(Preset::ClaudeOnly, catalog(), &all).unwrap();
        assert!(
            claude.values().all(|t| !t[0].model.contains("3-5")),
            "{claude:?}"
        );
        let with_preview = compute_with(Preset::Premium, catalog(), &all, true).unwrap();
        assert!(with_preview
            .values()
            .flatten()
            .any(|t| t.model.contains("preview")));
    }

    #[test]
    fn every_preset_is_valid_and_deterministic() {
        for p in Preset::ALL {
            let h = compute(p, catalog(), &all).unwrap();
            assert_eq!(h.len(), 5, "{p:?}");
            for (cat, tiers) in &h {
                assert!(!tiers.is_empty() && tiers.len() <= 3, "{p:?} {cat}");
                for t in tiers {
                    assert!(
                        catalog().get(&t.model).is_some(),
                        "{} not in catalog",
                        t.model
                    );
                }
            }
            assert_eq!(
                h,
                compute(p, catalog(), &all).unwrap(),
                "{p:?} not deterministic"
            );
        }
    }

    #[test]
    fn ladders_climb_in_quality() {
        for p in [Preset::Budget, Preset::Balanced, Preset::ClaudeOnly] {
            let h = compute(p, catalog(), &all).unwrap();
            for (cat, tiers) in &h {
                let q: Vec<f64> = tiers
                    .iter()
                    .map(|t| quality(catalog().get(&t.model).unwrap(), *cat))
                    .collect();
                assert!(q.windows(2).all(|w| w[1] > w[0]), "{p:?} {cat}: {q:?}");
            }
        }
    }

    #[test]
    fn budget_is_cheaper_than_premium_and_claude_only_is_anthropic() {
        let budget = compute(Preset::Budget, catalog(), &all).unwrap();
        let premium = compute(Preset::Premium, catalog(), &all).unwrap();
        assert!(avg_price(&budget) < avg_price(&premium));
        let claude = compute(Preset::ClaudeOnly, catalog(), &all).unwrap();
        assert!(claude
            .values()
            .flatten()
            .all(|t| t.model.starts_with("anthropic/")));
    }

    #[test]
    fn only_credentialed_providers_are_used() {
        let only_openai = |p: &str| p == "openai";
        for p in [
            Preset::Budget,
            Preset::Balanced,
            Preset::Premium,
            Preset::Speed,
        ] {
            let h = compute(p, catalog(), &only_openai).unwrap();
            assert!(
                h.values().flatten().all(|t| t.model.starts_with("openai/")),
                "{p:?}"
            );
        }
        let e = compute(Preset::ClaudeOnly, catalog(), &only_openai).unwrap_err();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"));
        assert!(compute(Preset::Balanced, catalog(), &|_| false).is_err());
    }

    #[test]
    fn presets_follow_the_catalog_when_it_changes() {
        let before = compute(Preset::Premium, catalog(), &all).unwrap();
        let top = before[&Category::Coding][0].model.clone();
        let mut file = catalog().file().clone();
        file.models.retain(|m| m.qualified_id() != top);
        let smaller = Catalog::from_file(file).unwrap();
        let after = compute(Preset::Premium, &smaller, &all).unwrap();
        assert!(after.values().flatten().all(|t| t.model != top));
        assert!(!after[&Category::Coding].is_empty());
    }
}
