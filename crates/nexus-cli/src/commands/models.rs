//! `nexus models ...`.

use super::Context;
use crate::cli::ModelsCommand;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(cmd: ModelsCommand) -> Result<(), CliError> {
    match cmd {
        ModelsCommand::List {
            provider,
            remote,
            json,
        } => {
            let ctx = Context::load()?;
            if let Some(p) = &provider {
                if !ctx.registry.is_provider(p) {
                    return Err(CliError::config(format!(
                        "unknown provider `{p}`; known providers: {}",
                        ctx.registry.names().join(", ")
                    )));
                }
            }
            if remote {
                let p = provider.unwrap_or_default();
                let models = ctx.registry.provider(&p)?.list_models().await?;
                if json {
                    return output::json(&models);
                }
                let rows: Vec<Vec<String>> = models
                    .into_iter()
                    .map(|m| vec![m.id, m.display_name.unwrap_or_default()])
                    .collect();
                return output::table(&["ID", "NAME"], &rows);
            }
            let models: Vec<_> = ctx
                .catalog
                .models()
                .iter()
                .filter(|m| provider.as_deref().is_none_or(|p| m.provider == p))
                .collect();
            if json {
                return output::json(&models);
            }
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|m| {
                    let mut flags = Vec::new();
                    if m.supports_tools {
                        flags.push("tools");
                    }
                    if m.supports_vision {
                        flags.push("vision");
                    }
                    if m.supports_reasoning {
                        flags.push("reasoning");
                    }
                    vec![
                        m.qualified_id(),
                        format!("{:.3}", m.pricing.input.dollars()),
                        format!("{:.3}", m.pricing.output.dollars()),
                        format_context(m.context_window),
                        flags.join(","),
                        m.display_name.clone(),
                    ]
                })
                .collect();
            output::table(
                &["MODEL", "IN $/M", "OUT $/M", "CONTEXT", "FEATURES", "NAME"],
                &rows,
            )
        }
    }
}

fn format_context(n: u32) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", f64::from(n) / 1_000_000.0)
    } else {
        format!("{}k", n / 1000)
    }
}
