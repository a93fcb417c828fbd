//! The one error schema: `{"error": {"code", "message", "retry_after"?}}`,
//! with `code` one of `nexus_sdk::ErrorCode`'s names and the HTTP status
//! saying the class.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use nexus_sdk::ErrorCode;
use serde_json::json;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// An `ErrorCode` name.
    pub code: &'static str,
    /// What happened and what to do.
    pub message: String,
    /// Seconds to wait, for `rate_limited`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error of `status` and `code`.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.as_str(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// 401: no token, or not a valid one.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Auth, message)
    }

    /// 403: the token is fine, the action is not allowed.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Auth, message)
    }

    /// 400: a malformed request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::InvalidRequest, message)
    }
}

impl From<nexus_sdk::Error> for ApiError {
    fn from(e: nexus_sdk::Error) -> ApiError {
        let code = e.code();
        let status = match code {
            ErrorCode::Auth => StatusCode::BAD_GATEWAY,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::QuotaExceeded | ErrorCode::BudgetExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorCode::InvalidRequest | ErrorCode::Config => StatusCode::BAD_REQUEST,
            ErrorCode::Network | ErrorCode::Provider | ErrorCode::NoAcceptableAnswer => {
                StatusCode::BAD_GATEWAY
            }
            ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Mesh => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            code: code.as_str(),
            message: e.to_string(),
            retry_after: e.retry_after().map(|d| d.as_secs().max(1)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(s) = self.retry_after {
            body["error"]["retry_after"] = json!(s);
        }
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}
