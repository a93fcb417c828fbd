//! `nexus ask`: a request through the model hierarchy, through
//! `nexus_sdk::Client::ask`.

use nexus_sdk::{AskOptions, AttemptInfo};
use serde_json::{json, Value};

use super::Context;
use crate::cli::AskArgs;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(args: AskArgs) -> Result<(), CliError> {
    let ctx = Context::load()?;
    super::gate(&ctx.home, "models", "ask", None, None)?;
    let progress = crate::progress::Progress::default();
    let client = ctx.client_with(&progress)?;
    // As for chat: piped input after the prompt, or stdin alone for `-`.
    let prompt = super::chat::read_prompt(&args.prompt)?;
    if prompt.trim().is_empty() {
        return Err(CliError::config("the prompt is empty"));
    }
    for v in &args.validate {
        if !matches!(v.as_str(), "code" | "json" | "toml" | "yaml") {
            return Err(CliError::config(format!(
                "unknown --validate `{v}`; use json, toml, yaml or code"
            )));
        }
    }
    let opts = AskOptions {
        category: args.category.clone(),
        system: args.system.clone(),
        validate: args.validate.clone(),
        test_cmd: args.test_cmd.clone(),
        scheduled: args.scheduled,
        read_only: args.read_only,
    };
    progress.start("asking through the hierarchy");
    let result = client.ask(&prompt, &opts).await;
    progress.stop();
    match result {
        Ok(out) => {
            if args.json {
                return output::json(&json!({
                    "request_id": out.request_id,
                    "category": out.category,
                    "classified_by": out.basis,
                    "tier": out.tier,
                    "provider": out.reply.provider,
                    "model": out.attempts.last().map(|a| a.model.clone()),
                    "answered_by": out.reply.model,
                    "text": out.reply.text,
                    "stop_reason": out.reply.stop_reason,
                    "usage": out.reply.usage,
                    "escalations": out.escalations,
                    "total_cost_usd": out.total_cost.dollars(),
                    "attempts": out.attempts.iter().map(attempt).collect::<Vec<_>>(),
                }));
            }
            trail(&out.category, &out.attempts);
            output::print_str(&format!("{}\n", out.reply.text))
        }
        Err(e) => {
            if !args.json {
                trail(args.category.as_deref().unwrap_or(""), e.attempts());
            }
            let attempts: Vec<Value> = e.attempts().iter().map(attempt).collect();
            let err = CliError::from(e);
            Err(if args.json {
                err.with_attempts(Value::Array(attempts))
            } else {
                err
            })
        }
    }
}

/// One attempt as `nexus ask --json` shows it.
fn attempt(a: &AttemptInfo) -> Value {
    let mut v = json!({
        "tier": a.tier,
        "model": a.model,
        "outcome": a.outcome,
        "usage": a.usage,
        "estimate": a.estimate,
        "cost": a.cost,
        "latency_ms": a.latency_ms,
    });
    let o = v.as_object_mut();
    if let Some(o) = o {
        if a.outcome == "error" {
            o.insert("kind".into(), json!(a.error_kind));
            o.insert("message".into(), json!(a.reason));
        } else if let Some(r) = &a.reason {
            o.insert("reason".into(), json!(r));
        }
        if let Some(e) = &a.escalation {
            o.insert("escalation".into(), json!(e));
        }
        if let Some(m) = &a.answered_by {
            o.insert("answered_by".into(), json!(m));
        }
    }
    v
}

/// The attempt trail, on stderr: which tier answered and why each
/// escalation happened.
fn trail(category: &str, attempts: &[AttemptInfo]) {
    // On a terminal each line was shown as the attempt ended.
    if crate::progress::Progress::on_terminal() {
        return;
    }
    for a in attempts {
        eprintln!("{}", trail_line(category, a));
    }
}

/// One attempt, as the trail shows it.
pub(crate) fn trail_line(category: &str, a: &AttemptInfo) -> String {
    {
        let reason = a.reason.as_deref().unwrap_or("");
        let what = match a.outcome.as_str() {
            "success" => format!(
                "answered ({} in / {} out, {}, {:.1}s)",
                a.usage.input_tokens,
                a.usage.output_tokens,
                a.cost,
                a.latency_ms as f64 / 1000.0
            ),
            "error" => format!("failed: {}", a.error_kind.as_deref().unwrap_or("error")),
            "refusal" => "refused".to_string(),
            "invalid_output" => format!("invalid output: {reason}"),
            _ => format!("skipped: {reason}"),
        };
        let then = a.escalation.as_deref().map_or(String::new(), |r| {
            if r.starts_with("stopped") {
                format!(" → {r}")
            } else {
                format!(" → escalating ({r})")
            }
        });
        let tag = if category.is_empty() {
            String::new()
        } else {
            format!("[{category}] ")
        };
        format!("{tag}tier {} {}: {what}{then}", a.tier, a.model)
    }
}
