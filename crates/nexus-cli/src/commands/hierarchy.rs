//! `nexus hierarchy ...` and `nexus usage`.

use nexus_core::{Clock, PolicyConfig, SystemClock};
use nexus_hierarchy::ledger::{day_before, day_of, Ledger, SqliteLedger};
use nexus_hierarchy::presets::{compute_with, Preset};
use nexus_hierarchy::source::check_model;
use nexus_hierarchy::store::{self, set_policy};
use nexus_hierarchy::{Category, HierarchyConfig};
use serde_json::json;

use super::Context;
use crate::cli::{HierarchyCommand, PolicyCommand};
use crate::exit::CliError;
use crate::output;

pub(crate) fn run(cmd: HierarchyCommand) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let (saved, mut policy) = store::load(ctx.registry.config())?;
    match cmd {
        HierarchyCommand::Get { json } => {
            let (h, computed) = store::effective(saved, &ctx.catalog, &ctx.has_credentials())?;
            show(&ctx, &h, computed, json)
        }
        HierarchyCommand::Set { category, edits } => {
            let category: Category = category.parse()?;
            let (mut h, _) = store::effective(saved, &ctx.catalog, &ctx.has_credentials())?;
            let check = |m: &str| check_model(&ctx.registry, &ctx.catalog, m);
            h.apply_edits(category, &edits, &check)?;
            store::save_hierarchy(&ctx.home, &h)?;
            eprintln!("saved {category}; the hierarchy is now custom");
            show(&ctx, &h, false, false)
        }
        HierarchyCommand::Preset {
            name,
            include_preview,
        } => {
            let preset: Preset = name.parse()?;
            let tiers = compute_with(
                preset,
                &ctx.catalog,
                &ctx.has_credentials(),
                include_preview,
            )?;
            let h = HierarchyConfig {
                preset: preset.as_str().to_string(),
                tiers,
                cooldown: saved.cooldown,
            };
            store::save_hierarchy(&ctx.home, &h)?;
            eprintln!("applied preset {}", preset.as_str());
            show(&ctx, &h, false, false)
        }
        HierarchyCommand::Policy(p) => match p {
            PolicyCommand::Get { json } => show_policy(&policy, json),
            PolicyCommand::Set { assignments } => {
                for a in &assignments {
                    set_policy(&mut policy, a)?;
                }
                store::save_policy(&ctx.home, &policy)?;
                show_policy(&policy, false)
            }
            PolicyCommand::Enable { what } => toggle(&ctx, &mut policy, &what, true),
            PolicyCommand::Disable { what } => toggle(&ctx, &mut policy, &what, false),
        },
        HierarchyCommand::Stats { days, json } => {
            let ledger = SqliteLedger::open(&store::ledger_path(&ctx.home))?;
            let now = SystemClock.now_millis();
            let stats = ledger.stats(&day_before(now, days.saturating_sub(1)))?;
            if json {
                return output::json(&stats);
            }
            if stats.categories.is_empty() {
                return output::print_str("no requests yet; try `nexus ask \"...\"`\n");
            }
            let rows: Vec<Vec<String>> = stats
                .categories
                .iter()
                .map(|c| {
                    vec![
                        c.category.clone(),
                        c.requests.to_string(),
                        c.escalated.to_string(),
                        format!("{:.1}%", c.escalation_rate * 100.0),
                        c.failed.to_string(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "CATEGORY",
                    "REQUESTS",
                    "ESCALATED",
                    "ESCALATION RATE",
                    "FAILED",
                ],
                &rows,
            )?;
            output::print_str("\n")?;
            let rows: Vec<Vec<String>> = stats
                .tiers
                .iter()
                .map(|t| {
                    vec![
                        format!("tier{}", t.tier),
                        t.attempts.to_string(),
                        t.successes.to_string(),
                        format!("{:.1}%", t.success_rate * 100.0),
                    ]
                })
                .collect();
            output::table(&["TIER", "CALLS", "ACCEPTED", "SUCCESS RATE"], &rows)
        }
    }
}

fn toggle(ctx: &Context, p: &mut PolicyConfig, what: &str, on: bool) -> Result<(), CliError> {
    set_policy(p, &format!("{what}={on}"))?;
    store::save_policy(&ctx.home, p)?;
    show_policy(p, false)
}

fn money(u: Option<nexus_core::Usd>) -> String {
    u.map_or_else(|| "none".to_string(), |u| u.to_string())
}

fn show_policy(p: &PolicyConfig, json: bool) -> Result<(), CliError> {
    if json {
        return output::json(p);
    }
    output::print_str(&format!(
        "auto-escalation={}\nmax-escalations={}\nescalate-on-error={}\nescalate-on-refusal={}\nescalate-on-invalid-output={}\ndaily-budget={}\nmax-cost-per-request={}\n",
        p.enabled,
        p.max_escalations,
        p.escalate_on_error,
        p.escalate_on_refusal,
        p.escalate_on_invalid_output,
        money(p.daily_budget),
        money(p.max_cost_per_request),
    ))
}

fn show(ctx: &Context, h: &HierarchyConfig, computed: bool, json: bool) -> Result<(), CliError> {
    if json {
        let categories: serde_json::Map<String, serde_json::Value> = Category::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), json!(h.tiers(*c))))
            .collect();
        return output::json(&json!({
            "preset": h.preset,
            "saved": !computed,
            "categories": categories,
            "cooldown": h.cooldown,
        }));
    }
    let origin = if computed {
        format!("{} (computed for the providers you have keys for; `nexus hierarchy preset {}` saves it)", h.preset, h.preset)
    } else {
        h.preset.clone()
    };
    output::print_str(&format!("preset: {origin}\n\n"))?;
    let mut rows = Vec::new();
    for c in Category::ALL {
        for (i, t) in h.tiers(c).iter().enumerate() {
            let info = ctx
                .registry
                .resolve(&ctx.catalog, &t.model)
                .ok()
                .and_then(|t| t.info);
            rows.push(vec![
                if i == 0 {
                    c.as_str().to_string()
                } else {
                    String::new()
                },
                format!("tier{}", i + 1),
                t.model.clone(),
                info.as_ref()
                    .map_or("?".into(), |m| format!("{:.3}", m.pricing.input.dollars())),
                info.as_ref()
                    .map_or("?".into(), |m| format!("{:.3}", m.pricing.output.dollars())),
                t.max_tokens.map_or(String::new(), |n| n.to_string()),
                t.max_cost_per_request
                    .map_or(String::new(), |c| c.to_string()),
            ]);
        }
        if h.tiers(c).is_empty() {
            rows.push(vec![
                c.as_str().to_string(),
                "-".into(),
                "(none)".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    output::table(
        &[
            "CATEGORY",
            "TIER",
            "MODEL",
            "IN $/M",
            "OUT $/M",
            "MAX TOKENS",
            "MAX COST",
        ],
        &rows,
    )
}

pub(crate) fn usage(days: u64, json: bool) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let ledger = SqliteLedger::open(&nexus_hierarchy::store::ledger_path(&ctx.home))?;
    let now = SystemClock.now_millis();
    let report = ledger.usage(&day_before(now, days.saturating_sub(1)), &day_of(now))?;
    if json {
        return output::json(&report);
    }
    output::print_str(&format!(
        "today: {}    last {days} day(s): {}\n",
        report.today, report.total
    ))?;
    if report.by_day.is_empty() {
        return output::print_str("no spend recorded yet\n");
    }
    for (title, rows) in [
        ("DAY", &report.by_day),
        ("CATEGORY", &report.by_category),
        ("MODEL", &report.by_model),
    ] {
        output::print_str("\n")?;
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|s| {
                vec![
                    s.key.clone(),
                    s.cost.to_string(),
                    s.attempts.to_string(),
                    s.input_tokens.to_string(),
                    s.output_tokens.to_string(),
                ]
            })
            .collect();
        output::table(&[title, "COST", "CALLS", "TOKENS IN", "TOKENS OUT"], &rows)?;
    }
    Ok(())
}
