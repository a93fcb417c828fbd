//! Categories, tiers, and the `[hierarchy]` section of `config.toml`.
//!
//! ```toml
//! [hierarchy]
//! preset = "custom"            # or budget, balanced, premium, speed, claude-only
//!
//! [[hierarchy.tiers.coding]]
//! model = "claude-sonnet-4-5"
//! max_tokens = 4096
//!
//! [[hierarchy.tiers.coding]]
//! model = "gpt-4o"
//! max_cost_per_request = 0.25
//!
//! [hierarchy.cooldown]
//! failures = 3
//! window_secs = 60
//! cooldown_secs = 300
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use nexus_core::Usd;

use crate::HierarchyError;

/// What kind of work a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Scheduled check-ins: cheapest and fastest.
    Heartbeat,
    /// Everyday questions.
    Daily,
    /// Multi-step planning.
    Planning,
    /// Writing code.
    Coding,
    /// Reviewing work.
    Review,
}

impl Category {
    /// Every category, in order.
    pub const ALL: [Category; 5] = [
        Category::Heartbeat,
        Category::Daily,
        Category::Planning,
        Category::Coding,
        Category::Review,
    ];

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Heartbeat => "heartbeat",
            Category::Daily => "daily",
            Category::Planning => "planning",
            Category::Coding => "coding",
            Category::Review => "review",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = HierarchyError;
    fn from_str(s: &str) -> Result<Self, HierarchyError> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                HierarchyError::Usage(format!(
                    "unknown category `{s}`; use heartbeat, daily, planning, coding or review"
                ))
            })
    }
}

/// One rung of a category's ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tier {
    /// `provider/model`, or a catalog id or alias.
    pub model: String,
    /// Caps the answer's length at this tier (and so its cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Skips this tier when its estimated cost is higher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_request: Option<Usd>,
}

impl Tier {
    /// A tier with only a model.
    pub fn new(model: impl Into<String>) -> Self {
        Tier {
            model: model.into(),
            max_tokens: None,
            max_cost_per_request: None,
        }
    }
}

/// When a model that keeps failing is skipped, as the LiteLLM Router does:
/// `failures` failures within `window_secs` cool it down for `cooldown_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CooldownConfig {
    /// Failures that trigger a cooldown (0 disables cooldowns).
    pub failures: u32,
    /// The window those failures must fall in.
    pub window_secs: u64,
    /// How long the model is skipped.
    pub cooldown_secs: u64,
}

impl Default for CooldownConfig {
    fn default() -> Self {
        CooldownConfig {
            failures: 3,
            window_secs: 60,
            cooldown_secs: 300,
        }
    }
}

/// The name of the preset a hierarchy came from, or `custom` after a hand edit.
pub const CUSTOM: &str = "custom";

/// The `[hierarchy]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HierarchyConfig {
    /// The preset applied last, or `custom`. Empty when nothing was saved.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub preset: String,
    /// Each category's tiers, cheapest rung first.
    pub tiers: BTreeMap<Category, Vec<Tier>>,
    /// Cooldown settings.
    pub cooldown: CooldownConfig,
}

impl HierarchyConfig {
    /// The tiers of `category` (empty if none are set).
    pub fn tiers(&self, category: Category) -> &[Tier] {
        self.tiers.get(&category).map_or(&[], Vec::as_slice)
    }

    /// Whether any tiers are saved.
    pub fn is_empty(&self) -> bool {
        self.tiers.values().all(Vec::is_empty)
    }

    /// Applies the seed's edit syntax to `category`, marking the hierarchy
    /// custom: `tier1=MODEL`, `tier3=disabled` (drops tier 3 and after),
    /// `tier2.max_tokens=N`, `tier2.max_cost=USD`. Each model goes through
    /// `check_model`, which returns the canonical id or an error.
    pub fn apply_edits(
        &mut self,
        category: Category,
        edits: &[String],
        check_model: &dyn Fn(&str) -> Result<String, HierarchyError>,
    ) -> Result<(), HierarchyError> {
        let mut tiers = self.tiers(category).to_vec();
        // Tiers to disable, by their number before this edit: removed at
        // the end, so `tier2=disabled tier3=disabled` means those two.
        let mut dropped = std::collections::BTreeSet::new();
        for edit in edits {
            let (key, value) = edit.split_once('=').ok_or_else(|| {
                HierarchyError::Usage(format!(
                    "`{edit}` is not KEY=VALUE; use tier1=MODEL, tier2=disabled, tier1.max_tokens=N or tier1.max_cost=USD"
                ))
            })?;
            let (tier_key, field) = match key.split_once('.') {
                Some((t, f)) => (t, Some(f)),
                None => (key, None),
            };
            let n: usize = tier_key
                .strip_prefix("tier")
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    HierarchyError::Usage(format!(
                        "`{tier_key}` is not a tier; use tier1, tier2, ..."
                    ))
                })?;
            let i = n - 1;
            match field {
                None if value.eq_ignore_ascii_case("disabled")
                    || value.eq_ignore_ascii_case("none") =>
                {
                    // Only that tier; the ones above it move down. One
                    // that is not set is already off.
                    if i < tiers.len() {
                        dropped.insert(i);
                    }
                }
                None => {
                    if i > tiers.len() {
                        return Err(HierarchyError::Usage(format!(
                            "cannot set tier{n}: {category} has only {} tier(s); set tier{} first",
                            tiers.len(),
                            tiers.len() + 1
                        )));
                    }
                    let model = check_model(value)?;
                    if i == tiers.len() {
                        tiers.push(Tier::new(model));
                    } else {
                        tiers[i].model = model;
                    }
                }
                Some(f) => {
                    let tier = tiers.get_mut(i).ok_or_else(|| {
                        HierarchyError::Usage(format!("tier{n} of {category} is not set"))
                    })?;
                    match f {
                        "max_tokens" | "max-tokens" => {
                            tier.max_tokens = if value == "none" {
                                None
                            } else {
                                Some(value.parse().map_err(|_| {
                                    HierarchyError::Usage(format!(
                                        "max_tokens `{value}` is not a whole number"
                                    ))
                                })?)
                            };
                        }
                        "max_cost" | "max-cost" | "max_cost_per_request" => {
                            tier.max_cost_per_request = if value == "none" {
                                None
                            } else {
                                Some(parse_usd(value)?)
                            };
                        }
                        other => {
                            return Err(HierarchyError::Usage(format!(
                                "unknown tier field `{other}`; use max_tokens or max_cost"
                            )))
                        }
                    }
                }
            }
        }
        for i in dropped.iter().rev() {
            tiers.remove(*i);
        }
        if tiers.is_empty() {
            return Err(HierarchyError::Usage(format!(
                "that would leave {category} with no tier; set another model first (tier1=MODEL), then disable this one"
            )));
        }
        self.tiers.insert(category, tiers);
        self.preset = CUSTOM.to_string();
        Ok(())
    }
}

/// Parses a dollar amount such as `20`, `20.00` or `$0.05`.
pub fn parse_usd(s: &str) -> Result<Usd, HierarchyError> {
    let t = s.trim().trim_start_matches('$');
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(Usd::from_dollars(v)),
        _ => Err(HierarchyError::Usage(format!(
            "`{s}` is not a dollar amount; write it like 20.00"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(m: &str) -> Result<String, HierarchyError> {
        Ok(m.to_string())
    }

    #[test]
    fn seed_syntax_sets_and_disables_tiers() {
        let mut h = HierarchyConfig::default();
        let edits: Vec<String> = ["tier1=claude-sonnet-4-5", "tier2=gpt-4o", "tier3=disabled"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        h.apply_edits(Category::Coding, &edits, &ok).unwrap();
        let t = h.tiers(Category::Coding);
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].model, "gpt-4o");
        assert_eq!(h.preset, CUSTOM);
        h.apply_edits(
            Category::Coding,
            &["tier2.max_cost=0.05".into(), "tier1.max_tokens=900".into()],
            &ok,
        )
        .unwrap();
        let t = h.tiers(Category::Coding);
        assert_eq!(t[1].max_cost_per_request, Some(Usd::from_dollars(0.05)));
        assert_eq!(t[0].max_tokens, Some(900));
        // Disabling tier 1 keeps tier 2 (as the new tier 1) ...
        h.apply_edits(Category::Coding, &["tier1=disabled".into()], &ok)
            .unwrap();
        let t = h.tiers(Category::Coding);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].model, "gpt-4o");
        // ... and the last tier is not disabled: the category would be empty.
        let e = h
            .apply_edits(Category::Coding, &["tier1=disabled".into()], &ok)
            .unwrap_err();
        assert!(e.to_string().contains("no tier"), "{e}");
        assert_eq!(h.tiers(Category::Coding).len(), 1, "unchanged");
    }

    #[test]
    fn disabling_a_middle_tier_keeps_the_ones_above() {
        let mut h = HierarchyConfig::default();
        let set: Vec<String> = ["tier1=a", "tier2=b", "tier3=c", "tier4=d"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        h.apply_edits(Category::Review, &set, &ok).unwrap();
        h.apply_edits(Category::Review, &["tier2=disabled".into()], &ok)
            .unwrap();
        let models: Vec<&str> = h
            .tiers(Category::Review)
            .iter()
            .map(|t| t.model.as_str())
            .collect();
        assert_eq!(models, ["a", "c", "d"]);
        // Several in one edit name the tiers as they were.
        h.apply_edits(
            Category::Review,
            &["tier2=disabled".into(), "tier3=disabled".into()],
            &ok,
        )
        .unwrap();
        let models: Vec<&str> = h
            .tiers(Category::Review)
            .iter()
            .map(|t| t.model.as_str())
            .collect();
        assert_eq!(models, ["a"]);
    }

    #[test]
    fn gaps_and_bad_keys_are_refused() {
        let mut h = HierarchyConfig::default();
        assert!(h
            .apply_edits(Category::Daily, &["tier2=x".into()], &ok)
            .is_err());
        assert!(h
            .apply_edits(Category::Daily, &["level1=x".into()], &ok)
            .is_err());
        assert!(h
            .apply_edits(Category::Daily, &["tier1".into()], &ok)
            .is_err());
        assert!(h
            .apply_edits(
                Category::Daily,
                &["tier1=x".into(), "tier1.colour=red".into()],
                &ok
            )
            .is_err());
    }

    #[test]
    fn round_trips_through_toml() {
        let mut h = HierarchyConfig::default();
        h.apply_edits(Category::Review, &["tier1=a".into(), "tier2=b".into()], &ok)
            .unwrap();
        let text = toml::to_string(&h).unwrap();
        let back: HierarchyConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, h);
    }
}
