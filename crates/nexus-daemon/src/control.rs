//! Control methods a settings screen needs beyond the CLI's: reading and
//! clearing the logs (filtered, paged by time), and the heartbeat's
//! settings (read, and changed live). The gateway's desktop routes call
//! these over the control socket like any other client.

use serde_json::{json, Value};

use crate::{heartbeat, lock, logs, Pulse};
use nexus_core::NexusHome;

/// The most lines one `logs.read` returns.
pub(crate) const MAX_LINES: usize = 5_000;

type Failure = (i64, String, Option<Value>);

fn bad(msg: impl Into<String>) -> Failure {
    (-32602, msg.into(), None)
}

/// `logs.read {level?, source?, grep?, since_ms?, limit?}`: the newest
/// matching lines (oldest first), the sources seen, and the newest time
/// (the next call's `since_ms` for a live tail).
pub(crate) fn logs_read(home: &NexusHome, p: Option<&Value>) -> Result<Value, Failure> {
    let get = |k: &str| p.and_then(|p| p.get(k));
    let text = |k: &str| get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let min = text("level").map_or(0, logs::rank);
    let source = text("source");
    let grep = text("grep").map(str::to_lowercase);
    let since = get("since_ms").and_then(Value::as_u64).unwrap_or(0);
    let limit = get("limit")
        .and_then(Value::as_u64)
        .map_or(1000, |n| n as usize)
        .clamp(1, MAX_LINES);
    let all = logs::read_all(&home.join("logs"));
    let mut sources: Vec<&str> = all.iter().map(|l| l.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let newest = all.iter().map(|l| l.ts_ms).max().unwrap_or(0);
    let keep: Vec<&logs::Line> = all
        .iter()
        .filter(|l| {
            l.ts_ms >= since
                && logs::rank(&l.level) >= min
                && source.is_none_or(|s| l.source == s)
                && grep
                    .as_deref()
                    .is_none_or(|g| l.msg.to_lowercase().contains(g))
        })
        .collect();
    let skip = keep.len().saturating_sub(limit);
    Ok(json!({
        "lines": &keep[skip..],
        "truncated": skip > 0,
        "sources": sources,
        "newest_ms": newest,
    }))
}

/// `logs.clear`: removes every log file; how many.
pub(crate) fn logs_clear(home: &NexusHome) -> Result<Value, Failure> {
    match logs::clear(&home.join("logs")) {
        Ok(n) => Ok(json!({ "removed": n })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({ "removed": 0 })),
        Err(e) => Err((-32001, format!("cannot clear the logs: {e}"), None)),
    }
}

/// The last `n` recorded beats, newest first.
fn recent_beats(home: &NexusHome, n: usize) -> Vec<Value> {
    let Ok(f) = std::fs::File::open(home.join("heartbeat.jsonl")) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    // The file only grows by a line a beat; its tail is what is shown.
    let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, logs::MAX_BYTES), &mut bytes);
    String::from_utf8_lossy(&bytes)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .take(n)
        .collect()
}

/// `heartbeat.get`: the schedule, the tasks and the recent results.
pub(crate) fn heartbeat_get(home: &NexusHome, pulse: &Pulse) -> Value {
    let mut v = pulse.status();
    v["enabled"] = json!(lock(&pulse.schedule).interval.is_some());
    v["tasks"] = json!(heartbeat::tasks(&pulse.tasks)
        .unwrap_or_default()
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>());
    v["recent"] = json!(recent_beats(home, 20));
    v
}

/// `heartbeat.set {enabled, interval?}`: saves `[heartbeat] interval` in
/// config.toml (`off` when disabled) and applies it at once.
pub(crate) fn heartbeat_set(
    home: &NexusHome,
    pulse: &Pulse,
    p: Option<&Value>,
) -> Result<Value, Failure> {
    let enabled = p
        .and_then(|p| p.get("enabled"))
        .and_then(Value::as_bool)
        .ok_or_else(|| bad("heartbeat.set needs `enabled` (true or false)"))?;
    let given = p.and_then(|p| p.get("interval")).and_then(Value::as_str);
    let current = lock(&pulse.schedule).interval;
    let interval = match (enabled, given) {
        (false, _) => None,
        (true, Some(i)) => Some(
            heartbeat::schedule::parse_interval(i)
                .map_err(bad)?
                .ok_or_else(|| bad("to turn the heartbeat on, give an interval such as 30m"))?,
        ),
        (true, None) => Some(current.unwrap_or(std::time::Duration::from_secs(1800))),
    };
    if interval.is_some_and(|d| d < std::time::Duration::from_secs(10)) {
        return Err(bad("the shortest heartbeat interval is 10s"));
    }
    let text = interval.map_or_else(|| "off".to_string(), |d| format!("{}s", d.as_secs()));
    let mut ed = nexus_core::ConfigEditor::load(home).map_err(|e| bad(e.to_string()))?;
    ed.set("heartbeat.interval", &format!("\"{text}\""))
        .map_err(|e| bad(e.to_string()))?;
    ed.save(&home.config_path())
        .map_err(|e| (-32001, e.to_string(), None))?;
    lock(&pulse.schedule).interval = interval;
    crate::log(&format!("heartbeat: interval set to {text}"));
    Ok(heartbeat_get(home, pulse))
}
