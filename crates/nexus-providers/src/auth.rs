//! Credentials a dialect attaches to requests.

use nexus_core::{ProviderError, Secret};

/// Supplies a current bearer token (an OAuth access token), refreshing it
/// when needed. The HTTP layer asks for one before every request.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token valid for the next request.
    async fn bearer(&self) -> Result<Secret, ProviderError>;
}

/// How a request authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key, sent in the provider's key header.
    ApiKey(Secret),
    /// An OAuth access token, sent as `Authorization: Bearer`.
    Bearer(Secret),
    /// No credential (local servers such as Ollama).
    None,
}

impl Credential {
    /// The secret value, if any, for redaction of echoed error text.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Credential::ApiKey(s) | Credential::Bearer(s) => Some(s.expose()),
            Credential::None => None,
        }
    }
}
