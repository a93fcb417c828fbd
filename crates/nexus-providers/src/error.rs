//! The providers crate's error.

use nexus_core::ProviderError;

/// Errors from building or using providers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No credential for a provider that needs one.
    #[error("no API key for {provider}: set {env_var} (for example `export {env_var}=...`)")]
    MissingKey {
        /// The provider.
        provider: String,
        /// The variable to set.
        env_var: String,
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
