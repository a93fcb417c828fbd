//! `nexus models ...`.

use super::Context;
use crate::cli::ModelsCommand;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(cmd: ModelsCommand) -> Result<(), CliError> {
    match cmd {
        ModelsCommand::Default { model: Some(m) } => {
            let home = nexus_core::NexusHome::from_env()?;
            super::config::check_value(&home, "default_model", &m)?;
            let mut ed = nexus_core::ConfigEditor::load(&home)?;
            ed.set("default_model", &format!("\"{}\"", m.replace('"', "")))?;
            home.ensure()?;
            ed.save(&home.config_path())?;
            eprintln!("the default model is now {m}");
            Ok(())
        }
        ModelsCommand::Default { model: None } => {
            let ctx = Context::load()?;
            let m = ctx.registry.default_model()?;
            let from = if ctx.registry.config().default_model.is_some() {
                "default_model in config.toml"
            } else {
                "the first provider with a key (set one with `nexus models default MODEL`)"
            };
            output::print_str(&format!("{m}\n"))?;
            eprintln!("from {from}");
            Ok(())
        }
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
                        m.status.as_str().to_string(),
                        m.release_date.clone(),
                        m.display_name.clone(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "MODEL", "IN $/M", "OUT $/M", "CONTEXT", "FEATURES", "STATUS", "RELEASED",
                    "NAME",
                ],
                &rows,
            )
        }
        ModelsCommand::ListAvailable { json } => {
            let ctx = Context::load()?;
            let ready = ctx.has_credentials();
            let status = ctx.registry.status();
            let models: Vec<_> = ctx
                .catalog
                .models()
                .iter()
                .filter(|m| ready(&m.provider))
                .collect();
            if json {
                return output::json(&models);
            }
            if models.is_empty() {
                return Err(CliError::new(
                    crate::exit::Class::MissingKey,
                    "no provider with catalog models has a key; set one, for example ANTHROPIC_API_KEY (see `nexus providers list`)",
                ));
            }
            let rows: Vec<Vec<String>> = models
                .iter()
                .map(|m| {
                    let source = status
                        .iter()
                        .find(|s| s.name == m.provider)
                        .map_or(String::new(), |s| s.credential.to_string());
                    vec![
                        m.qualified_id(),
                        format!("{:.3}", m.pricing.input.dollars()),
                        format!("{:.3}", m.pricing.output.dollars()),
                        format!("{}/{}/{}", m.speed_score, m.reasoning_score, m.coding_score),
                        source,
                    ]
                })
                .collect();
            output::table(
                &["MODEL", "IN $/M", "OUT $/M", "SPEED/REASON/CODE", "KEY"],
                &rows,
            )
        }
        ModelsCommand::UpdateRankings { url } => {
            let ctx = Context::load()?;
            let url = url.unwrap_or_else(|| {
                nexus_providers::catalog::catalog_url(
                    ctx.registry.config(),
                    &nexus_providers::process_env(),
                )
            });
            eprintln!("fetching {url} ...");
            let client = nexus_providers::client::build_client(
                &nexus_providers::HttpOptions::from_config(&ctx.registry.config().http),
            )
            .map_err(CliError::internal)?;
            let r = nexus_providers::catalog::update(&client, &url, &ctx.home).await?;
            output::print_str(&format!(
                "catalog updated: {} models (was {}), revised {}, cached at {}\n",
                r.models, r.previous, r.updated, r.path
            ))
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
