//! `nexus auth status|logout|token` (and `set-key`, in `vault`), as `gh`
//! users expect them.

use nexus_providers::oauth::{OAuthProfile, OAuthStatus};
use nexus_providers::registry::CredentialSource;
use serde_json::json;

use super::Context;
use crate::cli::AuthCommand;
use crate::exit::{Class, CliError};
use crate::output;

pub(crate) async fn run(cmd: AuthCommand) -> Result<(), CliError> {
    match cmd {
        AuthCommand::SetKey { .. } => super::vault::auth(cmd),
        AuthCommand::Status { json } => status(json),
        AuthCommand::Logout { provider } => logout(&provider).await,
        AuthCommand::Token { provider } => token(&provider).await,
    }
}

fn oauth_status(ctx: &Context, provider: &str) -> Option<OAuthStatus> {
    let configured = OAuthProfile::configured(provider, ctx.registry.config());
    if !configured {
        return None;
    }
    ctx.registry
        .oauth()
        .and_then(|m| m.status(provider, configured).ok())
}

fn status(as_json: bool) -> Result<(), CliError> {
    let ctx = Context::load()?;
    let providers = ctx.registry.status();
    let vault = match super::vault::open_if_set_up(&ctx.home, ctx.registry.config(), false) {
        Ok(Some((_, st))) => json!({"available": true, "backend": st.backend}),
        Ok(None) => json!({"available": false, "error": "no vault is set up here"}),
        Err(e) => json!({"available": false, "error": e.to_string()}),
    };
    let rows: Vec<serde_json::Value> = providers
        .iter()
        .map(|p| {
            let oauth = oauth_status(&ctx, &p.name);
            json!({
                "provider": p.name,
                "ready": p.is_configured(),
                "credential": p.credential.to_string(),
                "oauth": oauth,
            })
        })
        .collect();
    let any_ready = providers
        .iter()
        .any(|p| p.is_configured() && p.credential != CredentialSource::NotNeeded);
    if as_json {
        output::json(&json!({ "providers": rows, "vault": vault }))?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let oauth = match r["oauth"].as_object() {
                    None => "—".to_string(),
                    Some(o) if o["authorized"] == json!(true) => format!(
                        "signed in{}{}",
                        o["expires_at"]
                            .as_u64()
                            .map_or(String::new(), |e| format!(", expires {e}")),
                        if o["expired"] == json!(true) {
                            " (expired)"
                        } else {
                            ""
                        }
                    ),
                    Some(_) => "configured, not signed in".into(),
                };
                vec![
                    r["provider"].as_str().unwrap_or_default().to_string(),
                    if r["ready"] == json!(true) {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                    r["credential"].as_str().unwrap_or_default().to_string(),
                    oauth,
                ]
            })
            .collect();
        output::table(&["PROVIDER", "READY", "CREDENTIAL", "OAUTH"], &table)?;
        let v = if vault["available"] == json!(true) {
            format!("vault: {}", vault["backend"].as_str().unwrap_or_default())
        } else {
            format!(
                "vault: none ({}); see `nexus vault status`",
                vault["error"].as_str().unwrap_or_default()
            )
        };
        output::print_str(&format!("\n{v}\n"))?;
    }
    if any_ready {
        Ok(())
    } else {
        Err(CliError::new(
            Class::MissingKey,
            "no provider has a credential: set a key such as ANTHROPIC_API_KEY, or `nexus auth set-key PROVIDER`",
        ))
    }
}

fn check_provider(ctx: &Context, provider: &str) -> Result<(), CliError> {
    if ctx.registry.is_provider(provider) {
        return Ok(());
    }
    Err(CliError::config(format!(
        "unknown provider `{provider}`; known providers: {}",
        ctx.registry.names().join(", ")
    )))
}

async fn logout(provider: &str) -> Result<(), CliError> {
    let provider = nexus_providers::oauth::canonical(provider);
    let ctx = Context::load()?;
    check_provider(&ctx, provider)?;
    let (vault, _) = super::vault::open(&ctx.home, ctx.registry.config())?;
    let mut done = Vec::new();
    if vault.delete(&nexus_vault::provider_key_name(provider))? {
        done.push("removed its API key from the vault".to_string());
    }
    if let Some(st) = oauth_status(&ctx, provider).filter(|s| s.authorized) {
        let _ = st;
        let profile = OAuthProfile::load(provider, ctx.registry.config())?;
        let manager = nexus_providers::oauth::OAuthManager::new(ctx.home.clone(), vault.clone())?;
        let revoked = manager.logout(&profile).await?;
        done.push(if revoked {
            "signed out of OAuth (the server revoked the tokens)".into()
        } else {
            "signed out of OAuth (the tokens were forgotten)".into()
        });
    }
    let in_env = nexus_providers::BUILTIN
        .iter()
        .find(|s| s.name == provider)
        .and_then(|spec| spec.key_env.iter().find(|v| std::env::var_os(v).is_some()));
    if done.is_empty() {
        return Err(CliError::config(format!(
            "{provider} has no stored credential to forget{}; see `nexus auth status`",
            in_env.map_or(String::new(), |v| format!(
                " ({v} is set in your environment: unset it there)"
            ))
        )));
    }
    if let Some(v) = in_env {
        done.push(format!(
            "{v} is still set in your environment; unset it too"
        ));
    }
    eprintln!("{provider}: {}", done.join("; "));
    Ok(())
}

async fn token(provider: &str) -> Result<(), CliError> {
    let provider = nexus_providers::oauth::canonical(provider);
    let ctx = Context::load()?;
    check_provider(&ctx, provider)?;
    let (secret, source) = ctx.registry.key(provider)?;
    match (secret, source) {
        (Some(s), _) => output::print_str(&format!("{}\n", s.expose())),
        (None, CredentialSource::OAuth) => {
            let profile = OAuthProfile::load(provider, ctx.registry.config())?;
            let manager = ctx.registry.oauth().ok_or_else(|| {
                CliError::new(
                    Class::Vault,
                    "the OAuth token is in the vault, which is not available",
                )
            })?;
            let t = manager.refresh(&profile, false).await?;
            output::print_str(&format!("{}\n", t.access_token))
        }
        (None, CredentialSource::NotNeeded) => Err(CliError::config(format!(
            "{provider} needs no key, so there is no token to print"
        ))),
        (None, CredentialSource::VaultFailed(why)) => Err(CliError::new(
            Class::Vault,
            format!("cannot read the {provider} key from the vault: {why}"),
        )),
        (None, other) => Err(CliError::new(
            Class::MissingKey,
            format!("{provider} has no credential ({other}); see `nexus auth status`"),
        )),
    }
}
