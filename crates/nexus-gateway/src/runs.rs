//! Streamed `ask` runs: `POST /api/v1/ask/runs` starts one and answers with
//! its events as SSE (`run`, one `attempt` per model tried, then `answer`,
//! `error` or `stopped`), each with an `id:` (its index). The run goes on if
//! the client leaves: `GET /api/v1/ask/runs/{run}/events` with
//! `Last-Event-ID` replays what it missed and follows; `DELETE
//! /api/v1/ask/runs/{run}` stops it. Runs are kept 10 minutes after they
//! end, at most 100.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

/// Runs kept at most.
const MAX_RUNS: usize = 100;
/// How long an ended run is kept, ms.
const KEEP_MS: u64 = 10 * 60 * 1000;

/// One run: its events so far, and whether it ended.
struct Run {
    key: String,
    events: Vec<(String, Value)>,
    ended_ms: Option<u64>,
    task: Option<tokio::task::AbortHandle>,
}

/// The runs of a gateway.
#[derive(Default)]
pub struct Runs {
    runs: Mutex<BTreeMap<String, Run>>,
    /// Bumped on every new event, for followers.
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs").finish_non_exhaustive()
    }
}

impl Runs {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Run>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn signal(&self) -> watch::Sender<u64> {
        let mut c = self
            .changed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.get_or_insert_with(|| watch::channel(0).0).clone()
    }

    fn push(&self, run: &str, kind: &str, data: Value, now_ms: u64) {
        let end = matches!(kind, "answer" | "error" | "stopped");
        {
            let mut runs = self.lock();
            let Some(r) = runs.get_mut(run) else { return };
            if r.ended_ms.is_some() {
                return;
            }
            r.events.push((kind.to_string(), data));
            if end {
                r.ended_ms = Some(now_ms);
                r.task = None;
            }
        }
        self.signal().send_modify(|n| *n += 1);
    }

    fn prune(&self, now_ms: u64) {
        let mut runs = self.lock();
        runs.retain(|_, r| {
            r.ended_ms
                .is_none_or(|e| now_ms.saturating_sub(e) < KEEP_MS)
        });
        while runs.len() > MAX_RUNS {
            let oldest = runs
                .iter()
                .find(|(_, r)| r.ended_ms.is_some())
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => runs.remove(&k),
                None => break,
            };
        }
    }
}

fn new_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What to ask.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    prompt: String,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    category: Option<String>,
}

/// `POST /api/v1/ask/runs`: starts a run and follows it.
pub async fn start(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Json(body): Json<AskBody>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.need(Scope::Admin)?;
    c.policy(&s, "models", "ask", None)?;
    if body.prompt.trim().is_empty() {
        return Err(ApiError::bad_request("`prompt` is empty"));
    }
    s.runs.prune(s.now_ms());
    if s.runs
        .lock()
        .values()
        .filter(|r| r.ended_ms.is_none())
        .count()
        >= MAX_RUNS
    {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            nexus_sdk::ErrorCode::RateLimited,
            "too many runs at once; stop one or wait",
        ));
    }
    let id = new_id();
    s.runs.lock().insert(
        id.clone(),
        Run {
            key: c.0.id.clone(),
            events: Vec::new(),
            ended_ms: None,
            task: None,
        },
    );
    s.runs.push(&id, "run", json!({"run": id}), s.now_ms());
    let (shared, run) = (s.clone(), id.clone());
    let task = tokio::spawn(async move {
        let (observer_s, observer_run) = (shared.clone(), run.clone());
        let observer: nexus_sdk::AttemptHook = Arc::new(move |a| {
            let v = serde_json::to_value(a).unwrap_or(Value::Null);
            observer_s
                .runs
                .push(&observer_run, "attempt", v, observer_s.now_ms());
        });
        let options = nexus_sdk::AskOptions {
            system: body.system,
            category: body.category,
            ..Default::default()
        };
        let out = shared
            .client
            .ask_observed(&body.prompt, &options, Some(observer))
            .await;
        match out {
            Ok(a) => shared.runs.push(
                &run,
                "answer",
                json!({"text": a.reply.text, "model": a.reply.model, "tier": a.tier, "category": a.category,
                       "escalations": a.escalations, "usage": a.reply.usage, "cost_usd": a.total_cost.to_string()}),
                shared.now_ms(),
            ),
            Err(e) => {
                let err = ApiError::from(e);
                shared.runs.push(&run, "error", json!({"error": {"code": err.code, "message": err.message}}), shared.now_ms());
            }
        }
    });
    if let Some(r) = s.runs.lock().get_mut(&id) {
        if r.ended_ms.is_none() {
            r.task = Some(task.abort_handle());
        }
    }
    Ok(follow(s, id, 0))
}

/// The events of `run` from index `from`, then live until it ends.
fn follow(
    s: Arc<Shared>,
    run: String,
    from: usize,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.runs.signal().subscribe();
    let stream = futures_util::stream::unfold(
        (s, run, from, rx, false),
        |(s, run, next, mut rx, done)| async move {
            if done {
                return None;
            }
            loop {
                let (item, ended) = {
                    let runs = s.runs.lock();
                    let r = runs.get(&run)?;
                    (
                        r.events.get(next).cloned(),
                        r.ended_ms.is_some() && next + 1 >= r.events.len(),
                    )
                };
                if let Some((kind, data)) = item {
                    let ev = Event::default()
                        .id(next.to_string())
                        .event(kind)
                        .data(data.to_string());
                    return Some((Ok(ev), (s, run, next + 1, rx, ended)));
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn owned(s: &Shared, c: &Caller, run: &str) -> Result<(), ApiError> {
    match s.runs.lock().get(run) {
        Some(r) if r.key == c.0.id => Ok(()),
        // Another key's run is as good as absent.
        _ => Err(ApiError::not_found(format!(
            "no run `{}`",
            run.chars().take(40).collect::<String>()
        ))),
    }
}

/// `GET /api/v1/ask/runs/{run}/events`: resume (with `Last-Event-ID`).
pub async fn events(
    State(s): State<Arc<Shared>>,
    c: Caller,
    headers: HeaderMap,
    Path(run): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.need(Scope::Admin)?;
    owned(&s, &c, &run)?;
    let from = crate::stream::last_event_id(&headers)?.map_or(0, |n| n as usize + 1);
    Ok(follow(s, run, from))
}

/// `DELETE /api/v1/ask/runs/{run}`: stops it (a `stopped` event ends it).
pub async fn stop(
    State(s): State<Arc<Shared>>,
    c: Caller,
    Path(run): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.need(Scope::Admin)?;
    owned(&s, &c, &run)?;
    let task = s.runs.lock().get_mut(&run).and_then(|r| r.task.take());
    let stopped = task.is_some();
    if let Some(t) = task {
        t.abort();
        s.runs
            .push(&run, "stopped", json!({"run": run}), s.now_ms());
    }
    Ok(Json(json!({ "stopped": stopped })))
}
