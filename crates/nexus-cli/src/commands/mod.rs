//! One module per command group. Each loads what it needs through [`Context`].

pub(crate) mod chat;
pub(crate) mod config;
pub(crate) mod models;
pub(crate) mod providers;

use nexus_core::{Catalog, Config, NexusHome};
use nexus_providers::{catalog, process_env, Registry};

use crate::cli::Shell;
use crate::exit::CliError;

/// What every command reads: NEXUS_HOME, config.toml, the catalog, and the
/// provider registry built from them and the environment.
pub(crate) struct Context {
    pub(crate) home: NexusHome,
    pub(crate) registry: Registry,
    pub(crate) catalog: Catalog,
}

impl Context {
    pub(crate) fn load() -> Result<Context, CliError> {
        let home = NexusHome::from_env()?;
        let config = Config::load(&home)?;
        let (catalog, _source, warning) = catalog::load(&home);
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        Ok(Context {
            registry: Registry::new(config, process_env()),
            home,
            catalog,
        })
    }
}

pub(crate) fn completions(shell: Shell) {
    use clap::CommandFactory;
    use clap_complete::{generate, shells};
    let mut cmd = crate::cli::Cli::command();
    let out = &mut std::io::stdout();
    match shell {
        Shell::Bash => generate(shells::Bash, &mut cmd, "nexus", out),
        Shell::Zsh => generate(shells::Zsh, &mut cmd, "nexus", out),
        Shell::Fish => generate(shells::Fish, &mut cmd, "nexus", out),
        Shell::Elvish => generate(shells::Elvish, &mut cmd, "nexus", out),
        Shell::Powershell => generate(shells::PowerShell, &mut cmd, "nexus", out),
    }
}
