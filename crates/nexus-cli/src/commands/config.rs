//! `nexus config ...`.

use nexus_core::{Config, ConfigEditor};

use super::Context;
use crate::cli::ConfigCommand;
use crate::exit::CliError;
use crate::output;

pub(crate) async fn run(cmd: ConfigCommand) -> Result<(), CliError> {
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
            check_value(&home, &key, &value)?;
            let mut ed = ConfigEditor::load(&home)?;
            ed.set(&key, &value)?;
            home.ensure()?;
            ed.save(&home.config_path())?;
            eprintln!("set {key} in {}", home.config_path().display());
            Ok(())
        }
        ConfigCommand::SetOauth {
            provider,
            client_id,
            client_secret,
        } => {
            let provider = nexus_providers::oauth::canonical(&provider).to_string();
            let mut ed = ConfigEditor::load(&home)?;
            ed.set(&format!("oauth.{provider}.client_id"), &client_id)?;
            home.ensure()?;
            ed.save(&home.config_path())?;
            if let Some(secret) = client_secret {
                let secret = if secret == "-" {
                    let mut s = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
                        CliError::config(format!("cannot read the client secret: {e}"))
                    })?;
                    s.trim().to_string()
                } else {
                    secret
                };
                let config = Config::load(&home)?;
                let (vault, _) = super::vault::open(&home, &config)?;
                vault.set(
                    &nexus_providers::oauth::client_secret_name(&provider),
                    &nexus_core::Secret::new(secret),
                )?;
            }
            eprintln!("OAuth configured for {provider}; sign in with `nexus config oauth-authorize {provider}`");
            Ok(())
        }
        ConfigCommand::OauthAuthorize {
            provider,
            device,
            no_browser,
            timeout,
        } => {
            let (manager, profile) = oauth(&home, &provider)?;
            let timeout = std::time::Duration::from_secs(timeout);
            let token = if device {
                let show = |d: &nexus_providers::oauth::DeviceCodeInfo| {
                    eprintln!(
                        "To sign in to {}, open {}",
                        profile.provider, d.verification_uri
                    );
                    eprintln!("and enter the code: {}", d.user_code);
                    if let Some(c) = &d.verification_uri_complete {
                        eprintln!("(or open {c})");
                    }
                    eprintln!(
                        "Waiting for approval (the code expires in {}s)...",
                        d.expires_in
                    );
                };
                manager.authorize_device(&profile, &show, timeout).await?
            } else {
                let show = |url: &str| {
                    if no_browser || !open_browser(url) {
                        eprintln!("Open this URL to sign in to {}:\n{url}", profile.provider);
                    } else {
                        eprintln!("Opened your browser to sign in to {}. If it did not open, visit:\n{url}", profile.provider);
                    }
                    eprintln!("Waiting for the redirect to this machine...");
                };
                manager.authorize(&profile, &show, timeout).await?
            };
            eprintln!(
                "signed in to {}; token stored in the vault{}",
                profile.provider,
                token.expires_at.map_or(String::new(), |e| format!(
                    ", expires at {e} (refreshed automatically)"
                ))
            );
            Ok(())
        }
        ConfigCommand::OauthStatus { provider, json } => {
            let provider = nexus_providers::oauth::canonical(&provider).to_string();
            let config = Config::load(&home)?;
            let configured = nexus_providers::oauth::OAuthProfile::configured(&provider, &config);
            let (vault, _) = super::vault::open(&home, &config)?;
            let manager = nexus_providers::oauth::OAuthManager::new(home.clone(), vault)?;
            let st = manager.status(&provider, configured)?;
            if json {
                return output::json(&st);
            }
            output::print_str(&format!(
                "provider: {}\nconfigured: {}\nauthorized: {}\nexpires: {}\nrefreshable: {}\nscopes: {}\n",
                st.provider,
                st.configured,
                st.authorized,
                st.expires_at.map_or("-".to_string(), |e| format!("{e}{}", if st.expired { " (expired)" } else { "" })),
                st.refreshable,
                st.scopes.join(" ")
            ))
        }
        ConfigCommand::OauthRefresh { provider } => {
            let (manager, profile) = oauth(&home, &provider)?;
            let t = manager.refresh(&profile, true).await?;
            eprintln!(
                "refreshed the {} token{}",
                profile.provider,
                t.expires_at
                    .map_or(String::new(), |e| format!("; it expires at {e}"))
            );
            Ok(())
        }
        ConfigCommand::OauthLogout { provider } => {
            let (manager, profile) = oauth(&home, &provider)?;
            let revoked = manager.logout(&profile).await?;
            eprintln!(
                "signed out of {}{}",
                profile.provider,
                if revoked {
                    "; the server revoked the tokens"
                } else {
                    "; the server has no revocation endpoint, so the tokens were only forgotten"
                }
            );
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

fn oauth(
    home: &nexus_core::NexusHome,
    provider: &str,
) -> Result<
    (
        nexus_providers::oauth::OAuthManager,
        nexus_providers::oauth::OAuthProfile,
    ),
    CliError,
> {
    let config = Config::load(home)?;
    let profile = nexus_providers::oauth::OAuthProfile::load(provider, &config)?;
    let (vault, _) = super::vault::open(home, &config)?;
    Ok((
        nexus_providers::oauth::OAuthManager::new(home.clone(), vault)?,
        profile,
    ))
}

/// Opens `url` in the user's browser; false when no opener could run.
pub(crate) fn open_browser(url: &str) -> bool {
    let candidates: &[&str] = if cfg!(target_os = "macos") {
        &["open"]
    } else if cfg!(windows) {
        &["explorer"]
    } else {
        &["xdg-open", "sensible-browser"]
    };
    candidates.iter().any(|c| {
        std::process::Command::new(c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    })
}

/// Values that parse but mean nothing are refused before they are written:
/// a provider kind Nexus does not speak, a default model no provider or
/// catalog entry resolves.
pub(crate) fn check_value(
    home: &nexus_core::NexusHome,
    key: &str,
    value: &str,
) -> Result<(), CliError> {
    if key.starts_with("providers.")
        && key.ends_with(".kind")
        && nexus_providers::registry::Kind::parse(value).is_none()
    {
        return Err(CliError::config(format!(
            "unknown provider kind `{value}`; use openai-compatible, openai, anthropic, gemini, openrouter, xai or deepseek"
        )));
    }
    if key == "default_model" {
        let config = Config::load(home)?;
        let registry = nexus_providers::Registry::new(config, nexus_providers::process_env());
        let (catalog, _, _) = nexus_providers::catalog::load(home);
        registry.resolve(&catalog, value)?;
    }
    Ok(())
}
