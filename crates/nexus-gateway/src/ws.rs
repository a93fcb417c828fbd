//! `GET /api/v1/ws`: the same events as `/api/v1/events`, over a
//! WebSocket, one JSON text frame per message (`{"error": ...}` and a close
//! when the key stops working). Auth is checked on the upgrade, before the
//! 101: `Authorization: Bearer <key>`, or, for browsers that cannot set
//! headers, the subprotocols `nexus.v1, bearer.<key>` (the answer names only
//! `nexus.v1`, never the key). `?after=N` resumes after inbox row N.
//!
//! The handshake is done here on hyper's upgrade with the workspace's
//! tokio-tungstenite (axum's `ws` feature would build a second version).

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt as _;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

/// Where a connection resumes.
#[derive(Debug, serde::Deserialize)]
pub struct After {
    after: Option<i64>,
}

/// The secret the upgrade carried, from either place.
pub(crate) fn ws_secret(headers: &axum::http::HeaderMap) -> Option<String> {
    let bearer = crate::stream::bearer(headers);
    if !bearer.is_empty() {
        return Some(bearer);
    }
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())?
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("bearer."))
        .map(str::to_string)
}

/// `GET /api/v1/ws`.
pub async fn events_ws(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Query(q): Query<After>,
    mut req: Request,
) -> Result<Response, ApiError> {
    c.need(Scope::Read)?;
    c.policy(&s, "messages", "read", None)?;
    let h = req.headers();
    let has = |name: header::HeaderName, want: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(want)))
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err(ApiError::bad_request(
            "this is a WebSocket endpoint: send Connection: upgrade and Upgrade: websocket",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err(ApiError::bad_request("Sec-WebSocket-Version must be 13"));
    }
    let Some(key) = h
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec())
    else {
        return Err(ApiError::bad_request("Sec-WebSocket-Key is missing"));
    };
    let protocol = h
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == "nexus.v1"));
    let secret = ws_secret(h).unwrap_or_default();
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let upgrade = hyper::upgrade::on(&mut req);
    let rx = crate::stream::inbox_feed(&s, &c.0, secret, q.after.unwrap_or(0));
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        let mut rx = rx;
        let mut ping = tokio::time::interval(std::time::Duration::from_secs(15));
        loop {
            tokio::select! {
                item = rx.recv() => {
                    let Some(item) = item else { break };
                    let end = item.get("error").is_some();
                    if ws.send(Message::text(item.to_string())).await.is_err() || end {
                        break;
                    }
                }
                _ = ping.tick() => {
                    if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break;
                    }
                }
                incoming = futures_util::StreamExt::next(&mut ws) => {
                    match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        _ => {}
                    }
                }
            }
        }
        let _ = ws.close(None).await;
    });
    let mut r = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let hs = r.headers_mut();
    hs.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    hs.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        hs.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if protocol {
        hs.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("nexus.v1"),
        );
    }
    Ok(r)
}
