//! Server-sent events: `/api/v1/topics/{name}/stream` (event ids are the
//! topic's sequence numbers) and `/api/v1/events` (ids are inbox rows).
//! A client that reconnects with `Last-Event-ID` gets everything after it
//! from the store first, in order, with no gap and no duplicate, then live
//! events. A keep-alive comment goes out every 15 s; the key is checked
//! every 500 ms and the stream ends within a second of its revocation.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use nexus_sdk::mesh::{item_json, HistoryEntry, InboxItem};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::guard::Caller;
use crate::keys::Scope;
use crate::Shared;

/// How often an open stream re-checks its key.
const KEY_CHECK: Duration = Duration::from_millis(500);
/// A history page while replaying.
const PAGE: u32 = 200;
/// The first page after a wake-up.
const FIRST_PAGE: u32 = 32;

/// History entries as JSON, with their topic sequence number as `id`.
pub fn history_json(entries: &[HistoryEntry]) -> Vec<Value> {
    entries
        .iter()
        .map(|e| {
            let mut m = item_json(&InboxItem {
                seq: None,
                message: e.message.clone(),
            });
            m["id"] = json!(e.seq);
            m
        })
        .collect()
}

pub(crate) fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id").and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(v) => {
            v.trim().parse().map(Some).map_err(|_| {
                ApiError::bad_request("Last-Event-ID is the id of an event (a number)")
            })
        }
    }
}

/// One item of a feed: a message (with its `id`), or the error that ends
/// the feed (`{"error": {...}}`).
pub type Item = Value;

fn to_event(v: Item) -> Event {
    if v.get("error").is_some() {
        return Event::default().event("error").data(v.to_string());
    }
    Event::default()
        .id(v["id"].to_string())
        .event("message")
        .data(v.to_string())
}

fn events(rx: mpsc::Receiver<Item>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (Ok(to_event(e)), rx))
    })
}

/// What a stream task waits on: the daemon's stored-message counter, or a
/// one-second poll when no daemon answers.
async fn next_change(s: &Shared, mesh: &str, seen: u64) -> u64 {
    let home = nexus_core::NexusHome::at(s.client.home());
    match nexus_sdk::daemon::call_with(
        &home,
        "mesh.wait",
        json!({"mesh": mesh, "seen": seen, "timeout_ms": 25_000}),
        Duration::from_secs(40),
    )
    .await
    {
        Ok(v) => v["stored"].as_u64().unwrap_or(seen),
        Err(_) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            seen.wrapping_add(1)
        }
    }
}

/// Runs `fetch` after each change until the client leaves or the key stops
/// working.
async fn pump<F, Fut>(
    s: Arc<Shared>,
    key: crate::keys::Key,
    secret: String,
    mesh: String,
    tx: mpsc::Sender<Item>,
    fetch: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Item>>>,
{
    // Open for as long as this runs: the human shows as watching.
    s.stream(&key, true);
    pump_events(&s, &secret, &mesh, &tx, fetch).await;
    s.stream(&key, false);
}

async fn pump_events<F, Fut>(
    s: &Arc<Shared>,
    secret: &str,
    mesh: &str,
    tx: &mpsc::Sender<Item>,
    mut fetch: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Item>>>,
{
    let mut tick = tokio::time::interval(KEY_CHECK);
    let mut seen = 0u64;
    let wait = next_change(s, mesh, seen);
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = s.keys.verify(secret, s.now_ms()) {
                    let _ = tx.send(json!({"error": {"code": "auth", "message": e.to_string()}})).await;
                    return;
                }
            }
            () = tx.closed() => return,
            now = &mut wait => {
                seen = now;
                let Some(batch) = fetch().await else { return };
                for e in batch {
                    if tx.send(e).await.is_err() {
                        return;
                    }
                }
                wait.set(next_change(s, mesh, seen));
            }
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Entries of `topic` after `after`, oldest first, paging back through
/// history as far as needed.
async fn topic_after(
    s: &Shared,
    mesh: &str,
    topic: &str,
    after: u64,
) -> Result<Vec<HistoryEntry>, nexus_sdk::Error> {
    let m = s.client.mesh()?;
    let mut out = Vec::new();
    let mut before = None;
    // A live stream is usually a few messages behind: a small first page
    // (each entry is opened), growing while the gap is larger.
    let mut size = FIRST_PAGE;
    loop {
        let page = m.history(Some(mesh), topic, before, size).await?;
        let full = page.len() as u32 == size;
        size = (size * 4).min(PAGE);
        let oldest = page.iter().map(|e| e.seq).min();
        out.extend(page.into_iter().filter(|e| e.seq > after));
        match oldest {
            Some(o) if full && o > after + 1 => before = Some(o),
            _ => break,
        }
    }
    out.sort_by_key(|e| e.seq);
    out.dedup_by_key(|e| e.seq);
    Ok(out)
}

/// The feed of `topic` after `start`, until the key stops working or the
/// receiver is dropped.
pub fn topic_feed(
    s: &Arc<Shared>,
    key: &crate::keys::Key,
    secret: String,
    topic: String,
    start: u64,
) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel(256);
    let shared = s.clone();
    let last = Arc::new(std::sync::atomic::AtomicU64::new(start));
    let mesh = key.mesh.clone();
    let m = mesh.clone();
    tokio::spawn(pump(s.clone(), key.clone(), secret, mesh, tx, move || {
        let (shared, m, t, last) = (shared.clone(), m.clone(), topic.clone(), last.clone());
        async move {
            let after = last.load(std::sync::atomic::Ordering::Relaxed);
            let entries = topic_after(&shared, &m, &t, after).await.ok()?;
            if let Some(e) = entries.last() {
                last.store(e.seq, std::sync::atomic::Ordering::Relaxed);
            }
            Some(history_json(&entries))
        }
    }));
    rx
}

/// The feed of what is stored in the key's mesh after inbox row `start`.
pub fn inbox_feed(
    s: &Arc<Shared>,
    key: &crate::keys::Key,
    secret: String,
    start: i64,
) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel(256);
    let shared = s.clone();
    let last = Arc::new(std::sync::atomic::AtomicI64::new(start));
    let mesh = key.mesh.clone();
    let (m, k) = (mesh.clone(), key.clone());
    tokio::spawn(pump(s.clone(), key.clone(), secret, mesh, tx, move || {
        let (shared, m, last, key) = (shared.clone(), m.clone(), last.clone(), k.clone());
        async move {
            let after = last.load(std::sync::atomic::Ordering::Relaxed);
            let items = shared.client.mesh().ok()?.inbox(Some(&m)).await.ok()?;
            let mut fresh: Vec<&InboxItem> = items
                .iter()
                .filter(|i| i.seq.is_some_and(|q| q > after))
                .collect();
            fresh.sort_by_key(|i| i.seq);
            if let Some(q) = fresh.last().and_then(|i| i.seq) {
                last.store(q, std::sync::atomic::Ordering::Relaxed);
            }
            Some(
                fresh
                    .into_iter()
                    .map(item_json)
                    .filter(|v| v["topic"].as_str().is_none_or(|t| key.covers_topic(t)))
                    .collect(),
            )
        }
    }));
    rx
}

/// `GET /api/v1/topics/{name}/stream`.
pub async fn topic_stream(
    State(s): State<Arc<Shared>>,
    c: Caller,
    headers: HeaderMap,
    Path(topic): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.need(Scope::Read)?;
    c.topic(&topic)?;
    c.policy(&s, "topics", "read", None)?;
    // Without Last-Event-ID: from now on.
    let start = match last_event_id(&headers)? {
        Some(n) => n,
        None => s
            .client
            .mesh()?
            .history(Some(&c.0.mesh), &topic, None, 1)
            .await?
            .first()
            .map_or(0, |e| e.seq),
    };
    let rx = topic_feed(&s, &c.0, bearer(&headers), topic, start);
    Ok(Sse::new(events(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /api/v1/events`: everything stored for this mesh, as it arrives.
pub async fn inbox_stream(
    State(s): State<Arc<Shared>>,
    c: Caller,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    c.need(Scope::Read)?;
    c.policy(&s, "messages", "read", None)?;
    let start = last_event_id(&headers)?.map_or(0, |n| n as i64);
    let rx = inbox_feed(&s, &c.0, bearer(&headers), start);
    Ok(Sse::new(events(rx)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
