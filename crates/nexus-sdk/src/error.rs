//! The SDK's public error: one type with a small, stable [`ErrorCode`] that
//! every binding maps to its own error classes, plus the details a caller
//! acts on (`retry_after`, the attempts of a failed `ask`) and the rich
//! error underneath as its `source()`.

use std::time::Duration;

use nexus_core::{ErrorKind, ProviderError, VaultError};
use nexus_hierarchy::engine::AskError;
use nexus_hierarchy::HierarchyError;

use crate::types::AttemptInfo;

/// The class of a failure. Bindings map each code to one error class
/// (`nexus.RateLimitError`, `NexusError.code === "rate_limited"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// No key, or the key or token was rejected (401/403).
    Auth,
    /// Too many requests; see [`Error::retry_after`].
    RateLimited,
    /// The account is out of credit or quota.
    QuotaExceeded,
    /// The daily or per-request budget stops the request.
    BudgetExceeded,
    /// The request was malformed, named an unknown model, or is too long.
    InvalidRequest,
    /// The connection failed or dropped.
    Network,
    /// A timeout fired.
    Timeout,
    /// The provider failed (5xx, overload, content policy, protocol).
    Provider,
    /// Every tier of the hierarchy failed, refused or was rejected.
    NoAcceptableAnswer,
    /// Configuration or input is wrong (config.toml, a category, a preset).
    Config,
    /// The vault failed or is locked.
    Vault,
    /// A bug or an environment failure.
    Internal,
    /// The mesh refused or failed: not a member, no such peer, blocked,
    /// no mesh key yet, a refusal from the broker.
    Mesh,
}

impl ErrorCode {
    /// Every code, for bindings' tables.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::Auth,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::BudgetExceeded,
        ErrorCode::InvalidRequest,
        ErrorCode::Network,
        ErrorCode::Timeout,
        ErrorCode::Provider,
        ErrorCode::NoAcceptableAnswer,
        ErrorCode::Config,
        ErrorCode::Vault,
        ErrorCode::Internal,
        ErrorCode::Mesh,
    ];

    /// The stable snake_case name (`rate_limited`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Auth => "auth",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Network => "network",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Provider => "provider",
            ErrorCode::NoAcceptableAnswer => "no_acceptable_answer",
            ErrorCode::Config => "config",
            ErrorCode::Vault => "vault",
            ErrorCode::Internal => "internal",
            ErrorCode::Mesh => "mesh",
        }
    }

    /// The class name bindings give this code (`RateLimitError`).
    pub fn class_name(self) -> &'static str {
        match self {
            ErrorCode::Auth => "AuthError",
            ErrorCode::RateLimited => "RateLimitError",
            ErrorCode::QuotaExceeded => "QuotaExceededError",
            ErrorCode::BudgetExceeded => "BudgetExceeded",
            ErrorCode::InvalidRequest => "InvalidRequestError",
            ErrorCode::Network => "NetworkError",
            ErrorCode::Timeout => "TimeoutError",
            ErrorCode::Provider => "ProviderError",
            ErrorCode::NoAcceptableAnswer => "NoAcceptableAnswer",
            ErrorCode::Config => "ConfigError",
            ErrorCode::Vault => "VaultError",
            ErrorCode::Internal => "InternalError",
            ErrorCode::Mesh => "MeshError",
        }
    }

    fn from_kind(k: ErrorKind) -> ErrorCode {
        match k {
            ErrorKind::Auth => ErrorCode::Auth,
            ErrorKind::RateLimited => ErrorCode::RateLimited,
            ErrorKind::QuotaExceeded => ErrorCode::QuotaExceeded,
            ErrorKind::InvalidRequest | ErrorKind::ContextWindowExceeded => {
                ErrorCode::InvalidRequest
            }
            ErrorKind::Network => ErrorCode::Network,
            ErrorKind::Timeout => ErrorCode::Timeout,
            ErrorKind::Overloaded
            | ErrorKind::Server
            | ErrorKind::ContentPolicy
            | ErrorKind::Protocol
            | ErrorKind::TooLarge => ErrorCode::Provider,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure. The message says what to do next and never holds a secret.
/// (Boxed, so `Result`s stay one pointer wide.)
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    code: ErrorCode,
    message: String,
    provider: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    attempts: Vec<AttemptInfo>,
    source: Option<Source>,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// `Result<T, nexus_sdk::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `code` with `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            code,
            message: message.into(),
            provider: None,
            status: None,
            retry_after: None,
            request_id: None,
            attempts: Vec::new(),
            source: None,
        }))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Config, message)
    }

    pub(crate) fn with_source(mut self, s: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(s));
        self
    }

    /// The class.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The message (also the `Display`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The provider that failed, if one did.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The HTTP status, if there was one.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// How long the provider asked us to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The provider's request id, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The attempts a failed `ask` made, in order (empty otherwise).
    pub fn attempts(&self) -> &[AttemptInfo] {
        &self.0.attempts
    }

    /// The provider error underneath (for `ask`: the last one), if any.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        self.0.source.as_ref()?.downcast_ref::<ProviderError>()
    }
}

impl From<ProviderError> for Error {
    fn from(e: ProviderError) -> Self {
        let mut err = Error::new(ErrorCode::from_kind(e.kind), e.to_string());
        err.0.provider = Some(e.provider.clone());
        err.0.status = e.status;
        err.0.retry_after = e.retry_after;
        err.0.request_id = e.request_id.clone();
        err.with_source(e)
    }
}

impl From<VaultError> for Error {
    fn from(e: VaultError) -> Self {
        let code = match e {
            VaultError::InvalidName { .. } => ErrorCode::Config,
            _ => ErrorCode::Vault,
        };
        Error::new(code, e.to_string()).with_source(e)
    }
}

impl From<nexus_core::Error> for Error {
    fn from(e: nexus_core::Error) -> Self {
        match e {
            nexus_core::Error::Vault(v) => v.into(),
            nexus_core::Error::Io { .. } => Error::new(ErrorCode::Internal, e.to_string()),
            other => Error::config(other.to_string()).with_source(other),
        }
    }
}

impl From<nexus_providers::Error> for Error {
    fn from(e: nexus_providers::Error) -> Self {
        use nexus_providers::Error as E;
        match e {
            E::Provider(p) => p.into(),
            E::Core(c) => c.into(),
            E::MissingKey { ref provider, .. } => {
                let mut err = Error::new(ErrorCode::Auth, e.to_string());
                err.0.provider = Some(provider.clone());
                err.with_source(e)
            }
            E::VaultUnavailable { ref provider, .. } => {
                let mut err = Error::new(ErrorCode::Vault, e.to_string());
                err.0.provider = Some(provider.clone());
                err.with_source(e)
            }
            E::Http(_) => Error::new(ErrorCode::Internal, e.to_string()).with_source(e),
            other => Error::config(other.to_string()).with_source(other),
        }
    }
}

impl From<HierarchyError> for Error {
    fn from(e: HierarchyError) -> Self {
        match e {
            HierarchyError::Providers(p) => p.into(),
            HierarchyError::Config(c) => c.into(),
            HierarchyError::NoCredentials(m) => {
                Error::new(ErrorCode::Auth, m.clone()).with_source(HierarchyError::NoCredentials(m))
            }
            HierarchyError::Ledger(l) => Error::new(ErrorCode::Internal, l.to_string()),
            HierarchyError::Usage(m) => Error::config(m),
        }
    }
}

impl From<nexus_hierarchy::ledger::LedgerError> for Error {
    fn from(e: nexus_hierarchy::ledger::LedgerError) -> Self {
        Error::new(ErrorCode::Internal, e.to_string()).with_source(e)
    }
}

impl From<AskError> for Error {
    fn from(e: AskError) -> Self {
        let attempts: Vec<AttemptInfo> = e.attempts().iter().map(AttemptInfo::from).collect();
        let mut err = match &e {
            AskError::Budget { .. } => Error::new(ErrorCode::BudgetExceeded, e.to_string()),
            AskError::NoTiers(_) => Error::config(e.to_string()),
            AskError::Ledger(l) => Error::new(ErrorCode::Internal, l.to_string()),
            AskError::Stopped { .. } | AskError::Exhausted { .. } => {
                let mut err = Error::new(ErrorCode::NoAcceptableAnswer, e.to_string());
                if let Some(pe) = e.last_error() {
                    err.0.message = format!("{e}; last error: {pe}");
                    err.0.provider = Some(pe.provider.clone());
                    err.0.status = pe.status;
                    err.0.retry_after = pe.retry_after;
                    err.0.request_id = pe.request_id.clone();
                    err = err.with_source(pe.clone());
                }
                err
            }
        };
        err.0.attempts = attempts;
        err
    }
}
