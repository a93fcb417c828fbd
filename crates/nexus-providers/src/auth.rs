//! Credentials a dialect attaches to requests.

use nexus_core::Secret;

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
