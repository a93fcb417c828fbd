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

/// Asks for a passphrase on the terminal, without echo; for a new vault,
/// twice, and again (up to three times) when the two differ, so nothing the
/// user typed before (a key for `auth set-key`) is lost to a typo.
fn ask_passphrase(kind: PassphraseFor) -> Option<Secret> {
    for _ in 0..3 {
        let first = rpassword::prompt_password(match kind {
            PassphraseFor::New => "New vault passphrase: ",
            PassphraseFor::Existing => "Vault passphrase: ",
        })
        .ok()?;
        if first.is_empty() {
            return None;
        }
        if kind == PassphraseFor::Existing {
            return Some(Secret::new(first));
        }
        let again = rpassword::prompt_password("Repeat it: ").ok()?;
        if again == first {
            return Some(Secret::new(first));
        }
        eprintln!("the passphrases differ; type them again");
    }
    None
}

fn tell(line: &str) {
    eprintln!("{line}");
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
    Ok(open_if_set_up(home, config, may_ask)?.ok_or_else(|| {
        nexus_core::VaultError::Unavailable {
            backend: "none".into(),
            why: "no vault is set up here; see `nexus vault status`".into(),
        }
    })?)
}

/// The vault if one is set up here (asking for a passphrase on a terminal
/// when `may_ask`), `None` if none is: what commands that only *read* keys
/// use, so the environment alone is enough and nothing is said.
pub(crate) fn open_if_set_up(
    home: &NexusHome,
    config: &Config,
    may_ask: bool,
) -> Result<Option<select::Opened>, nexus_core::VaultError> {
    let configured = nexus_vault::configured_backend(config);
    let prompt: &dyn Fn(PassphraseFor) -> Option<Secret> = &ask_passphrase;
    let opts = Options {
        home,
        configured,
        env: &env,
        prompt: may_ask.then_some(prompt),
        tell: Some(&tell),
    };
    select::open_if_set_up(&opts)
}

/// Whether stdin and stderr are a terminal, so a passphrase can be typed.
pub(crate) fn can_ask() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
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
        other => Err(CliError::internal(format!(
            "not a set-key command: {other:?}"
        ))),
    }
}

pub(crate) fn run(cmd: VaultCommand) -> Result<(), CliError> {
    let (home, config) = load()?;
    match cmd {
        VaultCommand::Status { json } => {
            // The diagnostic: it reports what it finds, an unavailable vault
            // included, and fails only when it cannot report.
            let configured = nexus_vault::configured_backend(&config);
            let prompt: &dyn Fn(PassphraseFor) -> Option<Secret> = &ask_passphrase;
            let opts = Options {
                home: &home,
                configured,
                env: &env,
                prompt: can_ask().then_some(prompt),
                tell: Some(&tell),
            };
            let report = match select::open(&opts) {
                Ok((v, st)) => json!({
                    "available": true,
                    "backend": st.backend,
                    "reason": st.reason,
                    "path": st.path,
                    "persistent": st.persistent,
                    "secrets": v.list("").map(|n| n.len()).ok(),
                }),
                Err(e) => json!({
                    "available": false,
                    "error": e.to_string(),
                    "fix": "set NEXUS_VAULT_PASSPHRASE (an encrypted file under NEXUS_HOME), NEXUS_VAULT_BACKEND=keyutils (Linux), or start a Secret Service (gnome-keyring) on a D-Bus session; provider keys in environment variables work without a vault",
                }),
            };
            if json {
                return output::json(&report);
            }
            let field = |k: &str| report[k].as_str().unwrap_or_default().to_string();
            if report["available"] == json!(true) {
                output::print_str(&format!(
                    "backend: {}\nwhy: {}\n{}persistent: {}\nsecrets: {}\n",
                    field("backend"),
                    field("reason"),
                    report["path"]
                        .as_str()
                        .map_or(String::new(), |p| format!("file: {p}\n")),
                    if report["persistent"] == json!(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    report["secrets"]
                        .as_u64()
                        .map_or("?".into(), |n| n.to_string()),
                ))
            } else {
                output::print_str(&format!(
                    "backend: none (unavailable)\nwhy: {}\nfix: {}\n",
                    field("error"),
                    field("fix")
                ))
            }
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
