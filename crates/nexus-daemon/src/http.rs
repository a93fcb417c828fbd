//! HTTP on the daemon's socket, for plugins that are not child processes:
//! the per-plugin store (`GET/PUT/DELETE /api/v1/store/{key}`,
//! `GET /api/v1/store?prefix=&limit=`), authorised by the plugin's bearer
//! token ([`nexus_ext::tokens`]). The gateway will serve the same router on
//! TCP; here it shares the control socket: a connection whose first byte is
//! not `{` speaks HTTP/1.1.
//!
//! Errors are one schema: `{"error": {"code": "...", "message": "..."}}`
//! with the status saying the class (401 no or bad token, 404, 413 over the
//! quota or the body limit, 400 a bad key).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nexus_ext::store::{Store, StoreError};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::extensions::Extensions;

/// The most keys one list returns.
const MAX_LIST: usize = 10_000;

/// How long a connection may take to send its request head.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A failed request, rendered in the one error schema.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Quota { .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "quota_exceeded",
                e.to_string(),
            ),
            StoreError::Key(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_key", e.to_string())
            }
            StoreError::Db(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

/// The store routes alone (the gateway merges them into its own).
pub(crate) fn store_routes(ext: Arc<Extensions>) -> Router {
    Router::new()
        .route("/api/v1/store", get(list))
        .route(
            "/api/v1/store/{*key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        // A value may be as large as the whole quota; no larger.
        .layer(DefaultBodyLimit::max(nexus_ext::store::QUOTA as usize))
        .with_state(ext)
}

/// The plugin's store, if the request carries its valid token.
async fn authorised(ext: &Extensions, headers: &HeaderMap) -> Result<Arc<Store>, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer <token>`; `nexus ext token issue ID` makes one",
            )
        })?
        .trim()
        .to_string();
    let vault = ext.vault.clone();
    let id = tokio::task::spawn_blocking(move || nexus_ext::tokens::verify(&*vault, &token))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is not valid (revoked, reissued or mistyped); `nexus ext token issue ID` makes a new one",
            )
        })?;
    Ok(ext.shared().store(&id)?)
}

#[derive(serde::Deserialize)]
struct ListQuery {
    prefix: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(ext): State<Arc<Extensions>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let store = authorised(&ext, &headers).await?;
    let prefix = q.prefix.unwrap_or_default();
    let limit = q.limit.unwrap_or(1000).min(MAX_LIST);
    let keys = tokio::task::spawn_blocking(move || store.list(&prefix, limit))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(Json(json!({ "keys": keys })))
}

async fn get_key(
    State(ext): State<Arc<Extensions>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let store = authorised(&ext, &headers).await?;
    let k = key.clone();
    let value = tokio::task::spawn_blocking(move || store.get(&k))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    match value {
        Some(v) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], v).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no key `{}`", key.chars().take(200).collect::<String>()),
        )),
    }
}

async fn put_key(
    State(ext): State<Arc<Extensions>>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let store = authorised(&ext, &headers).await?;
    tokio::task::spawn_blocking(move || store.put(&key, &body))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_key(
    State(ext): State<Arc<Extensions>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let store = authorised(&ext, &headers).await?;
    let k = key.clone();
    let gone = tokio::task::spawn_blocking(move || store.delete(&k))
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })??;
    if gone {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no key `{}`", key.chars().take(200).collect::<String>()),
        ))
    }
}

/// A stream whose first bytes were already read (to tell HTTP from
/// JSON-RPC): they are read again first.
pub(crate) struct Rewound<S> {
    head: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Rewound<S> {
    pub(crate) fn new(head: Vec<u8>, inner: S) -> Rewound<S> {
        Rewound { head, at: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewound<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.at < self.head.len() {
            let n = (self.head.len() - self.at).min(buf.remaining());
            let start = self.at;
            buf.put_slice(&self.head[start..start + n]);
            self.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewound<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves one HTTP/1.1 connection with `router`.
pub(crate) async fn serve<S>(io: S, router: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(router);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(e) = conn.await {
        tracing::debug!("an HTTP connection on the control socket ended: {e}");
    }
}
