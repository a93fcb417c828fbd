//! `nexus vault ...` and `nexus auth set-key`.

use std::io::{IsTerminal, Read};
use std::sync::Arc;

use nexus_core::{Config, NexusHome, Secret, Vault};
use nexus_vault::migrate::{migrate, pending};
use nexus_vault::select::{self, Options, PassphraseFor, VaultStatus};
use serde_json::json;

use crate::cli::{AuthCommand, VaultCommand};
use crate::exit::{Class, CliError};
use crate::output;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// Asks for a passphrase on the terminal, without echo; twice for a new vault.
fn ask_passphrase(kind: PassphraseFor) -> Option<Secret> {
    let first = rpassword::prompt_password(match kind {
        PassphraseFor::New => "New vault passphrase: ",
        PassphraseFor::Existing => "Vault passphrase: ",
    })
    .ok()?;
    if first.is_empty() {
        return None;
    }
    if kind == PassphraseFor::New {
        let again = rpassword::prompt_password("Repeat it: ").ok()?;
        if again != first {
            eprintln!("the passphrases differ");
            return None;
        }
    }
    Some(Secret::new(first))
}

/// Opens the vault in the documented order (see `nexus vault status`).
pub(crate) fn open(
    home: &NexusHome,
    config: &Config,
) -> Result<(Arc<dyn Vault>, VaultStatus), CliError> {
    let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    open_with(home, config, tty)
}

/// Opens the vault without ever asking for a passphrase (a keyring, or
/// `NEXUS_VAULT_PASSPHRASE`): for what runs on its own, like the daemon
/// `nexus up` starts.
pub(crate) fn open_quietly(
    home: &NexusHome,
    config: &Config,
) -> Result<(Arc<dyn Vault>, VaultStatus), CliError> {
    open_with(home, config, false)
}

fn open_with(
    home: &NexusHome,
    config: &Config,
    may_ask: bool,
) -> Result<(Arc<dyn Vault>, VaultStatus), CliError> {
    let configured = nexus_vault::configured_backend(config);
    let prompt: &dyn Fn(PassphraseFor) -> Option<Secret> = &ask_passphrase;
    let opts = Options {
        home,
        configured,
        env: &env,
        prompt: may_ask.then_some(prompt),
    };
    Ok(select::open(&opts)?)
}

/// On start: if plaintext secrets are waiting, move them into the vault.
/// A failure is a warning; the command goes on.
pub(crate) fn migrate_on_start(home: &NexusHome, config: &Config) {
    if !pending(home) {
        return;
    }
    match open(home, config).and_then(|(v, st)| Ok((migrate(home, &*v, false)?, st))) {
        Ok((moved, st)) if !moved.is_empty() => eprintln!(
            "moved {} plaintext secret(s) into the vault ({}); see `nexus vault list`",
            moved.len(),
            st.backend
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: plaintext secrets remain under {}: {}; run `nexus vault migrate`",
            home.root().display(),
            e.message
        ),
    }
}

/// A secret from stdin when it is piped, else a no-echo prompt. Never argv.
fn read_secret(what: &str) -> Result<Secret, CliError> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: "))
            .map_err(|e| CliError::config(format!("cannot read {what} from the terminal: {e}")))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::config(format!("cannot read {what} from stdin: {e}")))?;
        s.trim_end_matches(['\n', '\r']).to_string()
    };
    if value.trim().is_empty() {
        return Err(CliError::config(format!("{what} is empty")));
    }
    Ok(Secret::new(value))
}

fn load() -> Result<(NexusHome, Config), CliError> {
    let home = NexusHome::from_env()?;
    let config = Config::load(&home)?;
    Ok((home, config))
}

pub(crate) fn auth(cmd: AuthCommand) -> Result<(), CliError> {
    match cmd {
        AuthCommand::SetKey { provider } => {
            let (home, config) = load()?;
            let registry =
                nexus_providers::Registry::new(config.clone(), nexus_providers::process_env());
            if !registry.is_provider(&provider) {
                return Err(CliError::config(format!(
                    "unknown provider `{provider}`; known providers: {}",
                    registry.names().join(", ")
                )));
            }
            let key = read_secret(&format!("{provider} API key"))?;
            let (vault, st) = open(&home, &config)?;
            vault.set(&nexus_vault::provider_key_name(&provider), &key)?;
            eprintln!(
                "stored the {provider} API key in the vault ({})",
                st.backend
            );
            if let Some(spec) = nexus_providers::BUILTIN.iter().find(|s| s.name == provider) {
                if spec.key_env.iter().any(|v| env(v).is_some()) {
                    eprintln!(
                        "note: {} is set in your environment and takes precedence over the vault",
                        spec.key_env.join(" / ")
                    );
                }
            }
            Ok(())
        }
    }
}

pub(crate) fn run(cmd: VaultCommand) -> Result<(), CliError> {
    let (home, config) = load()?;
    match cmd {
        VaultCommand::Status { json } => {
            let (_, st) = open(&home, &config)?;
            if json {
                return output::json(&st);
            }
            output::print_str(&format!(
                "backend: {}\nwhy: {}\n{}persistent: {}\n",
                st.backend,
                st.reason,
                st.path
                    .as_ref()
                    .map_or(String::new(), |p| format!("file: {p}\n")),
                if st.persistent { "yes" } else { "no" }
            ))
        }
        VaultCommand::List { prefix, json } => {
            let (v, _) = open(&home, &config)?;
            let names = v.list(&prefix)?;
            if json {
                return output::json(&names);
            }
            output::print_str(&names.iter().map(|n| format!("{n}\n")).collect::<String>())
        }
        VaultCommand::Get { name } => {
            let (v, _) = open(&home, &config)?;
            match v.get(&name)? {
                Some(s) => output::print_str(&format!("{}\n", s.expose())),
                None => Err(CliError::new(
                    Class::Config,
                    format!("no secret named `{name}`; see `nexus vault list`"),
                )),
            }
        }
        VaultCommand::Set { name } => {
            nexus_core::vault::validate_name(&name)?;
            let value = read_secret(&name)?;
            let (v, st) = open(&home, &config)?;
            v.set(&name, &value)?;
            eprintln!("stored {name} ({})", st.backend);
            Ok(())
        }
        VaultCommand::Rm { name } => {
            let (v, _) = open(&home, &config)?;
            if v.delete(&name)? {
                eprintln!("removed {name}");
                Ok(())
            } else {
                Err(CliError::config(format!("no secret named `{name}`")))
            }
        }
        VaultCommand::Migrate { dry_run, json } => {
            let (v, st) = open(&home, &config)?;
            let moved = migrate(&home, &*v, dry_run)?;
            if json {
                return output::json(
                    &json!({ "backend": st.backend, "dry_run": dry_run, "secrets": moved }),
                );
            }
            if moved.is_empty() {
                return output::print_str(
                    "nothing to migrate: no plaintext secrets under NEXUS_HOME\n",
                );
            }
            let rows: Vec<Vec<String>> = moved
                .iter()
                .map(|m| vec![m.from.clone(), m.to.clone(), m.action.to_string()])
                .collect();
            output::table(&["FROM", "TO (VAULT NAME)", "ACTION"], &rows)
        }
    }
}
