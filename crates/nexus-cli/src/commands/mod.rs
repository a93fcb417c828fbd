//! One module per command group. Each loads what it needs through [`Context`].

pub(crate) mod apikey;
pub(crate) mod ask;
pub(crate) mod auth;
pub(crate) mod bridge;
pub(crate) mod chat;
pub(crate) mod config;
pub(crate) mod cron;
pub(crate) mod daemon;
pub(crate) mod desktop;
pub(crate) mod ext;
pub(crate) mod hierarchy;
pub(crate) mod history;
pub(crate) mod logs;
pub(crate) mod mcp;
pub(crate) mod mesh;
pub(crate) mod models;
pub(crate) mod names;
pub(crate) mod providers;
pub(crate) mod services;
pub(crate) mod tools;
pub(crate) mod vault;

use std::sync::Arc;

use nexus_core::{Catalog, Config, NexusHome};
use nexus_providers::{catalog, process_env, Registry};

use crate::cli::Shell;
use crate::exit::CliError;

/// What every command reads: NEXUS_HOME, config.toml, the catalog, and the
/// provider registry built from them and the environment.
pub(crate) struct Context {
    pub(crate) home: NexusHome,
    pub(crate) registry: Arc<Registry>,
    pub(crate) catalog: Arc<Catalog>,
    /// Opens the vault (prompting for a passphrase if it must) on first use.
    vault_loader: nexus_providers::registry::VaultLoader,
}

impl Context {
    pub(crate) fn load() -> Result<Context, CliError> {
        let home = NexusHome::from_env()?;
        let config = Config::load(&home)?;
        let (catalog, _source, warning) = catalog::load(&home);
        if let Some(w) = warning {
            eprintln!("warning: {w}");
        }
        vault::migrate_on_start(&home, &config);
        let loader_home = home.clone();
        let loader_config = config.clone();
        // Silent: a vault that cannot be opened is reported only when a
        // key is needed and found nowhere else (exit 23, "the vault is
        // locked"), never as a warning before every command.
        let loader = move || {
            vault::open_if_set_up(&loader_home, &loader_config, vault::can_ask())
                .map(|o| o.map(|(v, _)| v))
        };
        // Opened once, whichever of the registry and the SDK asks first.
        type Opened = Result<Option<Arc<dyn nexus_core::Vault>>, nexus_core::VaultError>;
        let once: Arc<std::sync::OnceLock<Opened>> = Arc::default();
        let loader: nexus_providers::registry::VaultLoader =
            Arc::new(move || once.get_or_init(&loader).clone());
        Ok(Context {
            registry: Arc::new(
                Registry::new(config, process_env())
                    .with_vault_loader(loader.clone())
                    .with_home(home.clone()),
            ),
            home,
            catalog: Arc::new(catalog),
            vault_loader: loader,
        })
    }

    /// The SDK's client over the same home and vault: the one place
    /// `chat` and `ask` (and the mesh) are wired.
    pub(crate) fn client(&self) -> Result<nexus_sdk::Client, CliError> {
        self.client_with(&crate::progress::Progress::default())
    }

    /// [`Context::client`], telling `progress` of retries and (on a
    /// terminal) of each `ask` attempt as it ends.
    pub(crate) fn client_with(
        &self,
        progress: &crate::progress::Progress,
    ) -> Result<nexus_sdk::Client, CliError> {
        let retry_line = progress.clone();
        let attempt_line = progress.clone();
        Ok(nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
            home: Some(self.home.root().to_path_buf()),
            vault_loader: Some(self.vault_loader.clone()),
            on_retry: Some(nexus_providers::RetryHook(Arc::new(move |n| {
                // Never silent while waiting: a rate limit may ask for many seconds.
                retry_line.line(&format!(
                    "{}: {}, retrying in {} s (attempt {} of {})",
                    n.provider,
                    n.kind.as_str().replace('_', " "),
                    n.wait.as_secs_f64().ceil(),
                    n.next_attempt,
                    n.attempts
                ));
            }))),
            // Live on a terminal; elsewhere `ask` prints the trail at the end.
            on_attempt: crate::progress::Progress::on_terminal().then(|| {
                let hook: nexus_sdk::AttemptHook = Arc::new(move |a| {
                    attempt_line.line(&ask::trail_line("", a));
                });
                hook
            }),
            ..Default::default()
        })?)
    }

    /// Whether `provider` has a key (or needs none), for presets.
    pub(crate) fn has_credentials(&self) -> impl Fn(&str) -> bool + '_ {
        let ready: Vec<String> = self
            .registry
            .status()
            .into_iter()
            .filter(|s| s.is_configured())
            .map(|s| s.name)
            .collect();
        move |p: &str| ready.iter().any(|r| r == p)
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

/// The approval mode of this run (`--approval-mode`).
static APPROVAL_MODE: std::sync::OnceLock<nexus_core::policy::ApprovalMode> =
    std::sync::OnceLock::new();

/// Sets the run's approval mode from `--approval-mode`.
pub(crate) fn set_approval_mode(mode: &str) -> Result<(), CliError> {
    let m = mode.parse().map_err(CliError::config)?;
    let _ = APPROVAL_MODE.set(m);
    Ok(())
}

/// Checks a verb against the action policy and the approval mode before it
/// acts; the decision goes to the audit log. No matching rule leaves the
/// user's own command in force; a `prompt` rule asks on the terminal, and
/// is a no without one.
pub(crate) fn gate(
    home: &nexus_core::NexusHome,
    resource: &str,
    verb: &str,
    mesh: Option<&str>,
    peer: Option<&str>,
) -> Result<(), CliError> {
    use nexus_core::policy::{Action, Decision, Source};
    use std::io::IsTerminal as _;
    let mode = APPROVAL_MODE.get().copied().unwrap_or_default();
    let policies =
        nexus_sdk::policy::Policies::load(home).map_err(|e| CliError::config(e.to_string()))?;
    let action = Action {
        resource,
        verb,
        mesh,
        peer,
    };
    let mut v = policies.decide(mode, &action);
    if v.decision == Decision::Prompt {
        if v.source == Source::Default {
            v.decision = Decision::Allow;
            v.reason = "no rule matches; your own command".into();
        } else if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            eprint!(
                "{} (policy: {verb} on {resource}). Go ahead? [y/N] ",
                v.reason
            );
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let yes = matches!(line.trim(), "y" | "yes");
            v.decision = if yes { Decision::Allow } else { Decision::Deny };
            v.reason = format!("{} (you said {})", v.reason, if yes { "yes" } else { "no" });
        } else {
            v.decision = Decision::Deny;
            v.reason = format!(
                "{} (a rule asks, and there is no terminal to answer on)",
                v.reason
            );
        }
    }
    let _ = nexus_sdk::policy::AuditLog::of(home).record("cli", &action, &v);
    if v.decision == Decision::Allow {
        Ok(())
    } else {
        Err(CliError::new(
            crate::exit::Class::Auth,
            format!("not allowed: {verb} on {resource}: {}; see `nexus policy explain {resource} {verb}`", v.reason),
        ))
    }
}
