//! `nexus ask`: a request through the model hierarchy.

use std::io::Read;
use std::sync::Arc;

use nexus_core::{SeededRandom, SystemClock};
use nexus_hierarchy::engine::{AskError, Attempt, Outcome};
use nexus_hierarchy::validate::{CodeBlockValidator, CommandValidator, Format, SyntaxValidator};
use nexus_hierarchy::{
    store, AskRequest, Category, EscalationEngine, RegistrySource, Router, RuleClassifier,
    SqliteLedger, TaskContext,
};
use serde_json::json;

use super::Context;
use crate::cli::AskArgs;
use crate::exit::{Class, CliError};
use crate::output;

pub(crate) async fn run(args: AskArgs) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let prompt = if args.prompt == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::config(format!("cannot read the prompt from stdin: {e}")))?;
        s
    } else {
        args.prompt.clone()
    };
    if prompt.trim().is_empty() {
        return Err(CliError::config("the prompt is empty"));
    }
    let category: Option<Category> = args.category.as_deref().map(str::parse).transpose()?;
    let (saved, policy) = store::load(ctx.registry.config())?;
    let (hierarchy, _computed) = store::effective(saved, &ctx.catalog, &ctx.has_credentials())?;
    let info = |m: &str| {
        ctx.registry
            .resolve(&ctx.catalog, m)
            .ok()
            .and_then(|t| t.info)
    };
    let router = Router::new(
        Arc::new(RuleClassifier),
        &hierarchy,
        &info,
        Arc::new(policy),
    );
    let ledger = Arc::new(SqliteLedger::open(&store::ledger_path(&ctx.home))?);
    let mut engine = EscalationEngine::new(
        RegistrySource::new(ctx.registry.clone(), ctx.catalog.clone()),
        router,
        ledger,
        hierarchy.cooldown,
        Arc::new(SystemClock),
        Arc::new(SeededRandom::from_entropy()),
    );
    for v in &args.validate {
        engine = match v.as_str() {
            "code" => engine.with_validator(Arc::new(CodeBlockValidator)),
            other => match Format::parse(other) {
                Some(f) => engine.with_validator(Arc::new(SyntaxValidator(f))),
                None => {
                    return Err(CliError::config(format!(
                        "unknown --validate `{other}`; use json, toml, yaml or code"
                    )))
                }
            },
        };
    }
    if let Some(cmd) = &args.test_cmd {
        engine = engine.with_validator(Arc::new(CommandValidator::new(cmd.clone())));
    }
    let req = AskRequest {
        prompt,
        system: args.system.clone(),
        category,
        context: TaskContext {
            scheduled: args.scheduled,
            read_only: args.read_only,
        },
    };
    match engine.ask(req).await {
        Ok(out) => {
            if args.json {
                return output::json(&json!({
                    "request_id": out.request_id,
                    "category": out.category,
                    "classified_by": out.basis,
                    "tier": out.tier,
                    "provider": out.provider,
                    "model": out.attempts.last().map(|a| a.model.clone()),
                    "answered_by": out.response.model,
                    "text": out.response.text,
                    "stop_reason": out.response.stop_reason,
                    "usage": out.response.usage,
                    "escalations": out.escalations,
                    "total_cost_usd": out.total_cost.dollars(),
                    "attempts": out.attempts,
                }));
            }
            trail(out.category.as_str(), &out.attempts);
            output::print_str(&format!("{}\n", out.response.text))
        }
        Err(e) => {
            if !args.json {
                trail(category.map_or("", |c| c.as_str()), e.attempts());
            }
            Err(ask_error(e, args.json))
        }
    }
}

/// The attempt trail, on stderr: which tier answered and why each
/// escalation happened.
fn trail(category: &str, attempts: &[Attempt]) {
    for a in attempts {
        let what = match &a.outcome {
            Outcome::Success => format!(
                "answered ({} in / {} out, {}, {:.1}s)",
                a.usage.input_tokens,
                a.usage.output_tokens,
                a.cost,
                a.latency_ms as f64 / 1000.0
            ),
            Outcome::Error { kind, .. } => format!("failed: {kind}"),
            Outcome::Refusal => "refused".to_string(),
            Outcome::InvalidOutput { reason } => format!("invalid output: {reason}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        };
        let then = a.escalation.as_deref().map_or(String::new(), |r| {
            if r.starts_with("stopped") {
                format!(" → {r}")
            } else {
                format!(" → escalating ({r})")
            }
        });
        eprintln!("[{category}] tier {} {}: {what}{then}", a.tier, a.model);
    }
}

fn ask_error(e: AskError, json: bool) -> CliError {
    let attempts = serde_json::to_value(e.attempts()).unwrap_or_default();
    let mut err = match &e {
        AskError::Budget { .. } => CliError::new(Class::Budget, e.to_string()),
        AskError::NoTiers(_) => CliError::config(e.to_string()),
        AskError::Ledger(l) => CliError::internal(l.to_string()),
        AskError::Stopped { .. } | AskError::Exhausted { .. } => match e.last_error() {
            Some(pe) => {
                let mut c: CliError = pe.clone().into();
                c.message = format!("{e}; last error: {}", pe);
                c
            }
            None => CliError::new(Class::Escalation, e.to_string()),
        },
    };
    if json {
        err = err.with_attempts(attempts);
    }
    err
}
