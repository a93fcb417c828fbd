//! What every request passes before a handler runs: the `Host` header must
//! name this gateway (DNS rebinding), an `Origin`, when sent, must be this
//! gateway's own (cross-site calls), and the bearer key must be live and
//! have the route's scope.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::keys::{Key, KeyError, Scope};
use crate::Shared;

/// Whether `host` (a `Host` header) names the gateway: loopback names on
/// its port, or a configured name.
pub fn host_allowed(host: &str, port: u16, extra: &[String]) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let local = ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host == format!("{h}:{port}") || (port == 80 && host == *h));
    local || extra.iter().any(|e| e.eq_ignore_ascii_case(&host))
}

/// Whether `origin` (an `Origin` header) is the gateway's own.
pub fn origin_allowed(origin: &str, port: u16, extra: &[String]) -> bool {
    let o = origin.trim().to_ascii_lowercase();
    o.strip_prefix("http://")
        .is_some_and(|h| host_allowed(h, port, &[]))
        || extra.iter().any(|e| e.eq_ignore_ascii_case(&o))
}

/// The port of `host` when it is a loopback name with one (`127.0.0.1:5555`).
pub fn loopback_port(host: &str) -> Option<u16> {
    let host = host.trim().to_ascii_lowercase();
    let (name, port) = host.rsplit_once(':')?;
    // Canonical digits only (no sign, no leading zero): the port must read
    // back as the same text the Host check compares.
    if port.is_empty()
        || !port.bytes().all(|b| b.is_ascii_digit())
        || (port.len() > 1 && port.starts_with('0'))
    {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    ["127.0.0.1", "localhost", "[::1]"]
        .contains(&name)
        .then_some(port)
}

/// The `Host` and `Origin` checks, as middleware.
pub async fn check_host(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // Through a tunnel, the port is the tunnel's; the name must still be
    // a loopback one.
    let port = match (s.config.any_loopback_port, loopback_port(host)) {
        (true, Some(p)) => p,
        _ => s.config.port,
    };
    if !host_allowed(host, port, &s.config.allowed_hosts) {
        return ApiError::forbidden(format!(
            "Host `{}` is not this gateway's (DNS rebinding guard); add it to [gateway] allowed_hosts if it is",
            host.chars().take(100).collect::<String>()
        ))
        .into_response();
    }
    if let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|h| h.to_str().ok())
    {
        if !origin_allowed(origin, port, &s.config.allowed_origins) {
            return ApiError::forbidden(format!(
                "Origin `{}` may not call this gateway (cross-site guard); add it to [gateway] allowed_origins if it should",
                origin.chars().take(100).collect::<String>()
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// Puts every error the framework itself answers (a body that is not
/// JSON, too large, a bad path or query) into the one error schema.
pub async fn one_error_schema(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    let json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || json {
        return r;
    }
    let bytes = axum::body::to_bytes(r.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let code = match status.as_u16() {
        401 | 403 => nexus_sdk::ErrorCode::Auth,
        429 => nexus_sdk::ErrorCode::RateLimited,
        400..=499 => nexus_sdk::ErrorCode::InvalidRequest,
        _ => nexus_sdk::ErrorCode::Internal,
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    ApiError::new(status, code, message).into_response()
}

/// The caller: a live API key.
#[derive(Debug, Clone)]
pub struct Caller(pub Key);

impl Caller {
    /// 403 unless the key has `scope`.
    pub fn need(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.allows(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key lacks the `{scope}` scope (it has {})",
                self.0
                    .scopes
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// 403 unless the policy allows `verb` on `resource` (for `peer`); the
    /// decision is written to the audit log either way.
    pub fn policy(
        &self,
        s: &Shared,
        resource: &str,
        verb: &str,
        peer: Option<&str>,
    ) -> Result<(), ApiError> {
        let home = nexus_core::NexusHome::at(s.client.home());
        let policies = nexus_sdk::policy::Policies::load(&home).map_err(|e| {
            ApiError::forbidden(format!(
                "the policy cannot be read, so nothing is allowed: {e}"
            ))
        })?;
        let action = nexus_core::policy::Action {
            resource,
            verb,
            mesh: Some(&self.0.mesh),
            peer,
        };
        let (v, _) = nexus_sdk::policy::check_unattended(
            &home,
            &policies,
            nexus_core::policy::ApprovalMode::Write,
            &format!("apikey:{}", self.0.id),
            &action,
        );
        if v.decision == nexus_core::policy::Decision::Allow {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the policy denies {verb} on {resource}: {}",
                v.reason
            )))
        }
    }

    /// 403 unless the key covers `topic`.
    pub fn topic(&self, topic: &str) -> Result<(), ApiError> {
        if self.0.covers_topic(topic) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this API key is limited to the topics {}",
                self.0.topics.join(", ")
            )))
        }
    }
}

pub(crate) fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Io(_) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            nexus_sdk::ErrorCode::Internal,
            e.to_string(),
        ),
        _ => ApiError::unauthorized(e.to_string()),
    }
}

impl FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<Shared>) -> Result<Caller, ApiError> {
        // A WebSocket from a browser carries the key as a subprotocol.
        let token = crate::ws::ws_secret(&parts.headers)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "send `Authorization: Bearer <API key>`; `nexus apikey create` makes one",
                )
            })?;
        let key = s.keys.verify(token.trim(), s.now_ms()).map_err(key_error)?;
        s.seen(&key);
        Ok(Caller(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebinding_and_cross_site_names_are_refused() {
        assert!(host_allowed("127.0.0.1:18789", 18789, &[]));
        assert!(host_allowed("LOCALHOST:18789", 18789, &[]));
        assert!(host_allowed("[::1]:18789", 18789, &[]));
        for bad in [
            "evil.example:18789",
            "127.0.0.1:80",
            "127.0.0.1.evil.com:18789",
            "",
            "localhost",
        ] {
            assert!(!host_allowed(bad, 18789, &[]), "{bad}");
        }
        assert!(host_allowed(
            "nexus.lan:18789",
            18789,
            &["nexus.lan:18789".into()]
        ));
        assert!(origin_allowed("http://127.0.0.1:18789", 18789, &[]));
        assert_eq!(loopback_port("127.0.0.1:5555"), Some(5555));
        assert_eq!(loopback_port("localhost:80"), Some(80));
        for bad in [
            "evil.example:5555",
            "127.0.0.1.evil:1",
            "127.0.0.1",
            "[::1]:x",
        ] {
            assert_eq!(loopback_port(bad), None, "{bad}");
        }
        assert!(!origin_allowed("https://evil.example", 18789, &[]));
        assert!(!origin_allowed("null", 18789, &[]));
        assert!(origin_allowed(
            "https://app.example",
            18789,
            &["https://app.example".into()]
        ));
    }
}
