//! OAuth provider profiles: built-in endpoints for Google (Gemini),
//! Anthropic and OpenAI, each overridable in `config.toml`:
//!
//! ```toml
//! [oauth.openai]
//! client_id = "app_..."
//! auth_url = "https://auth.openai.com/oauth/authorize"
//! token_url = "https://auth.openai.com/oauth/token"
//! device_url = "..."          # optional
//! revoke_url = "..."          # optional
//! scopes = ["openid", "offline_access"]
//! ```
//!
//! Any other provider name works too, given all the endpoints.

use nexus_core::Config;

use super::OAuthError;

/// A provider's OAuth endpoints and client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthProfile {
    /// The Nexus provider this signs in to (`gemini`, `anthropic`, `openai`, ...).
    pub provider: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The authorization endpoint.
    pub auth_url: String,
    /// The token endpoint.
    pub token_url: String,
    /// The device authorization endpoint, if any.
    pub device_url: Option<String>,
    /// The revocation endpoint, if any.
    pub revoke_url: Option<String>,
    /// Scopes to request.
    pub scopes: Vec<String>,
    /// Extra authorization parameters (`access_type=offline`, ...).
    pub extra_params: Vec<(String, String)>,
}

/// A provider's built-in OAuth endpoints.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinProfile {
    /// The Nexus provider.
    pub provider: &'static str,
    /// Authorization endpoint.
    pub auth_url: &'static str,
    /// Token endpoint.
    pub token_url: &'static str,
    /// Device authorization endpoint, if any.
    pub device_url: Option<&'static str>,
    /// Revocation endpoint, if any.
    pub revoke_url: Option<&'static str>,
    /// Default scopes.
    pub scopes: &'static [&'static str],
    /// Extra authorization parameters.
    pub extra_params: &'static [(&'static str, &'static str)],
}

/// The built-in profiles: Google (for Gemini), Anthropic, OpenAI.
pub const BUILTIN_PROFILES: &[BuiltinProfile] = &[
    BuiltinProfile {
        provider: "gemini",
        auth_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        device_url: Some("https://oauth2.googleapis.com/device/code"),
        revoke_url: Some("https://oauth2.googleapis.com/revoke"),
        scopes: &[
            "https://www.googleapis.com/auth/cloud-platform",
            "https://www.googleapis.com/auth/generative-language.retriever",
        ],
        extra_params: &[("access_type", "offline"), ("prompt", "consent")],
    },
    BuiltinProfile {
        provider: "anthropic",
        auth_url: "https://claude.ai/oauth/authorize",
        token_url: "https://console.anthropic.com/v1/oauth/token",
        device_url: None,
        revoke_url: None,
        scopes: &["org:create_api_key", "user:profile", "user:inference"],
        extra_params: &[],
    },
    BuiltinProfile {
        provider: "openai",
        auth_url: "https://auth.openai.com/oauth/authorize",
        token_url: "https://auth.openai.com/oauth/token",
        device_url: None,
        revoke_url: None,
        scopes: &["openid", "profile", "email", "offline_access"],
        extra_params: &[],
    },
];

/// `google` is the OAuth name of the `gemini` provider.
pub fn canonical(provider: &str) -> &str {
    if provider == "google" {
        "gemini"
    } else {
        provider
    }
}

/// The `[oauth.<provider>]` tables: Gemini's may be written `[oauth.gemini]`,
/// `[oauth.google]` or both, and every key is read from both, so an override
/// written under either name is honoured (an endpoint the user set is
/// never silently replaced by Google's own).
fn sections<'a>(config: &'a Config, provider: &str) -> Vec<(String, &'a toml::Table)> {
    let Some(oauth) = config.other.get("oauth") else {
        return Vec::new();
    };
    let names: &[&str] = if provider == "gemini" {
        &["gemini", "google"]
    } else {
        std::slice::from_ref(&provider)
    };
    names
        .iter()
        .filter_map(|n| {
            oauth
                .get(*n)
                .and_then(|t| t.as_table())
                .map(|t| ((*n).to_string(), t))
        })
        .collect()
}

/// Key `k` from the sections; two different values are an error.
fn lookup<'a>(
    sections: &[(String, &'a toml::Table)],
    k: &str,
) -> Result<Option<&'a toml::Value>, OAuthError> {
    let mut found: Option<(&str, &toml::Value)> = None;
    for (name, t) in sections {
        if let Some(v) = t.get(k) {
            match found {
                Some((first, prev)) if prev != v => {
                    return Err(OAuthError::Server {
                        endpoint: format!("oauth.{name}.{k}"),
                        detail: format!(
                            "oauth.{first}.{k} and oauth.{name}.{k} differ; keep one (`nexus config unset oauth.{name}.{k}`)"
                        ),
                    })
                }
                Some(_) => {}
                None => found = Some((name, v)),
            }
        }
    }
    Ok(found.map(|(_, v)| v))
}

impl OAuthProfile {
    /// The profile for `provider` from config over the built-in defaults.
    pub fn load(provider: &str, config: &Config) -> Result<OAuthProfile, OAuthError> {
        let provider = canonical(provider);
        let tables = sections(config, provider);
        let mut values = std::collections::HashMap::new();
        for k in [
            "client_id",
            "auth_url",
            "token_url",
            "device_url",
            "revoke_url",
            "scopes",
        ] {
            if let Some(v) = lookup(&tables, k)? {
                values.insert(k, v);
            }
        }
        let get = |k: &str| values.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let builtin = BUILTIN_PROFILES.iter().find(|b| b.provider == provider);
        let client_id =
            get("client_id").ok_or_else(|| OAuthError::NotConfigured(provider.to_string()))?;
        let need = |k: &str, default: Option<&str>| {
            get(k).or(default.map(str::to_string)).ok_or_else(|| OAuthError::Server {
                endpoint: format!("oauth.{provider}.{k}"),
                detail: format!("{provider} has no built-in OAuth profile: set oauth.{provider}.{k} in config.toml"),
            })
        };
        let scopes = match values.get("scopes").copied() {
            Some(toml::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(toml::Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            _ => builtin
                .map(|b| b.scopes.iter().map(|s| (*s).to_string()).collect())
                .unwrap_or_default(),
        };
        Ok(OAuthProfile {
            provider: provider.to_string(),
            auth_url: need("auth_url", builtin.map(|b| b.auth_url))?,
            token_url: need("token_url", builtin.map(|b| b.token_url))?,
            device_url: get("device_url")
                .or(builtin.and_then(|b| b.device_url).map(str::to_string)),
            revoke_url: get("revoke_url")
                .or(builtin.and_then(|b| b.revoke_url).map(str::to_string)),
            scopes,
            extra_params: builtin
                .map(|b| {
                    b.extra_params
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            client_id,
        })
    }

    /// Whether `provider` has a client id configured.
    pub fn configured(provider: &str, config: &Config) -> bool {
        sections(config, canonical(provider))
            .iter()
            .any(|(_, t)| t.contains_key("client_id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_overrides_builtins_and_custom_providers_need_endpoints() {
        let c = Config::from_toml(
            "[oauth.google]\nclient_id = \"g\"\ntoken_url = \"https://example.test/token\"\n\n[oauth.lab]\nclient_id = \"x\"\n",
            "t",
        )
        .unwrap();
        let g = OAuthProfile::load("google", &c).unwrap();
        assert_eq!(g.provider, "gemini");
        assert_eq!(g.token_url, "https://example.test/token");
        assert!(g.auth_url.contains("accounts.google.com"));
        assert!(g.device_url.is_some());
        assert!(OAuthProfile::load("lab", &c)
            .unwrap_err()
            .to_string()
            .contains("oauth.lab.auth_url"));
        assert!(matches!(
            OAuthProfile::load("openai", &c),
            Err(OAuthError::NotConfigured(_))
        ));
    }

    /// Issue 14, defect 6: `config set oauth.google.device_url` next to an
    /// `[oauth.gemini]` client id is honoured, not replaced by Google's.
    #[test]
    fn google_and_gemini_sections_are_read_together() {
        let c = Config::from_toml(
            "[oauth.gemini]\nclient_id = \"g\"\n\n[oauth.google]\ndevice_url = \"http://127.0.0.1:9/device\"\n",
            "t",
        )
        .unwrap();
        let g = OAuthProfile::load("gemini", &c).unwrap();
        assert_eq!(g.device_url.as_deref(), Some("http://127.0.0.1:9/device"));
        assert_eq!(g.client_id, "g");
        assert!(OAuthProfile::configured("google", &c));
        let both = Config::from_toml(
            "[oauth.gemini]\nclient_id = \"g\"\ntoken_url = \"http://a/t\"\n\n[oauth.google]\ntoken_url = \"http://b/t\"\n",
            "t",
        )
        .unwrap();
        let e = OAuthProfile::load("google", &both).unwrap_err().to_string();
        assert!(e.contains("differ"), "{e}");
    }
}
