//! Errors: the typed provider error every provider returns, and the core
//! crate's own error.
//!
//! Messages say what to do next. None of them ever contains a credential:
//! providers put only the provider's own error text here, after redaction.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The class of a provider failure. Callers branch on this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The key or token was missing, wrong or revoked (401/403).
    Auth,
    /// Too many requests (429); see `retry_after`.
    RateLimited,
    /// The account is out of credit or quota (`insufficient_quota`, 402). Never retried.
    QuotaExceeded,
    /// The provider is overloaded (Anthropic 529, 503).
    Overloaded,
    /// The provider failed (other 5xx).
    Server,
    /// The request was malformed or named an unknown model (other 4xx).
    InvalidRequest,
    /// The prompt is longer than the model's context window.
    ContextWindowExceeded,
    /// The provider refused on content-policy grounds.
    ContentPolicy,
    /// The connection failed or dropped.
    Network,
    /// A connect, request or stream-idle timeout fired.
    Timeout,
    /// The provider sent something that does not follow its own protocol.
    Protocol,
    /// A response, or a stream in all, was larger or lasted longer than
    /// the client's limits (`[http]` in config.toml) allow.
    TooLarge,
}

impl ErrorKind {
    /// Whether a retry (after backoff) may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Network
                | ErrorKind::Timeout
        )
    }

    /// A short stable name (`rate_limited`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextWindowExceeded => "context_window_exceeded",
            ErrorKind::ContentPolicy => "content_policy",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Protocol => "protocol",
            ErrorKind::TooLarge => "too_large",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            ErrorKind::Auth => "check the API key (or sign in again) for this provider",
            ErrorKind::RateLimited => "wait and retry, or lower the request rate",
            ErrorKind::QuotaExceeded => "add credit or raise the quota in the provider's console",
            ErrorKind::Overloaded => "the provider is overloaded; retry later or use another model",
            ErrorKind::Server => "the provider failed; retry later or use another model",
            ErrorKind::InvalidRequest => "check the model id and the request options",
            ErrorKind::ContextWindowExceeded => {
                "shorten the prompt or pick a model with a larger context window"
            }
            ErrorKind::ContentPolicy => "rephrase the request",
            ErrorKind::Network => "check the network and the provider's base URL",
            ErrorKind::Timeout => "retry, or raise the timeout in config.toml",
            ErrorKind::Protocol => {
                "the server's reply did not follow the API; check the base URL points at the right API"
            }
            ErrorKind::TooLarge => {
                "the reply passed a limit; raise max_response_bytes, max_stream_bytes or stream_total_timeout_secs under [http] in config.toml if it is expected"
            }
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure talking to a model provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderError {
    /// The class of failure.
    pub kind: ErrorKind,
    /// Which provider (`anthropic`, `openai`, ...).
    pub provider: String,
    /// The HTTP status, when there was one.
    pub status: Option<u16>,
    /// The provider's request id, when it sent one.
    pub request_id: Option<String>,
    /// How long the provider asked us to wait, for rate limits and overloads.
    #[serde(with = "opt_duration_ms", default)]
    pub retry_after: Option<Duration>,
    /// The provider's own error code (`insufficient_quota`, `overloaded_error`, ...).
    pub code: Option<String>,
    /// A human-readable message (the provider's, or ours).
    pub message: String,
}

impl ProviderError {
    /// A new error of `kind` from `provider`.
    pub fn new(kind: ErrorKind, provider: impl Into<String>, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            provider: provider.into(),
            status: None,
            request_id: None,
            retry_after: None,
            code: None,
            message: message.into(),
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    /// Sets the retry-after hint.
    pub fn with_retry_after(mut self, d: Option<Duration>) -> Self {
        self.retry_after = d;
        self
    }

    /// Sets the provider's error code.
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error from {}", self.kind, self.provider)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(ra) = self.retry_after {
            write!(f, " [retry after {:.1}s]", ra.as_secs_f64())?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        write!(f, "; {}", self.kind.hint())
    }
}

impl std::error::Error for ProviderError {}

mod opt_duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// Errors from nexus-core itself (config, files, references).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `config.toml` could not be parsed.
    #[error("{path}: invalid config: {message}; fix the file or run `nexus config show` to see what was read")]
    Config {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// A config key does not exist or its value has the wrong type.
    #[error("config key `{key}`: {message}")]
    ConfigKey {
        /// The dotted key.
        key: String,
        /// What was wrong.
        message: String,
    },
    /// A model reference could not be parsed or resolved.
    #[error("{0}")]
    ModelRef(String),
    /// A file operation under NEXUS_HOME failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A vault operation failed.
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
}

impl Error {
    /// Wraps an I/O error with its path.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_status_request_id_and_hint() {
        let e = ProviderError::new(ErrorKind::RateLimited, "openai", "slow down")
            .with_status(429)
            .with_request_id(Some("req_1".into()))
            .with_retry_after(Some(Duration::from_secs(2)));
        let s = e.to_string();
        assert!(s.contains("HTTP 429"), "{s}");
        assert!(s.contains("req_1"), "{s}");
        assert!(s.contains("retry after 2.0s"), "{s}");
        assert!(s.contains("lower the request rate"), "{s}");
    }

    #[test]
    fn only_transient_kinds_retry() {
        assert!(ErrorKind::Overloaded.is_retryable());
        assert!(!ErrorKind::QuotaExceeded.is_retryable());
        assert!(!ErrorKind::Auth.is_retryable());
        assert!(!ErrorKind::InvalidRequest.is_retryable());
    }
}
