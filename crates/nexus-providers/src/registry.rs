//! Which providers exist, where their keys and base URLs come from, and how
//! to build a client for each.
//!
//! Keys: the provider's environment variable wins, then the vault
//! (`provider/<name>/api_key`), then a plaintext `api_key` in `config.toml`.
//! Base URLs: the environment variable, then `config.toml`, then the default.

use std::collections::BTreeMap;
use std::sync::Arc;

use nexus_core::{Catalog, Config, ModelInfo, ModelRef, Provider, Secret, Vault};

use crate::anthropic::Anthropic;
use crate::auth::Credential;
use crate::client::{build_client, HttpOptions, HttpProvider};
use crate::dialect::Dialect;
use crate::gemini::Gemini;
use crate::openai::{Flavor, OpenAi};
use crate::Error;

/// The API dialect a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Chat Completions, in one of its flavors.
    OpenAi(Flavor),
    /// Google Gemini.
    Gemini,
}

impl Kind {
    /// Parses `kind = "..."` from config.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "anthropic" => Kind::Anthropic,
            "gemini" | "google" => Kind::Gemini,
            "openai" => Kind::OpenAi(Flavor::OpenAi),
            "openrouter" => Kind::OpenAi(Flavor::OpenRouter),
            "xai" => Kind::OpenAi(Flavor::Xai),
            "deepseek" => Kind::OpenAi(Flavor::DeepSeek),
            "openai-compatible" | "openai_compatible" | "compatible" => {
                Kind::OpenAi(Flavor::Compatible)
            }
            _ => return None,
        })
    }

    /// A short name for display.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
            Kind::OpenAi(Flavor::OpenAi) => "openai",
            Kind::OpenAi(Flavor::OpenRouter) => "openrouter",
            Kind::OpenAi(Flavor::Xai) => "xai",
            Kind::OpenAi(Flavor::DeepSeek) => "deepseek",
            Kind::OpenAi(Flavor::Compatible) => "openai-compatible",
        }
    }
}

/// A built-in provider.
#[derive(Debug, Clone, Copy)]
pub struct ProviderSpec {
    /// Its name, as used in `provider/model`.
    pub name: &'static str,
    /// Its dialect.
    pub kind: Kind,
    /// Variables that hold its key, in order of preference.
    pub key_env: &'static [&'static str],
    /// Whether it needs a key at all.
    pub key_required: bool,
    /// The variable that overrides its base URL.
    pub base_url_env: &'static str,
    /// Its default base URL.
    pub default_base_url: &'static str,
    /// The model used when only the provider is named.
    pub default_model: &'static str,
}

/// The providers Nexus knows without configuration.
pub const BUILTIN: &[ProviderSpec] = &[
    ProviderSpec {
        name: "anthropic",
        kind: Kind::Anthropic,
        key_env: &["ANTHROPIC_API_KEY"],
        key_required: true,
        base_url_env: "ANTHROPIC_BASE_URL",
        default_base_url: "https://api.anthropic.com",
        default_model: "claude-sonnet-4-5",
    },
    ProviderSpec {
        name: "openai",
        kind: Kind::OpenAi(Flavor::OpenAi),
        key_env: &["OPENAI_API_KEY"],
        key_required: true,
        base_url_env: "OPENAI_BASE_URL",
        default_base_url: "https://api.openai.com/v1",
        default_model: "gpt-5-mini",
    },
    ProviderSpec {
        name: "gemini",
        kind: Kind::Gemini,
        key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        key_required: true,
        base_url_env: "GEMINI_BASE_URL",
        default_base_url: "https://generativelanguage.googleapis.com",
        default_model: "gemini-2.5-flash",
    },
    ProviderSpec {
        name: "openrouter",
        kind: Kind::OpenAi(Flavor::OpenRouter),
        key_env: &["OPENROUTER_API_KEY"],
        key_required: true,
        base_url_env: "OPENROUTER_BASE_URL",
        default_base_url: "https://openrouter.ai/api/v1",
        default_model: "auto",
    },
    ProviderSpec {
        name: "xai",
        kind: Kind::OpenAi(Flavor::Xai),
        key_env: &["XAI_API_KEY"],
        key_required: true,
        base_url_env: "XAI_BASE_URL",
        default_base_url: "https://api.x.ai/v1",
        default_model: "grok-4-1-fast-reasoning",
    },
    ProviderSpec {
        name: "deepseek",
        kind: Kind::OpenAi(Flavor::DeepSeek),
        key_env: &["DEEPSEEK_API_KEY"],
        key_required: true,
        base_url_env: "DEEPSEEK_BASE_URL",
        default_base_url: "https://api.deepseek.com",
        default_model: "deepseek-chat",
    },
    ProviderSpec {
        name: "ollama",
        kind: Kind::OpenAi(Flavor::Compatible),
        key_env: &["OLLAMA_API_KEY"],
        key_required: false,
        base_url_env: "OLLAMA_BASE_URL",
        default_base_url: "http://localhost:11434/v1",
        default_model: "llama3.2",
    },
    ProviderSpec {
        name: "vllm",
        kind: Kind::OpenAi(Flavor::Compatible),
        key_env: &["VLLM_API_KEY"],
        key_required: false,
        base_url_env: "VLLM_BASE_URL",
        default_base_url: "http://localhost:8000/v1",
        default_model: "default",
    },
];

/// Where a provider's credential comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// This environment variable.
    Env(String),
    /// The vault, under this name.
    Vault(String),
    /// A plaintext `api_key` in `config.toml`.
    ConfigFile,
    /// An OAuth sign-in (bearer token in the vault, refreshed as needed).
    OAuth,
    /// The provider needs no key.
    NotNeeded,
    /// Nothing found; set this variable.
    Missing(String),
    /// Not in the environment, and the vault that may hold it could not be
    /// read: why (a wrong passphrase, a host vault that raised, ...).
    VaultFailed(String),
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Env(v) => write!(f, "env {v}"),
            CredentialSource::Vault(n) => write!(f, "vault {n}"),
            CredentialSource::ConfigFile => {
                f.write_str("config.toml (plaintext; move it to the vault)")
            }
            CredentialSource::NotNeeded => f.write_str("no key needed"),
            CredentialSource::OAuth => f.write_str("OAuth sign-in"),
            CredentialSource::Missing(v) => write!(f, "not configured: set {v}"),
            CredentialSource::VaultFailed(why) => write!(f, "unknown: the vault failed ({why})"),
        }
    }
}

/// A provider's resolved settings (never its key).
#[derive(Debug, Clone)]
pub struct ProviderStatus {
    /// The name.
    pub name: String,
    /// The dialect.
    pub kind: Kind,
    /// The base URL in use.
    pub base_url: String,
    /// Where the base URL came from (`default`, `env X`, `config.toml`).
    pub base_url_source: String,
    /// Where the key came from.
    pub credential: CredentialSource,
    /// The default model.
    pub default_model: String,
}

impl ProviderStatus {
    /// Whether it can be called.
    pub fn is_configured(&self) -> bool {
        !matches!(
            self.credential,
            CredentialSource::Missing(_) | CredentialSource::VaultFailed(_)
        )
    }
}

/// Reads environment variables; injectable for tests.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment.
pub fn process_env() -> EnvLookup {
    Arc::new(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// A model reference resolved to a provider and a wire model id.
#[derive(Debug, Clone)]
pub struct Target {
    /// The provider's name.
    pub provider: String,
    /// The model id to send.
    pub model: String,
    /// The catalog entry, if any.
    pub info: Option<ModelInfo>,
}

/// Opens the vault on first use (it may ask for a passphrase): a vault,
/// `None` when none is set up here (keys then come from the environment
/// only, and nothing is said), or why the vault that exists cannot be
/// opened (reported when a key is needed and not found elsewhere).
pub type VaultLoader =
    Arc<dyn Fn() -> Result<Option<Arc<dyn Vault>>, nexus_core::VaultError> + Send + Sync>;

/// Builds providers from config, environment and vault.
pub struct Registry {
    config: Config,
    env: EnvLookup,
    vault: std::sync::OnceLock<Result<Option<Arc<dyn Vault>>, String>>,
    vault_loader: Option<VaultLoader>,
    home: Option<nexus_core::NexusHome>,
    oauth: std::sync::OnceLock<Option<Arc<crate::oauth::OAuthManager>>>,
    opts: HttpOptions,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("providers", &self.names())
            .finish_non_exhaustive()
    }
}

struct Entry {
    kind: Kind,
    key_env: Vec<String>,
    key_required: bool,
    base_url_env: Option<String>,
    default_base_url: Option<String>,
    default_model: Option<String>,
}

impl Registry {
    /// A registry over `config`, reading variables through `env`.
    pub fn new(config: Config, env: EnvLookup) -> Self {
        let opts = HttpOptions::from_config(&config.http);
        Registry {
            config,
            env,
            vault: std::sync::OnceLock::new(),
            vault_loader: None,
            home: None,
            oauth: std::sync::OnceLock::new(),
            opts,
            client: std::sync::OnceLock::new(),
        }
    }

    /// Reads keys from `vault` after the environment.
    pub fn with_vault(self, vault: Arc<dyn Vault>) -> Self {
        let _ = self.vault.set(Ok(Some(vault)));
        self
    }

    /// Opens the vault with `loader` the first time a key is not found in
    /// the environment, so commands that need no vault never open it.
    pub fn with_vault_loader(mut self, loader: VaultLoader) -> Self {
        self.vault_loader = Some(loader);
        self
    }

    /// Where OAuth lock files live; with a vault, enables OAuth sign-ins.
    pub fn with_home(mut self, home: nexus_core::NexusHome) -> Self {
        self.home = Some(home);
        self
    }

    /// The OAuth manager, when there is a vault and a home.
    pub fn oauth(&self) -> Option<&Arc<crate::oauth::OAuthManager>> {
        self.oauth
            .get_or_init(|| {
                let home = self.home.clone()?;
                let vault = self.vault()?.clone();
                crate::oauth::OAuthManager::new(home, vault)
                    .ok()
                    .map(Arc::new)
            })
            .as_ref()
    }

    fn oauth_signed_in(&self, name: &str) -> bool {
        crate::oauth::OAuthProfile::configured(name, &self.config)
            && self
                .oauth()
                .is_some_and(|m| m.token(name).ok().flatten().is_some())
    }

    fn opened(&self) -> &Result<Option<Arc<dyn Vault>>, String> {
        self.vault.get_or_init(|| match &self.vault_loader {
            None => Ok(None),
            Some(f) => f().map_err(|e| e.to_string()),
        })
    }

    /// The vault, opened on first use; `None` when there is none (or it
    /// could not be opened: see [`Registry::vault_error`]).
    pub fn vault(&self) -> Option<&Arc<dyn Vault>> {
        self.opened().as_ref().ok().and_then(Option::as_ref)
    }

    /// Why the vault could not be opened, once something needed it.
    pub fn vault_error(&self) -> Option<&str> {
        self.vault
            .get()
            .and_then(|r| r.as_ref().err())
            .map(String::as_str)
    }

    /// Replaces the HTTP options (tests shorten timeouts).
    pub fn with_http_options(mut self, opts: HttpOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Tells `hook` before each wait between retries.
    pub fn with_retry_hook(mut self, hook: crate::RetryHook) -> Self {
        self.opts.on_retry = Some(hook);
        self
    }

    /// The config in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn entries(&self) -> BTreeMap<String, Entry> {
        let mut map = BTreeMap::new();
        for s in BUILTIN {
            map.insert(
                s.name.to_string(),
                Entry {
                    kind: s.kind,
                    key_env: s.key_env.iter().map(|v| (*v).to_string()).collect(),
                    key_required: s.key_required,
                    base_url_env: Some(s.base_url_env.to_string()),
                    default_base_url: Some(s.default_base_url.to_string()),
                    default_model: Some(s.default_model.to_string()),
                },
            );
        }
        for (name, pc) in &self.config.providers {
            if map.contains_key(name) {
                continue;
            }
            let kind = pc
                .kind
                .as_deref()
                .and_then(Kind::parse)
                .unwrap_or(Kind::OpenAi(Flavor::Compatible));
            let env_name = format!("{}_API_KEY", name.to_ascii_uppercase().replace('-', "_"));
            map.insert(
                name.clone(),
                Entry {
                    kind,
                    key_env: vec![pc.api_key_env.clone().unwrap_or(env_name)],
                    key_required: false,
                    base_url_env: None,
                    default_base_url: None,
                    default_model: pc.default_model.clone(),
                },
            );
        }
        map
    }

    /// Every provider name, built-in and configured.
    pub fn names(&self) -> Vec<String> {
        self.entries().into_keys().collect()
    }

    /// Whether `name` is a provider.
    pub fn is_provider(&self, name: &str) -> bool {
        BUILTIN.iter().any(|s| s.name == name) || self.config.providers.contains_key(name)
    }

    fn entry(&self, name: &str) -> Result<Entry, Error> {
        let mut entries = self.entries();
        entries.remove(name).ok_or_else(|| Error::UnknownProvider {
            name: name.to_string(),
            known: entries.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    fn base_url(&self, name: &str, e: &Entry) -> Result<(String, String), Error> {
        let pc = self.config.providers.get(name);
        let (url, source) = if let Some(v) = e.base_url_env.as_deref().and_then(|v| (self.env)(v)) {
            (
                v,
                format!("env {}", e.base_url_env.as_deref().unwrap_or_default()),
            )
        } else if let Some(u) = pc.and_then(|p| p.base_url.clone()) {
            (u, format!("config.toml providers.{name}.base_url"))
        } else if let Some(d) = &e.default_base_url {
            (d.clone(), "default".to_string())
        } else {
            return Err(Error::BadBaseUrl {
                provider: name.to_string(),
                url: String::new(),
                why: "no base URL is set".into(),
                source_hint: format!("providers.{name}.base_url in config.toml"),
            });
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::BadBaseUrl {
                provider: name.to_string(),
                url,
                why: "it must start with http:// or https://".into(),
                source_hint: source,
            });
        }
        Ok((url.trim_end_matches('/').to_string(), source))
    }

    fn credential(&self, name: &str, e: &Entry) -> (Option<Secret>, CredentialSource) {
        for v in &e.key_env {
            if let Some(k) = (self.env)(v) {
                return (Some(Secret::new(k)), CredentialSource::Env(v.clone()));
            }
        }
        if self.oauth_signed_in(name) {
            return (None, CredentialSource::OAuth);
        }
        let mut vault_failed = None;
        match self.opened() {
            Ok(Some(vault)) => {
                let vname = format!("provider/{name}/api_key");
                match vault.get(&vname) {
                    Ok(Some(s)) => return (Some(s), CredentialSource::Vault(vname)),
                    Ok(None) => {}
                    Err(e) => vault_failed = Some(e.to_string()),
                }
            }
            Ok(None) => {}
            Err(why) => vault_failed = Some(why.clone()),
        }
        if let Some(k) = self
            .config
            .providers
            .get(name)
            .and_then(|p| p.api_key.clone())
        {
            return (Some(Secret::new(k)), CredentialSource::ConfigFile);
        }
        if let (true, Some(why)) = (e.key_required, vault_failed) {
            (None, CredentialSource::VaultFailed(why))
        } else if e.key_required {
            (None, CredentialSource::Missing(e.key_env.join(" or ")))
        } else {
            (None, CredentialSource::NotNeeded)
        }
    }

    /// Provider `name`'s key (for `nexus auth token`) and where it comes
    /// from; `None` for OAuth sign-ins and keyless providers.
    pub fn key(&self, name: &str) -> Result<(Option<Secret>, CredentialSource), Error> {
        let e = self.entry(name)?;
        Ok(self.credential(name, &e))
    }

    /// Settings of every provider, for `nexus providers list`.
    pub fn status(&self) -> Vec<ProviderStatus> {
        self.entries()
            .into_iter()
            .map(|(name, e)| {
                let (base_url, base_url_source) = self
                    .base_url(&name, &e)
                    .unwrap_or_else(|err| (String::new(), err.to_string()));
                let (_, credential) = self.credential(&name, &e);
                ProviderStatus {
                    default_model: e.default_model.clone().unwrap_or_default(),
                    name,
                    kind: e.kind,
                    base_url,
                    base_url_source,
                    credential,
                }
            })
            .collect()
    }

    /// A ready client for provider `name`.
    pub fn provider(&self, name: &str) -> Result<Arc<dyn Provider>, Error> {
        let e = self.entry(name)?;
        let (base_url, _) = self.base_url(name, &e)?;
        let (secret, source) = self.credential(name, &e);
        match source {
            CredentialSource::Missing(v) => {
                return Err(Error::MissingKey {
                    provider: name.to_string(),
                    env_var: v,
                })
            }
            CredentialSource::VaultFailed(why) => {
                return Err(Error::VaultUnavailable {
                    provider: name.to_string(),
                    env_var: e.key_env.first().cloned().unwrap_or_default(),
                    why,
                })
            }
            _ => {}
        }
        let oauth = source == CredentialSource::OAuth;
        let raw = secret.as_ref().map(|s| s.expose().to_string());
        let cred = match secret {
            Some(s) => Credential::ApiKey(s),
            // The dialect shapes a bearer header; the token source fills it.
            None if oauth => Credential::Bearer(Secret::new("oauth")),
            None => Credential::None,
        };
        let dialect: Arc<dyn Dialect> = match e.kind {
            Kind::Anthropic => Arc::new(Anthropic::new(name, &base_url, cred)),
            Kind::Gemini => Arc::new(Gemini::new(name, &base_url, cred)),
            Kind::OpenAi(f) => Arc::new(OpenAi::new(name, &base_url, cred, f)),
        };
        let client = match self.client.get() {
            Some(c) => c.clone(),
            None => {
                let c = build_client(&self.opts).map_err(Error::Http)?;
                self.client.get_or_init(|| c).clone()
            }
        };
        let mut provider = HttpProvider::new(dialect, client, self.opts.clone(), raw);
        if oauth {
            let manager = self.oauth().cloned().ok_or_else(|| Error::MissingKey {
                provider: name.to_string(),
                env_var: "the vault (needed for the OAuth sign-in)".into(),
            })?;
            let profile = crate::oauth::OAuthProfile::load(name, &self.config)
                .map_err(|e| Error::Catalog(e.to_string()))?;
            provider = provider.with_token_source(Arc::new(crate::oauth::OAuthTokenSource::new(
                manager, profile,
            )));
        }
        Ok(Arc::new(provider))
    }

    /// The model a user alias names (`[aliases]` in config.toml).
    pub fn alias(&self, name: &str) -> Option<String> {
        self.config
            .other
            .get("aliases")?
            .get(name)?
            .as_str()
            .map(str::to_string)
    }

    /// Resolves a model reference: `provider/model`, a bare provider name
    /// (its default model), or a catalog id or alias.
    pub fn resolve(&self, catalog: &Catalog, reference: &str) -> Result<Target, Error> {
        // A user alias (`nexus aliases set fast openai/gpt-4o-mini`), one level.
        let aliased = self.alias(reference.trim());
        let reference = aliased.as_deref().unwrap_or(reference).trim();
        if self.is_provider(reference) {
            let e = self.entry(reference)?;
            let model = e.default_model.ok_or_else(|| {
                nexus_core::Error::ModelRef(format!(
                    "provider `{reference}` has no default model; use `{reference}/MODEL`"
                ))
            })?;
            return Ok(Target {
                info: catalog.get_for(reference, &model).cloned(),
                provider: reference.to_string(),
                model,
            });
        }
        let r = ModelRef::parse(reference, |p| self.is_provider(p))?;
        let resolved = match catalog.resolve(&r) {
            Ok(r) => r,
            // `nosuch/foo`: the part before the slash names no provider,
            // and the whole is no catalog id. Say that, not "unknown model".
            Err(e) => match reference.split_once('/') {
                Some((p, _)) if !self.is_provider(p) && catalog.get(reference).is_none() => {
                    return Err(Error::UnknownProvider {
                        name: p.to_string(),
                        known: self.names().join(", "),
                    })
                }
                _ => return Err(e.into()),
            },
        };
        Ok(Target {
            provider: resolved.provider,
            model: resolved.model,
            info: resolved.info.cloned(),
        })
    }

    /// The model to use when none is given: `default_model` from config,
    /// else the default model of the first configured provider.
    pub fn default_model(&self) -> Result<String, Error> {
        if let Some(m) = &self.config.default_model {
            return Ok(m.clone());
        }
        for s in BUILTIN.iter().filter(|s| s.key_required) {
            let e = self.entry(s.name)?;
            if !matches!(self.credential(s.name, &e).1, CredentialSource::Missing(_)) {
                return Ok(format!("{}/{}", s.name, s.default_model));
            }
        }
        let vars: Vec<&str> = BUILTIN
            .iter()
            .filter(|s| s.key_required)
            .map(|s| s.key_env[0])
            .collect();
        Err(Error::MissingKey {
            provider: "any provider".into(),
            env_var: vars.join(", or "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> EnvLookup {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Arc::new(move |k| m.get(k).cloned())
    }

    #[test]
    fn env_key_wins_and_missing_names_the_variable() {
        let r = Registry::new(Config::default(), env(&[("GOOGLE_API_KEY", "g")]));
        let st: HashMap<String, ProviderStatus> = r
            .status()
            .into_iter()
            .map(|s| (s.name.clone(), s))
            .collect();
        assert_eq!(
            st["gemini"].credential,
            CredentialSource::Env("GOOGLE_API_KEY".into())
        );
        let err = r.provider("openai").unwrap_err().to_string();
        assert!(err.contains("OPENAI_API_KEY"), "{err}");
        assert_eq!(st["ollama"].credential, CredentialSource::NotNeeded);
    }

    #[test]
    fn vault_is_read_after_env() {
        let vault = Arc::new(nexus_core::MemoryVault::new());
        vault
            .set("provider/xai/api_key", &Secret::new("from-vault"))
            .unwrap();
        let r = Registry::new(Config::default(), env(&[])).with_vault(vault);
        let st = r.status().into_iter().find(|s| s.name == "xai").unwrap();
        assert_eq!(
            st.credential,
            CredentialSource::Vault("provider/xai/api_key".into())
        );
    }

    #[test]
    fn base_url_precedence_and_validation() {
        let cfg = Config::from_toml(
            "[providers.openai]\nbase_url = \"http://cfg/v1\"\n[providers.local]\nkind = \"openai-compatible\"\nbase_url = \"ftp://x\"\n",
            "t",
        )
        .unwrap();
        let r = Registry::new(cfg.clone(), env(&[]));
        let st = r.status().into_iter().find(|s| s.name == "openai").unwrap();
        assert_eq!(st.base_url, "http://cfg/v1");
        let r = Registry::new(cfg, env(&[("OPENAI_BASE_URL", "http://env/v1/")]));
        let st = r.status().into_iter().find(|s| s.name == "openai").unwrap();
        assert_eq!(st.base_url, "http://env/v1");
        assert!(r
            .provider("local")
            .unwrap_err()
            .to_string()
            .contains("http://"));
    }

    #[test]
    fn resolves_refs_defaults_and_refuses_unknown_models() {
        let r = Registry::new(Config::default(), env(&[("OPENROUTER_API_KEY", "k")]));
        let c = crate::catalog::embedded();
        let e = r.resolve(c, "nosuch/foo").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown provider `nosuch`; known providers: "),
            "{e}"
        );
        let t = r.resolve(c, "sonnet").unwrap();
        assert_eq!(
            (t.provider.as_str(), t.model.as_str()),
            ("anthropic", "claude-sonnet-4-5")
        );
        let t = r.resolve(c, "openrouter/auto:free").unwrap();
        assert_eq!(
            (t.provider.as_str(), t.model.as_str()),
            ("openrouter", "openrouter/auto:free")
        );
        let t = r
            .resolve(c, "openrouter/anthropic/claude-sonnet-4.5")
            .unwrap();
        assert_eq!(t.model, "anthropic/claude-sonnet-4.5");
        let t = r.resolve(c, "deepseek").unwrap();
        assert_eq!(t.model, "deepseek-chat");
        let e = r.resolve(c, "gpt-4oo").unwrap_err().to_string();
        assert!(e.contains("gpt-4o"), "{e}");
        assert_eq!(r.default_model().unwrap(), "openrouter/auto");
    }
}
