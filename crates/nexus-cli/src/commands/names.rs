//! `nexus aliases` and `nexus templates`: names users give to models and
//! prompts, kept in config.toml (`[aliases]`) and `NEXUS_HOME/templates/`.

use nexus_core::{Config, ConfigEditor, NexusHome};
use nexus_sdk::templates::{Template, Templates};

use crate::cli::{AliasesCommand, TemplatesCommand};
use crate::exit::CliError;
use crate::output;

fn aliases_of(config: &Config) -> Vec<(String, String)> {
    config
        .other
        .get("aliases")
        .and_then(|a| a.as_table())
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| v.as_str().map(|m| (k.clone(), m.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn aliases(cmd: AliasesCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    match cmd {
        AliasesCommand::Set { name, model } => {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !name.contains("..");
            if !ok {
                return Err(CliError::config(format!(
                    "alias `{name}`: use 1-64 letters, digits, `-`, `_` or `.` (no `/`)"
                )));
            }
            // It must name a model that resolves now (not another alias).
            let config = Config::load(&home)?;
            let registry = nexus_providers::Registry::new(config, nexus_providers::process_env());
            let (catalog, _, _) = nexus_providers::catalog::load(&home);
            let t = registry.resolve(&catalog, &model)?;
            let target = format!("{}/{}", t.provider, t.model);
            let mut ed = ConfigEditor::load(&home)?;
            ed.set(
                &format!("aliases.{name}"),
                &format!("\"{}\"", target.replace('"', "")),
            )?;
            home.ensure()?;
            ed.save(&home.config_path())?;
            eprintln!("{name} → {target}");
            Ok(())
        }
        AliasesCommand::List { json } => {
            let list = aliases_of(&Config::load(&home)?);
            if json {
                let map: serde_json::Map<String, serde_json::Value> =
                    list.into_iter().map(|(k, v)| (k, v.into())).collect();
                return output::json(&map);
            }
            if list.is_empty() {
                return output::print_str("no aliases; `nexus aliases set NAME MODEL` adds one\n");
            }
            let rows: Vec<Vec<String>> = list.into_iter().map(|(k, v)| vec![k, v]).collect();
            output::table(&["ALIAS", "MODEL"], &rows)
        }
        AliasesCommand::Rm { name } => {
            let mut ed = ConfigEditor::load(&home)?;
            if !ed.unset(&format!("aliases.{name}"))? {
                return Err(CliError::config(format!(
                    "no alias `{name}`; see `nexus aliases list`"
                )));
            }
            ed.save(&home.config_path())?;
            eprintln!("removed alias {name}");
            Ok(())
        }
    }
}

pub(crate) fn templates(cmd: TemplatesCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    let store = Templates::new(&home);
    match cmd {
        TemplatesCommand::Set {
            name,
            system,
            prompt,
            model,
        } => {
            store.save(&Template {
                name: name.clone(),
                system,
                prompt,
                model,
            })?;
            eprintln!("saved template {name}; use it with `nexus chat -t {name} INPUT`");
            Ok(())
        }
        TemplatesCommand::List { json } => {
            let list = store.list()?;
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|t| serde_json::json!({"name": t.name, "system": t.system, "prompt": t.prompt, "model": t.model}))
                    .collect();
                return output::json(&v);
            }
            if list.is_empty() {
                return output::print_str(
                    "no templates; `nexus templates set NAME --prompt ...` adds one\n",
                );
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.model.clone().unwrap_or_default(),
                        t.prompt.clone().unwrap_or_default().replace('\n', " "),
                    ]
                })
                .collect();
            output::table(&["NAME", "MODEL", "PROMPT"], &rows)
        }
        TemplatesCommand::Show { name } => {
            let t = store.get(&name)?.ok_or_else(|| {
                CliError::config(format!("no template `{name}`; see `nexus templates list`"))
            })?;
            output::print_str(&toml::to_string(&t).unwrap_or_default())
        }
        TemplatesCommand::Rm { name } => {
            if store.remove(&name)? {
                eprintln!("removed template {name}");
                Ok(())
            } else {
                Err(CliError::config(format!(
                    "no template `{name}`; see `nexus templates list`"
                )))
            }
        }
    }
}
