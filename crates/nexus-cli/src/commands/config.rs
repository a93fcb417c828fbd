//! `nexus config ...`.

use nexus_core::{Config, ConfigEditor};

use super::Context;
use crate::cli::ConfigCommand;
use crate::exit::CliError;
use crate::output;

pub(crate) fn run(cmd: ConfigCommand) -> Result<(), CliError> {
    let home = nexus_core::NexusHome::from_env()?;
    match cmd {
        ConfigCommand::Path => output::print_str(&format!("{}\n", home.config_path().display())),
        ConfigCommand::Show { json } => {
            let ctx = Context::load()?;
            let mut config: Config = ctx.registry.config().clone();
            // Never print a key, even one left in plaintext.
            for p in config.providers.values_mut() {
                if p.api_key.is_some() {
                    p.api_key = Some("[REDACTED]".into());
                }
            }
            if json {
                return output::json(&config);
            }
            let text = toml::to_string_pretty(&config)
                .map_err(|e| CliError::internal(format!("cannot render the config: {e}")))?;
            output::print_str(&format!("# {}\n{text}", ctx.home.config_path().display()))
        }
        ConfigCommand::Set { key, value } => {
            let mut ed = ConfigEditor::load(&home)?;
            ed.set(&key, &value)?;
            home.ensure()?;
            ed.save(&home.config_path())?;
            eprintln!("set {key} in {}", home.config_path().display());
            Ok(())
        }
        ConfigCommand::Unset { key } => {
            let mut ed = ConfigEditor::load(&home)?;
            if !ed.unset(&key)? {
                return Err(CliError::config(format!(
                    "`{key}` is not set in config.toml"
                )));
            }
            ed.save(&home.config_path())?;
            eprintln!("removed {key} from {}", home.config_path().display());
            Ok(())
        }
    }
}
