//! The providers crate's error.

use nexus_core::ProviderError;

/// Errors from building or using providers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential for a provider that needs one.
    #[error("{}", missing_key(provider, env_var))]
    MissingKey {
        /// The provider.
        provider: String,
        /// The variable to set.
        env_var: String,
    },
    /// The key is not in the environment, and the vault that may hold it
    /// could not be read (locked, wrong passphrase, a host vault failed).
    #[error("cannot read the {provider} API key from the vault: {why}. Unlock the vault (NEXUS_VAULT_PASSPHRASE, or type the passphrase on a terminal), see `nexus vault status`, or set {env_var}")]
    VaultUnavailable {
        /// The provider.
        provider: String,
        /// The variable that would bypass the vault.
        env_var: String,
        /// Why the vault failed.
        why: String,
    },
    /// A provider name that is neither built in nor in `config.toml`.
    #[error("unknown provider `{name}`; known providers: {known}. Add others under [providers.{name}] in config.toml with kind = \"openai-compatible\" and base_url")]
    UnknownProvider {
        /// The name given.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A base URL that does not parse.
    #[error("invalid base URL for {provider} (`{url}`): {why}; fix {source_hint}")]
    BadBaseUrl {
        /// The provider.
        provider: String,
        /// The URL given.
        url: String,
        /// Why it is wrong.
        why: String,
        /// Where it came from (env var or config key).
        source_hint: String,
    },
    /// A catalog download or validation failed.
    #[error("{0}")]
    Catalog(String),
    /// The HTTP client could not be built.
    #[error("{0}")]
    Http(String),
    /// Config or model-reference errors from the core.
    #[error(transparent)]
    Core(#[from] nexus_core::Error),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// What to say when a key is missing: the variable(s) to set, with an
/// example that can be pasted, and where else a key can go.
fn missing_key(provider: &str, env_var: &str) -> String {
    let is_var = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    let vars: Vec<&str> = env_var.split(", or ").collect();
    if vars.len() > 1 && vars.iter().all(|v| is_var(v)) {
        return format!(
            "no API key for {provider}: set one of {} (for example `export {}=...`), or store one with `nexus auth set-key PROVIDER`",
            vars.join(", "),
            vars[0]
        );
    }
    if is_var(env_var) {
        return format!(
            "no API key for {provider}: set {env_var} (for example `export {env_var}=...`), or store it with `nexus auth set-key {provider}`"
        );
    }
    format!("no credential for {provider}: {env_var}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_messages_read_well() {
        let one = Error::MissingKey {
            provider: "openai".into(),
            env_var: "OPENAI_API_KEY".into(),
        };
        assert_eq!(
            one.to_string(),
            "no API key for openai: set OPENAI_API_KEY (for example `export OPENAI_API_KEY=...`), or store it with `nexus auth set-key openai`"
        );
        let any = Error::MissingKey {
            provider: "any provider".into(),
            env_var: "ANTHROPIC_API_KEY, or OPENAI_API_KEY".into(),
        };
        let m = any.to_string();
        assert!(m.contains("set one of ANTHROPIC_API_KEY, OPENAI_API_KEY (for example `export ANTHROPIC_API_KEY=...`)"), "{m}");
        assert!(!m.contains("OPENAI_API_KEY=..."), "{m}");
        let oauth = Error::MissingKey {
            provider: "gemini".into(),
            env_var: "the vault (needed for the OAuth sign-in)".into(),
        };
        assert_eq!(
            oauth.to_string(),
            "no credential for gemini: the vault (needed for the OAuth sign-in)"
        );
    }
}
