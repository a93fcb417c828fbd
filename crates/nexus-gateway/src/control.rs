//! The daemon routes (admin scope): services, logs, heartbeat, extensions
//! and their pending approvals. The gateway is a thin client of nexusd's
//! control socket here, like the CLI; it holds no state of its own.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use nexus_core::NexusHome;
use nexus_sdk::daemon::DaemonError;
use nexus_sdk::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

type Reply = Result<Json<Value>, ApiError>;

fn daemon_error(e: DaemonError) -> ApiError {
    match e {
        DaemonError::NotRunning(_) | DaemonError::OtherVersion { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Config,
            e.to_string(),
        ),
        DaemonError::Refused(m) => ApiError::bad_request(m),
        other => ApiError::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Internal,
            other.to_string(),
        ),
    }
}

/// Calls `method` on this home's daemon, waiting at most `wait`.
async fn call(s: &Shared, method: &str, params: Value, wait: Duration) -> Reply {
    let home = NexusHome::at(s.client.home());
    nexus_sdk::daemon::call_with(&home, method, params, wait)
        .await
        .map(Json)
        .map_err(daemon_error)
}

const QUICK: Duration = Duration::from_secs(10);

/// `GET /api/v1/status`: the daemon's status (meshes, services, heartbeat,
/// extensions, gateway).
pub async fn status(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "status", Value::Null, QUICK).await
}

/// `GET /api/v1/services`.
pub async fn services(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "services.status", Value::Null, QUICK).await
}

async fn service_verb(s: &Shared, c: &Caller, verb: &str, name: &str) -> Reply {
    c.need(Scope::Admin)?;
    call(
        s,
        &format!("services.{verb}"),
        json!({ "name": name }),
        Duration::from_secs(30),
    )
    .await
}

/// `POST /api/v1/services/{name}/restart`.
pub async fn restart(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    service_verb(&s, &c, "restart", &name).await
}

/// `POST /api/v1/services/{name}/start`.
pub async fn start(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    service_verb(&s, &c, "start", &name).await
}

/// `POST /api/v1/services/{name}/stop`.
pub async fn stop(State(s): State<Arc<Shared>>, c: Caller, Path(name): Path<String>) -> Reply {
    service_verb(&s, &c, "stop", &name).await
}

/// The log filters.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    level: Option<String>,
    source: Option<String>,
    grep: Option<String>,
    since_ms: Option<u64>,
    limit: Option<u32>,
}

/// `GET /api/v1/logs?level=&source=&grep=&since_ms=&limit=`: every log
/// (the daemon's, each service's, the CLI's), filtered, oldest first.
pub async fn logs(State(s): State<Arc<Shared>>, c: Caller, Query(q): Query<LogQuery>) -> Reply {
    c.need(Scope::Admin)?;
    let params = json!({
        "level": q.level, "source": q.source, "grep": q.grep,
        "since_ms": q.since_ms, "limit": q.limit,
    });
    call(&s, "logs.read", params, QUICK).await
}

/// `DELETE /api/v1/logs`.
pub async fn clear_logs(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "logs.clear", Value::Null, QUICK).await
}

/// `GET /api/v1/heartbeat`.
pub async fn heartbeat(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "heartbeat.get", Value::Null, QUICK).await
}

/// The heartbeat settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatBody {
    enabled: bool,
    interval: Option<String>,
}

/// `PUT /api/v1/heartbeat`.
pub async fn set_heartbeat(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Json(b): Json<HeartbeatBody>,
) -> Reply {
    c.need(Scope::Admin)?;
    let params = json!({ "enabled": b.enabled, "interval": b.interval });
    call(&s, "heartbeat.set", params, QUICK).await
}

/// `POST /api/v1/heartbeat/run`: one beat now; its results.
pub async fn run_heartbeat(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "heartbeat.now", Value::Null, Duration::from_secs(300)).await
}

/// `GET /api/v1/extensions`: installed and running extensions.
pub async fn extensions(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    let installed = nexus_sdk::extensions::Extensions::new(NexusHome::at(s.client.home()))
        .list()
        .await;
    Ok(Json(json!({ "extensions": installed })))
}

/// `GET /api/v1/approvals`: questions extensions wait on.
pub async fn approvals(State(s): State<Arc<Shared>>, c: Caller) -> Reply {
    c.need(Scope::Admin)?;
    call(&s, "ext.approvals", Value::Null, QUICK).await
}

/// An answer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    answer: String,
}

/// `POST /api/v1/approvals/{n}`: `allow`, `allow_always`, `deny` or
/// `deny_always`.
pub async fn answer(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(n): Path<String>,
    Json(b): Json<AnswerBody>,
) -> Reply {
    c.need(Scope::Admin)?;
    let n: u64 = n
        .parse()
        .map_err(|_| ApiError::bad_request("an approval is named by its number"))?;
    match call(&s, "ext.answer", json!({"n": n, "answer": b.answer}), QUICK).await {
        Err(e) if e.message.starts_with("no open question") => Err(ApiError::not_found(e.message)),
        r => r,
    }
}
