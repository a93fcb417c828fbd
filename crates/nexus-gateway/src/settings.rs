//! The settings routes (admin scope): providers and their credentials
//! (names and states, never values), OAuth sign-in, and the model
//! hierarchy (presets, tiers, escalation policy, stats). Each parses, calls
//! the SDK, and answers; the desktop UI is their first user.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

type Reply = Result<Json<Value>, ApiError>;

/// How long an OAuth sign-in started from the UI waits for the browser.
pub const OAUTH_TIMEOUT: Duration = Duration::from_secs(300);

fn providers_json(s: &Shared) -> Reply {
    let providers = s.client.providers()?;
    let vault = s.client.vault().ok().map(|v| v.backend());
    Ok(Json(json!({ "providers": providers, "vault": vault })))
}

/// `GET /api/v1/providers`.
pub async fn providers(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    providers_json(&s)
}

/// A key to store.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    key: String,
}

/// `PUT /api/v1/providers/{name}/key`.
pub async fn set_key(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
    Json(b): Json<KeyBody>,
) -> Reply {
    c.need(Scope::Admin)?;
    s.client.set_provider_key(&name, &b.key)?;
    providers_json(&s)
}

/// `DELETE /api/v1/providers/{name}/key`.
pub async fn delete_key(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
) -> Reply {
    c.need(Scope::Admin)?;
    s.client.delete_provider_key(&name)?;
    providers_json(&s)
}

/// `PUT /api/v1/providers/{name}/oauth`: the OAuth client settings.
pub async fn set_oauth(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
    Json(b): Json<nexus_sdk::settings::OAuthClient>,
) -> Reply {
    c.need(Scope::Admin)?;
    if b.client_id.trim().is_empty() {
        return Err(ApiError::bad_request("a client_id is needed"));
    }
    Ok(Json(json!(s.client.set_oauth_client(&name, &b)?)))
}

/// `POST /api/v1/providers/{name}/oauth/authorize`: the URL to open; the
/// sign-in completes when the browser comes back to the loopback redirect.
pub async fn authorize(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    c.need(Scope::Admin)?;
    let url = s.client.oauth_begin(&name, OAUTH_TIMEOUT).await?;
    Ok(Json(
        json!({ "url": url, "timeout_secs": OAUTH_TIMEOUT.as_secs() }),
    ))
}

/// `POST /api/v1/providers/{name}/oauth/refresh`.
pub async fn refresh(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    c.need(Scope::Admin)?;
    Ok(Json(json!(s.client.oauth_refresh(&name).await?)))
}

/// `DELETE /api/v1/providers/{name}/oauth`: signs out.
pub async fn logout(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    c.need(Scope::Admin)?;
    let revoked = s.client.oauth_logout(&name).await?;
    Ok(Json(json!({ "revoked": revoked })))
}

fn hierarchy_json(s: &Shared) -> Reply {
    let policy = s.client.escalation_policy()?;
    let models: Vec<Value> = s
        .client
        .models()
        .into_iter()
        .map(|(id, ready)| json!({"id": id, "ready": ready}))
        .collect();
    // No tiers without a provider key: the page still shows the presets,
    // the policy, and why (with what to do).
    let (preset, saved, categories, problem) = match s.client.hierarchy() {
        Ok(h) => (h.preset, h.saved, json!(h.categories), None),
        Err(e) => (String::new(), false, json!({}), Some(e.to_string())),
    };
    Ok(Json(json!({
        "preset": preset,
        "saved": saved,
        "categories": categories,
        "problem": problem,
        "presets": s.client.presets(),
        "policy": policy,
        "models": models,
    })))
}

/// `GET /api/v1/hierarchy`: tiers, presets, policy and the models to pick.
pub async fn hierarchy(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    hierarchy_json(&s)
}

/// A preset to apply.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetBody {
    name: String,
}

/// `POST /api/v1/hierarchy/preset`.
pub async fn preset(State(s): State<Arc<Shared>>, c: Caller, Json(b): Json<PresetBody>) -> Reply {
    c.need(Scope::Admin)?;
    s.client.use_preset(&b.name)?;
    hierarchy_json(&s)
}

/// Edits in the CLI's syntax (`tier1=openai/gpt-4o`, `tier2=disabled`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditsBody {
    edits: Vec<String>,
}

/// `PUT /api/v1/hierarchy/categories/{name}`.
pub async fn set_tiers(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(name): Path<String>,
    Json(b): Json<EditsBody>,
) -> Reply {
    c.need(Scope::Admin)?;
    if b.edits.is_empty() || b.edits.len() > 32 {
        return Err(ApiError::bad_request("send 1–32 edits"));
    }
    s.client.set_tiers(&name, &b.edits)?;
    hierarchy_json(&s)
}

/// Policy assignments (`daily-budget=5`, `auto-escalation=false`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    assignments: Vec<String>,
}

/// `PUT /api/v1/hierarchy/policy`.
pub async fn set_policy(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Json(b): Json<PolicyBody>,
) -> Reply {
    c.need(Scope::Admin)?;
    if b.assignments.len() > 32 {
        return Err(ApiError::bad_request("send at most 32 assignments"));
    }
    s.client.set_escalation_policy(&b.assignments)?;
    hierarchy_json(&s)
}

/// `?days=`.
#[derive(Debug, Deserialize)]
pub struct Days {
    days: Option<u32>,
}

/// `GET /api/v1/hierarchy/stats?days=7`: requests, escalations and cost.
pub async fn stats(State(s): State<Arc<Shared>>, c: Caller, Query(q): Query<Days>) -> Reply {
    c.need(Scope::Admin)?;
    let days = q.days.unwrap_or(7).clamp(1, 366);
    Ok(Json(json!({
        "days": days,
        "escalation": s.client.stats(days)?,
        "spend": s.client.usage(days)?,
    })))
}
