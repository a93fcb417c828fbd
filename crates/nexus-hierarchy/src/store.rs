//! Reading and writing the `[hierarchy]` and `[policy]` sections of
//! `config.toml`, and where the ledger lives under `NEXUS_HOME`.

use std::path::PathBuf;

use nexus_core::{Catalog, Config, ConfigEditor, NexusHome, PolicyConfig};

use crate::config::{parse_usd, HierarchyConfig};
use crate::presets::{compute, Preset};
use crate::HierarchyError;

/// The hierarchy section's name.
pub const HIERARCHY: &str = "hierarchy";
/// The policy section's name.
pub const POLICY: &str = "policy";

/// The ledger's file.
pub fn ledger_path(home: &NexusHome) -> PathBuf {
    home.join("ledger.db")
}

/// Reads both sections.
pub fn load(config: &Config) -> Result<(HierarchyConfig, PolicyConfig), HierarchyError> {
    Ok((config.section(HIERARCHY)?, config.section(POLICY)?))
}

/// The hierarchy to use: the saved one, or (when nothing is saved) the
/// balanced preset computed for the providers that have keys. The flag says
/// whether it was computed.
pub fn effective(
    saved: HierarchyConfig,
    catalog: &Catalog,
    has_credentials: &dyn Fn(&str) -> bool,
) -> Result<(HierarchyConfig, bool), HierarchyError> {
    if !saved.is_empty() {
        return Ok((saved, false));
    }
    let tiers = compute(Preset::Balanced, catalog, has_credentials)?;
    Ok((
        HierarchyConfig {
            preset: Preset::Balanced.as_str().to_string(),
            tiers,
            cooldown: saved.cooldown,
        },
        true,
    ))
}

/// Writes the hierarchy section.
pub fn save_hierarchy(home: &NexusHome, h: &HierarchyConfig) -> Result<(), HierarchyError> {
    let mut ed = ConfigEditor::load(home)?;
    ed.set_section(HIERARCHY, h)?;
    home.ensure()?;
    ed.save(&home.config_path())?;
    Ok(())
}

/// Writes the policy section.
pub fn save_policy(home: &NexusHome, p: &PolicyConfig) -> Result<(), HierarchyError> {
    let mut ed = ConfigEditor::load(home)?;
    ed.set_section(POLICY, p)?;
    home.ensure()?;
    ed.save(&home.config_path())?;
    Ok(())
}

fn parse_bool(key: &str, v: &str) -> Result<bool, HierarchyError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(HierarchyError::Usage(format!(
            "{key} takes true or false, not `{v}`"
        ))),
    }
}

/// The policy keys `nexus hierarchy policy set` accepts.
pub const POLICY_KEYS: &str = "max-escalations, daily-budget, max-cost-per-request, auto-escalation, escalate-on-error, escalate-on-refusal, escalate-on-invalid-output";

/// Applies `key=value` to the policy. Amounts take `none` to clear.
pub fn set_policy(p: &mut PolicyConfig, assignment: &str) -> Result<(), HierarchyError> {
    let (key, value) = assignment.split_once('=').ok_or_else(|| {
        HierarchyError::Usage(format!(
            "`{assignment}` is not KEY=VALUE; keys: {POLICY_KEYS}"
        ))
    })?;
    let key = key.trim().replace('_', "-");
    let value = value.trim();
    let amount = |v: &str| -> Result<Option<nexus_core::Usd>, HierarchyError> {
        if v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("off") {
            Ok(None)
        } else {
            parse_usd(v).map(Some)
        }
    };
    match key.as_str() {
        "max-escalations" => {
            p.max_escalations = value.parse().map_err(|_| {
                HierarchyError::Usage(format!(
                    "max-escalations takes a whole number, not `{value}`"
                ))
            })?;
        }
        "daily-budget" => p.daily_budget = amount(value)?,
        "max-cost-per-request" => p.max_cost_per_request = amount(value)?,
        "auto-escalation" | "enabled" => p.enabled = parse_bool(&key, value)?,
        "escalate-on-error" => p.escalate_on_error = parse_bool(&key, value)?,
        "escalate-on-refusal" => p.escalate_on_refusal = parse_bool(&key, value)?,
        "escalate-on-invalid-output" => p.escalate_on_invalid_output = parse_bool(&key, value)?,
        other => {
            return Err(HierarchyError::Usage(format!(
                "unknown policy key `{other}`; keys: {POLICY_KEYS}"
            )))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Category;

    #[test]
    fn policy_assignments() {
        let mut p = PolicyConfig::default();
        set_policy(&mut p, "max-escalations=3").unwrap();
        set_policy(&mut p, "daily-budget=20.00").unwrap();
        set_policy(&mut p, "auto-escalation=false").unwrap();
        assert_eq!(p.max_escalations, 3);
        assert_eq!(p.daily_budget, Some(nexus_core::Usd::from_dollars(20.0)));
        assert!(!p.enabled);
        set_policy(&mut p, "daily-budget=none").unwrap();
        assert_eq!(p.daily_budget, None);
        assert!(set_policy(&mut p, "colour=red").is_err());
        assert!(set_policy(&mut p, "daily-budget=-3").is_err());
    }

    #[test]
    fn sections_round_trip_through_config_toml_keeping_other_settings() {
        let dir = tempfile::tempdir().unwrap();
        let home = NexusHome::at(dir.path());
        std::fs::write(
            home.config_path(),
            "# keep me\ndefault_model = \"sonnet\"\n",
        )
        .unwrap();
        let mut h = HierarchyConfig::default();
        let ok = |m: &str| Ok(m.to_string());
        h.apply_edits(
            Category::Coding,
            &["tier1=a/b".into(), "tier1.max_tokens=10".into()],
            &ok,
        )
        .unwrap();
        save_hierarchy(&home, &h).unwrap();
        let mut p = PolicyConfig::default();
        set_policy(&mut p, "daily-budget=5").unwrap();
        save_policy(&home, &p).unwrap();
        let text = std::fs::read_to_string(home.config_path()).unwrap();
        assert!(text.contains("# keep me"), "{text}");
        let cfg = Config::load(&home).unwrap();
        assert_eq!(cfg.default_model.as_deref(), Some("sonnet"));
        let (h2, p2) = load(&cfg).unwrap();
        assert_eq!(h2, h);
        assert_eq!(p2, p);
    }
}
