//! The CLI's small public error: a message, a hint, and an exit code that
//! is distinct for every class of failure, so scripts can branch on it.

use nexus_core::{ErrorKind, ProviderError};
use serde::Serialize;

/// Exit codes, one per error class. Documented in the README and `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Class {
    /// Anything unexpected.
    Internal,
    /// Bad config, unknown provider or model, bad arguments past parsing.
    Config,
    /// No key for the provider.
    MissingKey,
    Auth,
    RateLimited,
    QuotaExceeded,
    Overloaded,
    Server,
    InvalidRequest,
    ContextWindowExceeded,
    ContentPolicy,
    Network,
    Timeout,
    Protocol,
    /// The daily budget or a cost cap stopped the request.
    Budget,
    /// The hierarchy tried its tiers and none gave an acceptable answer.
    Escalation,
    /// The vault is locked, unavailable or damaged.
    Vault,
    /// An OAuth sign-in failed or must be redone.
    OAuth,
    /// The mesh broker refused a request.
    Mesh,
}

impl Class {
    pub(crate) fn code(self) -> u8 {
        match self {
            Class::Internal => 1,
            Class::Config => 3,
            Class::MissingKey => 4,
            Class::Auth => 10,
            Class::RateLimited => 11,
            Class::QuotaExceeded => 12,
            Class::Overloaded => 13,
            Class::Server => 14,
            Class::InvalidRequest => 15,
            Class::ContextWindowExceeded => 16,
            Class::ContentPolicy => 17,
            Class::Network => 18,
            Class::Timeout => 19,
            Class::Protocol => 20,
            Class::Budget => 21,
            Class::Escalation => 22,
            Class::Vault => 23,
            Class::OAuth => 24,
            Class::Mesh => 25,
        }
    }

    fn from_kind(k: ErrorKind) -> Class {
        match k {
            ErrorKind::Auth => Class::Auth,
            ErrorKind::RateLimited => Class::RateLimited,
            ErrorKind::QuotaExceeded => Class::QuotaExceeded,
            ErrorKind::Overloaded => Class::Overloaded,
            ErrorKind::Server => Class::Server,
            ErrorKind::InvalidRequest => Class::InvalidRequest,
            ErrorKind::ContextWindowExceeded => Class::ContextWindowExceeded,
            ErrorKind::ContentPolicy => Class::ContentPolicy,
            ErrorKind::Network => Class::Network,
            ErrorKind::Timeout => Class::Timeout,
            ErrorKind::Protocol | ErrorKind::TooLarge => Class::Protocol,
        }
    }
}

/// The exit-code table for `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  success                    14  provider server error (5xx)
   1  internal error             15  invalid request (4xx)
   2  bad command-line usage     16  context window exceeded
   3  config / unknown model     17  content policy
   4  missing API key            18  network error
  10  authentication failed      19  timeout
  11  rate limited               20  protocol error (unexpected reply)
  12  quota / credit exhausted     21  budget spent (nothing was sent)
  13  provider overloaded          22  no tier gave an acceptable answer
                                 23  vault locked/unavailable/damaged
                                 24  OAuth sign-in failed or expired
                                 25  the mesh broker refused";

/// An error as the CLI reports it.
#[derive(Debug, Serialize)]
pub(crate) struct CliError {
    pub(crate) class: Class,
    pub(crate) message: String,
    /// Where it came from, when a provider failed (boxed: errors stay small).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) details: Option<Box<Details>>,
}

/// The provider-side details of an error.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Details {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) retry_after_secs: Option<f64>,
    /// For `nexus ask --json`: the attempts made before the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attempts: Option<serde_json::Value>,
}

impl CliError {
    pub(crate) fn new(class: Class, message: impl Into<String>) -> Self {
        CliError {
            class,
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(Class::Config, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(Class::Internal, message)
    }

    /// Attaches the attempts of a failed `ask`.
    pub(crate) fn with_attempts(mut self, attempts: serde_json::Value) -> Self {
        self.details.get_or_insert_with(Default::default).attempts = Some(attempts);
        self
    }
}

impl From<ProviderError> for CliError {
    fn from(e: ProviderError) -> Self {
        CliError {
            class: Class::from_kind(e.kind),
            message: e.to_string(),
            details: Some(Box::new(Details {
                provider: Some(e.provider.clone()),
                status: e.status,
                request_id: e.request_id.clone(),
                retry_after_secs: e.retry_after.map(|d| d.as_secs_f64()),
                attempts: None,
            })),
        }
    }
}

impl From<nexus_providers::Error> for CliError {
    fn from(e: nexus_providers::Error) -> Self {
        use nexus_providers::Error as E;
        match e {
            E::Provider(p) => p.into(),
            E::MissingKey { .. } => CliError::new(Class::MissingKey, e.to_string()),
            E::VaultUnavailable { .. } => CliError::new(Class::Vault, e.to_string()),
            E::Http(m) => CliError::internal(m),
            E::Core(c) => c.into(),
            other => CliError::config(other.to_string()),
        }
    }
}

impl From<nexus_hierarchy::HierarchyError> for CliError {
    fn from(e: nexus_hierarchy::HierarchyError) -> Self {
        use nexus_hierarchy::HierarchyError as H;
        match e {
            H::Providers(p) => p.into(),
            H::Config(c) => c.into(),
            H::NoCredentials(m) => CliError::new(Class::MissingKey, m),
            H::Ledger(l) => CliError::internal(l.to_string()),
            H::Usage(m) => CliError::config(m),
        }
    }
}

impl From<nexus_hierarchy::ledger::LedgerError> for CliError {
    fn from(e: nexus_hierarchy::ledger::LedgerError) -> Self {
        CliError::internal(e.to_string())
    }
}

impl From<nexus_providers::oauth::OAuthError> for CliError {
    fn from(e: nexus_providers::oauth::OAuthError) -> Self {
        use nexus_providers::oauth::OAuthError as O;
        match e {
            O::NotConfigured(_) | O::BadUrl(_) => CliError::config(e.to_string()),
            O::Vault(v) => v.into(),
            O::Timeout(_) => CliError::new(Class::Timeout, e.to_string()),
            other => CliError::new(Class::OAuth, other.to_string()),
        }
    }
}

impl From<nexus_mesh::MeshError> for CliError {
    fn from(e: nexus_mesh::MeshError) -> Self {
        use nexus_mesh::MeshError as M;
        match e {
            M::Io(_) => CliError::new(Class::Network, e.to_string()),
            M::Invalid(_) => CliError::config(e.to_string()),
            other => CliError::new(Class::Mesh, other.to_string()),
        }
    }
}

impl From<nexus_sdk::Error> for CliError {
    fn from(e: nexus_sdk::Error) -> Self {
        use nexus_sdk::ErrorCode as C;
        let source = std::error::Error::source(&e);
        if let Some(m) = source.and_then(|s| s.downcast_ref::<nexus_mesh::MeshError>()) {
            return m.clone().into();
        }
        // A provider failed (for `ask`, the last one): its class and details,
        // with the SDK's message (which names the escalation too).
        if let Some(pe) = e.provider_error() {
            let mut c = CliError::from(pe.clone());
            c.message = e.message().to_string();
            return c;
        }
        let missing_key = source.is_some_and(|s| {
            matches!(
                s.downcast_ref::<nexus_providers::Error>(),
                Some(nexus_providers::Error::MissingKey { .. })
            ) || matches!(
                s.downcast_ref::<nexus_hierarchy::HierarchyError>(),
                Some(nexus_hierarchy::HierarchyError::NoCredentials(_))
            )
        });
        if missing_key {
            return CliError::new(Class::MissingKey, e.message());
        }
        let class = match e.code() {
            C::Auth => Class::Auth,
            C::RateLimited => Class::RateLimited,
            C::QuotaExceeded => Class::QuotaExceeded,
            C::BudgetExceeded => Class::Budget,
            C::InvalidRequest => Class::InvalidRequest,
            C::Network => Class::Network,
            C::Timeout => Class::Timeout,
            C::Provider => Class::Server,
            C::NoAcceptableAnswer => Class::Escalation,
            C::Config => Class::Config,
            C::Vault => Class::Vault,
            C::Mesh => Class::Mesh,
            _ => Class::Internal,
        };
        CliError::new(class, e.to_string())
    }
}

impl From<nexus_core::VaultError> for CliError {
    fn from(e: nexus_core::VaultError) -> Self {
        match e {
            nexus_core::VaultError::InvalidName { .. } => CliError::config(e.to_string()),
            other => CliError::new(Class::Vault, other.to_string()),
        }
    }
}

impl From<nexus_vault::migrate::MigrateError> for CliError {
    fn from(e: nexus_vault::migrate::MigrateError) -> Self {
        CliError::new(Class::Vault, e.to_string())
    }
}

impl From<nexus_core::Error> for CliError {
    fn from(e: nexus_core::Error) -> Self {
        match e {
            nexus_core::Error::Io { .. } => CliError::internal(e.to_string()),
            nexus_core::Error::Vault(v) => v.into(),
            other => CliError::config(other.to_string()),
        }
    }
}
