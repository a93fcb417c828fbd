//! `nexus providers ...`.

use serde_json::json;

use super::Context;
use crate::cli::ProvidersCommand;
use crate::exit::CliError;
use crate::output;

pub(crate) fn run(cmd: ProvidersCommand) -> Result<(), CliError> {
    match cmd {
        ProvidersCommand::List { json } => {
            let ctx = Context::load()?;
            let status = ctx.registry.status();
            if json {
                let v: Vec<_> = status
                    .iter()
                    .map(|s| {
                        json!({
                            "name": s.name,
                            "kind": s.kind.as_str(),
                            "configured": s.is_configured(),
                            "credential": s.credential.to_string(),
                            "base_url": s.base_url,
                            "base_url_source": s.base_url_source,
                            "default_model": s.default_model,
                        })
                    })
                    .collect();
                return output::json(&v);
            }
            let rows: Vec<Vec<String>> = status
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        if s.is_configured() { "yes" } else { "no" }.to_string(),
                        s.credential.to_string(),
                        format!("{} ({})", s.base_url, s.base_url_source),
                    ]
                })
                .collect();
            output::table(&["PROVIDER", "READY", "KEY", "BASE URL"], &rows)
        }
    }
}
