//! The heartbeat: every so often (`nexus daemon start --heartbeat 1h`, or
//! `[heartbeat] interval` in config.toml), within the active hours, nexusd
//! runs the enabled proactive tasks and records each result in
//! `NEXUS_HOME/heartbeat.jsonl`. A task is a [`Task`]: extensions can add
//! their own.
//!
//! ```toml
//! [heartbeat]
//! interval = "1h"                 # up to 24h; 0 or "off" is off
//! active_hours = "9-18"           # local time; may wrap (22-6)
//! workspaces = ["~/src/app"]      # for the health and TODO tasks
//! tasks = ["system_health", "todo_scan", "consolidate", "checklist"]   # the default: all
//! ```
//!
//! The checklist is `NEXUS_HOME/HEARTBEAT.md`, sent to the hierarchy's
//! `heartbeat` category (within the daily budget, as a scheduled request).
//! An empty checklist sends nothing; a reply of `HEARTBEAT_OK` means
//! nothing to report.

pub mod schedule;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nexus_core::NexusHome;
use serde::Serialize;

pub use schedule::{parse_interval, ActiveHours, Schedule};

/// What a task found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The task.
    pub task: String,
    /// `ok` (nothing to report), `report` (something to say), `skipped`,
    /// or `failed`.
    pub status: String,
    /// What it says.
    pub summary: String,
    /// Details, task by task.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Outcome {
    fn new(task: &str, status: &str, summary: impl Into<String>) -> Outcome {
        Outcome {
            task: task.to_string(),
            status: status.to_string(),
            summary: summary.into(),
            details: serde_json::Value::Null,
        }
    }
}

/// What a task gets to work with.
#[derive(Debug, Clone)]
pub struct Context {
    /// The home.
    pub home: NexusHome,
    /// The configured workspaces.
    pub workspaces: Vec<PathBuf>,
    /// The SDK client (providers, the hierarchy, the budget).
    pub client: nexus_sdk::Client,
}

/// One proactive task.
#[nexus_core::async_trait]
pub trait Task: Send + Sync {
    /// Its name (`system_health`).
    fn name(&self) -> &str;
    /// Runs it.
    async fn run(&self, ctx: &Context) -> Outcome;
}

/// Disk space where the home lives and in each workspace, and lock files
/// older than their manifests (stale dependencies).
pub struct SystemHealth;

/// Free space under this is worth a word.
const LOW_DISK: u64 = 1 << 30;

#[nexus_core::async_trait]
impl Task for SystemHealth {
    fn name(&self) -> &str {
        "system_health"
    }

    async fn run(&self, ctx: &Context) -> Outcome {
        let mut problems = Vec::new();
        let mut disks = serde_json::Map::new();
        for dir in std::iter::once(ctx.home.root().to_path_buf()).chain(ctx.workspaces.clone()) {
            match rustix::fs::statvfs(&dir) {
                Ok(s) => {
                    let free = s.f_bavail.saturating_mul(s.f_frsize);
                    disks.insert(dir.display().to_string(), free.into());
                    if free < LOW_DISK {
                        problems.push(format!("{} has {} MiB free", dir.display(), free >> 20));
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", dir.display())),
            }
        }
        let pairs = [
            ("Cargo.toml", "Cargo.lock"),
            ("package.json", "package-lock.json"),
            ("pyproject.toml", "uv.lock"),
            ("pyproject.toml", "poetry.lock"),
        ];
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        for w in &ctx.workspaces {
            for (manifest, lock) in pairs {
                if let (Some(m), Some(l)) = (modified(&w.join(manifest)), modified(&w.join(lock))) {
                    if m > l {
                        problems.push(format!(
                            "{}: {lock} is older than {manifest} (dependencies may be stale)",
                            w.display()
                        ));
                    }
                }
            }
        }
        let mut o = if problems.is_empty() {
            Outcome::new(self.name(), "ok", "disk space and lock files are fine")
        } else {
            Outcome::new(self.name(), "report", problems.join("; "))
        };
        o.details = serde_json::json!({ "free_bytes": disks });
        o
    }
}

/// TODO and FIXME lines in the workspaces (bounded: at most 5,000 files of
/// at most 1 MiB, skipping `.git`, `target` and `node_modules`).
pub struct TodoScan;

#[nexus_core::async_trait]
impl Task for TodoScan {
    fn name(&self) -> &str {
        "todo_scan"
    }

    async fn run(&self, ctx: &Context) -> Outcome {
        if ctx.workspaces.is_empty() {
            return Outcome::new(
                self.name(),
                "skipped",
                "no workspaces configured ([heartbeat] workspaces)",
            );
        }
        let roots = ctx.workspaces.clone();
        let found = tokio::task::spawn_blocking(move || scan(&roots))
            .await
            .unwrap_or_default();
        let total: usize = found.iter().map(|(_, n)| n).sum();
        let mut o = if total == 0 {
            Outcome::new(self.name(), "ok", "no TODO or FIXME")
        } else {
            Outcome::new(
                self.name(),
                "report",
                format!("{total} TODO/FIXME in {} file(s)", found.len()),
            )
        };
        o.details = serde_json::json!({
            "files": found.iter().take(20).map(|(p, n)| serde_json::json!({"file": p, "count": n})).collect::<Vec<_>>()
        });
        o
    }
}

fn scan(roots: &[PathBuf]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = roots.to_vec();
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                if !matches!(name.as_ref(), ".git" | "target" | "node_modules") {
                    stack.push(p);
                }
                continue;
            }
            if !t.is_file() || e.metadata().map_or(true, |m| m.len() > 1 << 20) {
                continue;
            }
            seen += 1;
            if seen > 5_000 {
                return out;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                let n = text
                    .lines()
                    .filter(|l| l.contains("TODO") || l.contains("FIXME"))
                    .count();
                if n > 0 {
                    out.push((p.display().to_string(), n));
                }
            }
        }
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// `NEXUS_HOME/HEARTBEAT.md`, sent to the `heartbeat` category.
pub struct Checklist;

/// The largest checklist sent, bytes.
const MAX_CHECKLIST: u64 = 64 * 1024;

/// What the checklist asks, or `None` when it asks nothing (missing,
/// empty, or only headings, blank lines and HTML comments).
pub fn checklist_prompt(text: &str) -> Option<String> {
    let meaningful = text.lines().any(|l| {
        let l = l.trim();
        !l.is_empty() && !l.starts_with('#') && !l.starts_with("<!--")
    });
    meaningful.then(|| {
        format!(
            "This is a scheduled heartbeat. Go through the checklist below. If nothing needs the user's attention, reply with exactly HEARTBEAT_OK.\n\n{text}"
        )
    })
}

/// Whether a reply means nothing to report.
pub fn nothing_to_report(reply: &str) -> bool {
    reply
        .trim()
        .trim_matches(|c: char| c == '.' || c == '`')
        .trim()
        == "HEARTBEAT_OK"
}

#[nexus_core::async_trait]
impl Task for Checklist {
    fn name(&self) -> &str {
        "checklist"
    }

    async fn run(&self, ctx: &Context) -> Outcome {
        let path = ctx.home.join("HEARTBEAT.md");
        // A checklist is a page, not a book: what goes to a model is bounded.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX_CHECKLIST) {
            return Outcome::new(
                self.name(),
                "failed",
                format!(
                    "{} is over {} KiB; nothing sent",
                    path.display(),
                    MAX_CHECKLIST / 1024
                ),
            );
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Some(prompt) = checklist_prompt(&text) else {
            return Outcome::new(
                self.name(),
                "skipped",
                format!("{} is empty: nothing sent", path.display()),
            );
        };
        let opts = nexus_sdk::AskOptions {
            category: Some("heartbeat".into()),
            scheduled: true,
            ..Default::default()
        };
        match ctx.client.ask(&prompt, &opts).await {
            Ok(r) if nothing_to_report(&r.reply.text) => {
                let mut o = Outcome::new(self.name(), "ok", "nothing to report");
                o.details =
                    serde_json::json!({"model": r.reply.model, "cost_usd": r.total_cost.dollars()});
                o
            }
            Ok(r) => {
                let mut o = Outcome::new(self.name(), "report", r.reply.text.clone());
                o.details =
                    serde_json::json!({"model": r.reply.model, "cost_usd": r.total_cost.dollars()});
                o
            }
            Err(e) => Outcome::new(self.name(), "failed", e.to_string()),
        }
    }
}

/// Consolidates what Nexus keeps: the local inbox's write-ahead log folded
/// into its database, and the run records (`heartbeat.jsonl`,
/// `cron-runs.jsonl`) trimmed to their newest 10,000 lines.
pub struct Consolidate;

/// Lines a run record keeps.
const KEEP_LINES: usize = 10_000;

/// Keeps the newest `keep` lines of `path` (atomically); bytes saved.
fn trim(path: &Path, keep: usize) -> std::io::Result<u64> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= keep {
        return Ok(0);
    }
    let kept = lines[lines.len() - keep..].join("\n") + "\n";
    nexus_core::atomic_write(path, kept.as_bytes(), nexus_core::FileMode::Secret)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((text.len() - kept.len()) as u64)
}

#[nexus_core::async_trait]
impl Task for Consolidate {
    fn name(&self) -> &str {
        "consolidate"
    }

    async fn run(&self, ctx: &Context) -> Outcome {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let inbox = ctx.home.join("inbox.db");
        if inbox.exists() {
            match nexus_mesh::inbox::Inbox::open(&inbox).and_then(|i| i.checkpoint()) {
                Ok(wal) => done.push(format!("inbox log folded in ({} KiB)", wal / 1024)),
                Err(e) => failed.push(format!("inbox: {e}")),
            }
        }
        let mut trimmed = 0;
        for f in ["heartbeat.jsonl", "cron-runs.jsonl"] {
            match trim(&ctx.home.join(f), KEEP_LINES) {
                Ok(n) => trimmed += n,
                Err(e) => failed.push(format!("{f}: {e}")),
            }
        }
        if trimmed > 0 {
            done.push(format!("{} KiB of old run records dropped", trimmed / 1024));
        }
        match (failed.is_empty(), done.is_empty()) {
            (false, _) => Outcome::new(self.name(), "failed", failed.join("; ")),
            (true, true) => Outcome::new(self.name(), "ok", "nothing to consolidate"),
            (true, false) => Outcome::new(self.name(), "ok", done.join("; ")),
        }
    }
}

/// The tasks `names` asks for (every task when empty).
pub fn tasks(names: &[String]) -> Result<Vec<Box<dyn Task>>, String> {
    let all: Vec<Box<dyn Task>> = vec![
        Box::new(SystemHealth),
        Box::new(TodoScan),
        Box::new(Consolidate),
        Box::new(Checklist),
    ];
    if names.is_empty() {
        return Ok(all);
    }
    for n in names {
        if !all.iter().any(|t| t.name() == n) {
            return Err(format!(
                "no heartbeat task `{n}`; the tasks are system_health, todo_scan, consolidate, checklist"
            ));
        }
    }
    Ok(all
        .into_iter()
        .filter(|t| names.iter().any(|n| n == t.name()))
        .collect())
}

/// The heartbeat as configured.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Every this long (`None`: off).
    pub interval: Option<Duration>,
    /// Active hours, if any.
    pub active: Option<ActiveHours>,
    /// Workspaces.
    pub workspaces: Vec<PathBuf>,
    /// Tasks by name (empty: all).
    pub tasks: Vec<String>,
}

fn expand(home_dir: Option<&Path>, p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home_dir) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// Reads `[heartbeat]` from config.toml; `interval` overrides its
/// interval (the `--heartbeat` flag).
pub fn settings(home: &NexusHome, interval: Option<&str>) -> Result<Settings, String> {
    let config = nexus_core::Config::load(home).map_err(|e| e.to_string())?;
    let t: toml::Table = config.section("heartbeat").map_err(|e| e.to_string())?;
    let text = |k: &str| t.get(k).and_then(toml::Value::as_str);
    let interval = match interval.or(text("interval")) {
        Some(i) => parse_interval(i)?,
        None => None,
    };
    let active = text("active_hours").map(ActiveHours::parse).transpose()?;
    let user_home = std::env::var_os("HOME").map(PathBuf::from);
    let list = |k: &str| -> Vec<String> {
        t.get(k)
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let s = Settings {
        interval,
        active,
        workspaces: list("workspaces")
            .iter()
            .map(|p| expand(user_home.as_deref(), p))
            .collect(),
        tasks: list("tasks"),
    };
    tasks(&s.tasks)?;
    Ok(s)
}

/// Runs every task, records the results in `NEXUS_HOME/heartbeat.jsonl`,
/// and returns them.
pub async fn beat(ctx: &Context, names: &[String]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for t in tasks(names).unwrap_or_default() {
        out.push(t.run(ctx).await);
    }
    let line = serde_json::json!({
        "at_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        "results": out,
    });
    let path = ctx.home.join("heartbeat.jsonl");
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    if let Ok(mut f) = o.open(&path) {
        use std::io::Write as _;
        let _ = writeln!(f, "{line}");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_checklist_asks_nothing_and_heartbeat_ok_reports_nothing() {
        assert_eq!(checklist_prompt(""), None);
        assert_eq!(
            checklist_prompt("# Heartbeat\n\n<!-- add items -->\n"),
            None
        );
        let p = checklist_prompt("# Heartbeat\n- is the build green?\n").unwrap();
        assert!(p.contains("is the build green?") && p.contains("HEARTBEAT_OK"));
        assert!(nothing_to_report("HEARTBEAT_OK"));
        assert!(nothing_to_report("  `HEARTBEAT_OK`.\n"));
        assert!(!nothing_to_report("HEARTBEAT_OK, but the disk is full"));
        assert!(tasks(&["nope".into()])
            .err()
            .is_some_and(|e| e.contains("system_health")));
        assert_eq!(tasks(&["todo_scan".into()]).unwrap().len(), 1);
    }

    #[test]
    fn run_records_are_trimmed_to_the_newest_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("runs.jsonl");
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, &text).unwrap();
        assert!(trim(&p, 10).unwrap() > 0);
        let kept = std::fs::read_to_string(&p).unwrap();
        assert_eq!(kept.lines().count(), 10);
        assert!(kept.starts_with("line 40\n") && kept.ends_with("line 49\n"));
        assert_eq!(trim(&p, 10).unwrap(), 0);
        assert_eq!(trim(&d.path().join("missing"), 10).unwrap(), 0);
    }

    #[test]
    fn the_scan_counts_todo_lines_and_skips_build_dirs() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("a.rs"),
            "// TODO one\nfn x() {}\n// FIXME two\n",
        )
        .unwrap();
        std::fs::create_dir(d.path().join("target")).unwrap();
        std::fs::write(d.path().join("target/b.rs"), "// TODO ignored\n").unwrap();
        let found = scan(&[d.path().to_path_buf()]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, 2);
    }
}
