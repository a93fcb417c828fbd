//! The REST routes: each checks its scope (and topic), then calls the SDK
//! in the key's mesh. No business logic lives here.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use nexus_sdk::mesh::item_json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

type Reply = Result<Json<Value>, ApiError>;

/// `GET /api/v1/health`: no key needed.
pub async fn health() -> Json<Value> {
    Json(json!({"ok": true, "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /api/v1/whoami`: the key's own record (no secret), and the peer
/// it speaks as (for mentions).
pub async fn whoami(State(s): State<Arc<Shared>>, c: Caller) -> Json<Value> {
    let mut v = json!({"id": c.0.id, "mesh": c.0.mesh, "scopes": c.0.scopes, "topics": c.0.topics,
                "label": c.0.label, "expires_ms": c.0.expires_ms});
    // Only with a mesh joined: then the identity exists, and asking for it
    // makes none.
    if let Ok(m) = s.client.mesh().and_then(|m| m.current().map(|_| m)) {
        if let Ok((name, id)) = m.identity().await {
            v["peer"] = json!({"name": name, "id": id});
        }
    }
    Json(v)
}

/// `GET /api/v1/peers`.
pub async fn peers(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Read)?;
    c.policy(&s, "peers", "read", None)?;
    let peers = s.client.mesh()?.peers(Some(&c.0.mesh)).await?;
    let mut rows: Vec<Value> = peers
        .iter()
        .map(|p| {
            json!({"id": p.peer, "name": p.name, "online": p.online, "status": p.status,
                   "summary": p.summary, "caps": p.caps, "blocked": p.blocked, "type": "agent"})
        })
        .collect();
    // People on API keys, with presence.
    rows.extend(s.humans(&c.0.mesh));
    Ok(Json(json!({ "peers": rows })))
}

/// `GET /api/v1/topics`: topics with unread counts.
pub async fn topics(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Read)?;
    c.policy(&s, "topics", "read", None)?;
    let mesh = s.client.mesh()?;
    let names = mesh.topics(Some(&c.0.mesh)).await?;
    let unread = mesh.unread(Some(&c.0.mesh)).await?;
    let rows: Vec<Value> = names
        .iter()
        .filter(|t| c.0.covers_topic(t))
        .map(|t| {
            let n = unread
                .iter()
                .find(|(k, _)| k.strip_prefix('#') == Some(t.as_str()))
                .map_or(0, |(_, n)| *n);
            json!({"name": t, "unread": n})
        })
        .collect();
    let direct = unread
        .iter()
        .find(|(k, _)| k == "direct")
        .map_or(0, |(_, n)| *n);
    Ok(Json(json!({ "topics": rows, "direct_unread": direct })))
}

/// Paging of a topic's history.
#[derive(Debug, Deserialize)]
pub struct Page {
    before: Option<u64>,
    limit: Option<u32>,
}

fn topic_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "a topic name is 1-128 characters without control characters",
        ));
    }
    Ok(())
}

/// `GET /api/v1/topics/{name}/messages?before=&limit=`: newest first.
pub async fn history(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
    Query(p): Query<Page>,
) -> Reply {
    c.need(Scope::Read)?;
    c.topic(&name)?;
    topic_name(&name)?;
    c.policy(&s, "topics", "read", None)?;
    let limit = p.limit.unwrap_or(50).clamp(1, 200);
    let entries = s
        .client
        .mesh()?
        .history(Some(&c.0.mesh), &name, p.before, limit)
        .await?;
    Ok(Json(
        json!({ "messages": crate::stream::history_json(&entries) }),
    ))
}

/// A message to send.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Text {
    text: String,
}

/// `POST /api/v1/topics/{name}/messages` `{text}`.
pub async fn publish(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
    Json(body): Json<Text>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.need(Scope::Send)?;
    c.topic(&name)?;
    topic_name(&name)?;
    c.policy(&s, "topics", "send", None)?;
    if body.text.is_empty() {
        return Err(ApiError::bad_request("`text` is empty"));
    }
    let id = s
        .client
        .mesh()?
        .publish(Some(&c.0.mesh), &name, &body.text)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// A direct message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Direct {
    to: String,
    text: String,
}

/// `POST /api/v1/messages` `{to, text}`.
pub async fn send(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Json(body): Json<Direct>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.need(Scope::Send)?;
    if body.text.is_empty() || body.to.is_empty() {
        return Err(ApiError::bad_request("`to` and `text` are required"));
    }
    c.policy(&s, "messages", "send", Some(&body.to))?;
    let id = s
        .client
        .mesh()?
        .send(Some(&c.0.mesh), &body.to, &body.text)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// `GET /api/v1/messages`: direct messages not yet marked read.
pub async fn inbox(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Read)?;
    c.policy(&s, "messages", "read", None)?;
    let items = s.client.mesh()?.inbox(Some(&c.0.mesh)).await?;
    let rows: Vec<Value> = items
        .iter()
        .map(item_json)
        .filter(|m| m["kind"] == "dm")
        .collect();
    Ok(Json(json!({ "messages": rows })))
}

/// `?from=NAME`.
#[derive(Debug, Deserialize)]
pub struct Sender {
    from: Option<String>,
}

/// `PATCH /api/v1/messages/read?from=NAME`: marks the stored direct
/// messages (from one sender, or all) read.
pub async fn mark_messages_read(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Query(q): Query<Sender>,
) -> Reply {
    c.need(Scope::Read)?;
    c.policy(&s, "messages", "read", None)?;
    let mesh = s.client.mesh()?;
    let items = mesh.inbox(Some(&c.0.mesh)).await?;
    let seqs: Vec<i64> = items
        .iter()
        .filter(|i| match &i.message {
            nexus_sdk::mesh::MeshEvent::Dm { from_name, .. } => {
                q.from.as_deref().is_none_or(|f| f == from_name)
            }
            _ => false,
        })
        .filter_map(|i| i.seq)
        .collect();
    if !seqs.is_empty() {
        mesh.mark_read(Some(&c.0.mesh), &seqs).await?;
    }
    Ok(Json(json!({ "marked": seqs.len() })))
}

/// `PATCH /api/v1/topics/{name}/read`: marks the topic's stored messages read.
pub async fn mark_read(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    c.need(Scope::Read)?;
    c.topic(&name)?;
    c.policy(&s, "topics", "read", None)?;
    let mesh = s.client.mesh()?;
    let items = mesh.inbox(Some(&c.0.mesh)).await?;
    let seqs: Vec<i64> = items
        .iter()
        .filter(|i| matches!(&i.message, nexus_sdk::mesh::MeshEvent::Topic { topic, .. } if *topic == name))
        .filter_map(|i| i.seq)
        .collect();
    if !seqs.is_empty() {
        mesh.mark_read(Some(&c.0.mesh), &seqs).await?;
    }
    Ok(Json(json!({ "marked": seqs.len() })))
}

/// A prompt for `chat`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompt {
    prompt: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    system: Option<String>,
}

/// `POST /api/v1/chat` `{prompt, model?, system?}` (admin).
pub async fn chat(State(s): State<Arc<Shared>>, c: Caller, Json(p): Json<Prompt>) -> Reply {
    c.need(Scope::Admin)?;
    c.policy(&s, "models", "chat", None)?;
    let options = nexus_sdk::ChatOptions {
        system: p.system,
        ..Default::default()
    };
    let r = s
        .client
        .chat(
            p.model.as_deref().unwrap_or(""),
            p.prompt.as_str(),
            &options,
        )
        .await?;
    Ok(Json(
        json!({"text": r.text, "model": r.model, "usage": r.usage, "cost_usd": r.cost.map(|c| c.to_string())}),
    ))
}

/// `POST /api/v1/ask` `{prompt, system?}` (admin): through the hierarchy.
pub async fn ask(State(s): State<Arc<Shared>>, c: Caller, Json(p): Json<Prompt>) -> Reply {
    c.need(Scope::Admin)?;
    c.policy(&s, "models", "ask", None)?;
    let options = nexus_sdk::AskOptions {
        system: p.system,
        ..Default::default()
    };
    let a = s.client.ask(&p.prompt, &options).await?;
    Ok(Json(
        json!({"text": a.reply.text, "model": a.reply.model, "tier": a.tier, "category": a.category,
                   "escalations": a.escalations, "attempts": a.attempts, "cost_usd": a.total_cost.to_string()}),
    ))
}
