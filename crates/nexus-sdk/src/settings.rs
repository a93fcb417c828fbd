//! What a settings screen reads and changes: providers and their
//! credentials (names and states, never values), OAuth sign-in, and the
//! escalation policy. The desktop UI reaches these through the gateway;
//! the CLI has its own verbs over the same libraries.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Config, ConfigEditor, NexusHome, PolicyConfig};
use nexus_hierarchy::store;
use nexus_providers::oauth::{OAuthManager, OAuthProfile, OAuthStatus};
use serde::Serialize;

use crate::{Client, Error, ErrorCode, Result};

/// One provider as a settings screen shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderInfo {
    /// Its name (`openai`).
    pub name: String,
    /// Its dialect (`openai`, `anthropic`, ...).
    pub kind: String,
    /// Whether it can be called now.
    pub ready: bool,
    /// Where its credential comes from (`env OPENAI_API_KEY`, `vault`,
    /// `missing`): a place, never a value.
    pub credential: String,
    /// Whether the vault holds a key for it.
    pub key_in_vault: bool,
    /// The base URL in use.
    pub base_url: String,
    /// Its default model.
    pub default_model: String,
    /// OAuth, when a client id is configured for it.
    pub oauth: Option<OAuthStatus>,
    /// The last sign-in started from this client: `pending`, `done`, or
    /// why it failed.
    pub oauth_flow: Option<String>,
}

/// OAuth client settings for a provider (`nexus config set-oauth`).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct OAuthClient {
    /// The client id.
    pub client_id: String,
    /// The client secret, kept in the vault (optional: PKCE clients have none).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Endpoints and scopes, for providers without a built-in profile.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// The token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The revocation endpoint.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scopes: Option<String>,
}

fn oauth_error(e: nexus_providers::oauth::OAuthError) -> Error {
    let code = match e {
        nexus_providers::oauth::OAuthError::NotConfigured(_) => ErrorCode::Config,
        _ => ErrorCode::Auth,
    };
    Error::new(code, e.to_string())
}

impl Client {
    fn fresh_config(&self) -> Result<Config> {
        Ok(Config::load(&NexusHome::at(self.home()))?)
    }

    fn oauth_manager(&self) -> Result<OAuthManager> {
        let vault = self.vault()?.inner();
        OAuthManager::new(NexusHome::at(self.home()), vault).map_err(oauth_error)
    }

    /// Every provider, with where its credential comes from and its OAuth
    /// state.
    pub fn providers(&self) -> Result<Vec<ProviderInfo>> {
        let config = self.fresh_config()?;
        let vault = self.vault().ok();
        let manager = self.oauth_manager().ok();
        Ok(self
            .registry()
            .status()
            .into_iter()
            .map(|p| {
                let configured = OAuthProfile::configured(&p.name, &config);
                let oauth = configured
                    .then(|| manager.as_ref()?.status(&p.name, true).ok())
                    .flatten();
                let key_in_vault = vault.as_ref().is_some_and(|v| {
                    v.get(&nexus_vault::provider_key_name(&p.name))
                        .ok()
                        .flatten()
                        .is_some()
                });
                ProviderInfo {
                    ready: p.is_configured(),
                    kind: p.kind.as_str().to_string(),
                    credential: p.credential.to_string(),
                    key_in_vault,
                    base_url: p.base_url,
                    default_model: p.default_model,
                    oauth,
                    oauth_flow: self.oauth_flows().get(&p.name).cloned(),
                    name: p.name,
                }
            })
            .collect())
    }

    fn known_provider(&self, provider: &str) -> Result<()> {
        if self.registry().is_provider(provider) {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::InvalidRequest,
            format!(
                "unknown provider `{provider}`; known providers: {}",
                self.registry().names().join(", ")
            ),
        ))
    }

    /// Stores `provider`'s API key in the vault (it is used from the next
    /// call on) and forgets the computed hierarchy, which may now include
    /// the provider's models.
    pub fn set_provider_key(&self, provider: &str, key: &str) -> Result<()> {
        self.known_provider(provider)?;
        let key = key.trim();
        if key.is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "an API key is 1–4096 printable characters",
            ));
        }
        self.vault()?.set_key(provider, key)?;
        self.forget_hierarchy();
        Ok(())
    }

    /// Removes `provider`'s key from the vault; says whether there was one.
    pub fn delete_provider_key(&self, provider: &str) -> Result<bool> {
        self.known_provider(provider)?;
        let had = self
            .vault()?
            .delete(&nexus_vault::provider_key_name(provider))?;
        self.forget_hierarchy();
        Ok(had)
    }

    /// Saves `provider`'s OAuth client (config.toml; the secret in the vault).
    pub fn set_oauth_client(&self, provider: &str, c: &OAuthClient) -> Result<OAuthStatus> {
        let provider = nexus_providers::oauth::canonical(provider).to_string();
        let fields = [
            Some(&c.client_id),
            c.auth_url.as_ref(),
            c.token_url.as_ref(),
            c.revoke_url.as_ref(),
            c.scopes.as_ref(),
        ];
        if fields.iter().flatten().any(|v| {
            v.len() > 2048
                || v.chars()
                    .any(|ch| ch.is_control() || ch == '"' || ch == '\\')
        }) {
            return Err(Error::new(
                ErrorCode::InvalidRequest,
                "OAuth settings are single lines of at most 2048 characters, without quotes or backslashes",
            ));
        }
        let home = NexusHome::at(self.home());
        let mut ed = ConfigEditor::load(&home)?;
        let quoted = |s: &str| format!("\"{s}\"");
        ed.set(
            &format!("oauth.{provider}.client_id"),
            &quoted(&c.client_id),
        )?;
        for (k, v) in [
            ("auth_url", &c.auth_url),
            ("token_url", &c.token_url),
            ("revoke_url", &c.revoke_url),
            ("scopes", &c.scopes),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                ed.set(&format!("oauth.{provider}.{k}"), &quoted(v.trim()))?;
            }
        }
        home.ensure()?;
        ed.save(&home.config_path())?;
        if let Some(secret) = c.client_secret.as_deref().filter(|s| !s.is_empty()) {
            self.vault()?.set(
                &nexus_providers::oauth::client_secret_name(&provider),
                secret,
            )?;
        }
        self.oauth_status(&provider)
    }

    /// `provider`'s OAuth state.
    pub fn oauth_status(&self, provider: &str) -> Result<OAuthStatus> {
        let configured = OAuthProfile::configured(provider, &self.fresh_config()?);
        self.oauth_manager()?
            .status(provider, configured)
            .map_err(oauth_error)
    }

    fn oauth_profile(&self, provider: &str) -> Result<OAuthProfile> {
        OAuthProfile::load(provider, &self.fresh_config()?).map_err(oauth_error)
    }

    /// Starts an OAuth sign-in (authorization code + PKCE on a loopback
    /// redirect): returns the URL to open at once; the sign-in finishes in
    /// the background when the browser comes back, or fails after `timeout`.
    pub async fn oauth_begin(&self, provider: &str, timeout: Duration) -> Result<String> {
        let profile = self.oauth_profile(provider)?;
        let manager = Arc::new(self.oauth_manager()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let tx = std::sync::Mutex::new(Some(tx));
        let name = profile.provider.clone();
        self.oauth_flows().insert(name.clone(), "pending".into());
        let client = self.clone();
        tokio::spawn(async move {
            let show = move |url: &str| {
                if let Some(tx) = tx
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                {
                    let _ = tx.send(url.to_string());
                }
            };
            let outcome = match manager.authorize(&profile, &show, timeout).await {
                Ok(_) => "done".to_string(),
                Err(e) => e.to_string(),
            };
            client.oauth_flows().insert(name, outcome);
        });
        rx.await.map_err(|_| {
            Error::new(
                ErrorCode::Auth,
                "the OAuth sign-in could not start (no loopback port?)",
            )
        })
    }

    /// Refreshes `provider`'s OAuth token now.
    pub async fn oauth_refresh(&self, provider: &str) -> Result<OAuthStatus> {
        let profile = self.oauth_profile(provider)?;
        self.oauth_manager()?
            .refresh(&profile, true)
            .await
            .map_err(oauth_error)?;
        self.oauth_status(provider)
    }

    /// Signs out of `provider` (revoking the tokens where the server can).
    pub async fn oauth_logout(&self, provider: &str) -> Result<bool> {
        let profile = self.oauth_profile(provider)?;
        self.oauth_manager()?
            .logout(&profile)
            .await
            .map_err(oauth_error)
    }

    /// The escalation policy and budgets in effect.
    pub fn escalation_policy(&self) -> Result<PolicyConfig> {
        let (_, p) = store::load(&self.fresh_config()?)?;
        Ok(p)
    }

    /// Changes the policy with the CLI's assignments (`daily-budget=5`,
    /// `auto-escalation=false`), saves it and uses it from now on.
    pub fn set_escalation_policy(&self, assignments: &[String]) -> Result<PolicyConfig> {
        let mut p = self.escalation_policy()?;
        for a in assignments {
            store::set_policy(&mut p, a)?;
        }
        store::save_policy(&NexusHome::at(self.home()), &p)?;
        self.use_policy(p.clone())?;
        Ok(p)
    }

    /// Every catalog model (`provider/id`) with whether its provider is
    /// ready: what a tier picker offers.
    pub fn models(&self) -> Vec<(String, bool)> {
        let ready: Vec<String> = self
            .registry()
            .status()
            .into_iter()
            .filter(|s| s.is_configured())
            .map(|s| s.name)
            .collect();
        self.catalog()
            .models()
            .iter()
            .map(|m| (m.qualified_id(), ready.contains(&m.provider)))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn client(dir: &std::path::Path) -> Client {
        Client::with_options(crate::ClientOptions {
            home: Some(dir.to_path_buf()),
            vault: Some(Arc::new(nexus_core::MemoryVault::default())),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn keys_and_oauth_clients_are_stored_by_name_and_refused_when_malformed() {
        let d = tempfile::tempdir().unwrap();
        let c = client(d.path());
        let before = c.providers().unwrap();
        let openai = before.iter().find(|p| p.name == "openai").unwrap();
        assert!(!openai.key_in_vault);
        c.set_provider_key("openai", "  sk-settings-test  ")
            .unwrap();
        let after = c.providers().unwrap();
        assert!(after.iter().any(|p| p.name == "openai" && p.key_in_vault));
        assert_eq!(
            c.vault()
                .unwrap()
                .get("provider/openai/api_key")
                .unwrap()
                .unwrap()
                .expose(),
            "sk-settings-test"
        );
        for bad in ["", "a\nb", &"x".repeat(5000)] {
            assert!(c.set_provider_key("openai", bad).is_err(), "{bad:?}");
        }
        assert!(c.set_provider_key("nosuch", "k").is_err());
        assert!(c.delete_provider_key("openai").unwrap());

        let mut o = OAuthClient {
            client_id: "id\"\ninjected = 1".into(),
            ..OAuthClient::default()
        };
        let e = c.set_oauth_client("openai", &o).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidRequest);
        o.client_id = "nexus-test".into();
        o.token_url = Some("http://127.0.0.1:9/token".into());
        o.client_secret = Some("shh".into());
        let st = c.set_oauth_client("openai", &o).unwrap();
        assert!(st.configured && !st.authorized);
        let text = std::fs::read_to_string(d.path().join("config.toml")).unwrap();
        assert!(
            text.contains("client_id = \"nexus-test\"") && !text.contains("shh"),
            "{text}"
        );
        assert!(!text.contains("injected"), "{text}");
    }

    #[test]
    fn the_policy_changes_live_and_keeps_the_hierarchy_in_use() {
        let d = tempfile::tempdir().unwrap();
        let c = client(d.path());
        c.set_provider_key("openai", "sk-x").unwrap();
        c.use_preset("budget").unwrap();
        c.set_tiers("coding", &["tier1=openai/gpt-4.1".into()])
            .unwrap();
        let p = c
            .set_escalation_policy(&["daily-budget=5".into(), "auto-escalation=false".into()])
            .unwrap();
        assert!(!p.enabled);
        assert_eq!(c.escalation_policy().unwrap().daily_budget, p.daily_budget);
        // The edited tier is still the one in use.
        let h = c.hierarchy().unwrap();
        assert_eq!(h.preset, "custom");
        assert_eq!(h.categories["coding"][0].model, "openai/gpt-4.1");
        assert!(c
            .set_escalation_policy(&["daily-budget=-1".into()])
            .is_err());
    }
}
